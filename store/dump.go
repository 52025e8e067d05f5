package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Snapshot files. Dump writes every key and value of a store, read in one
// View (one consistent snapshot), to a stream; Load puts them into an
// empty store. The format:
//
//	"KHSNAP1\n"
//	entries: u32 key length, key, u32 value length, value (big-endian lengths), in key order
//	u32 0xFFFFFFFF (end), u64 entry count, 32-byte sha256 of everything before it
//
// Load checks the order, the sizes, the count and the hash; a truncated or
// altered file is refused (ErrBadSnapshot), and the entries it had written
// in batches meanwhile are deleted again, so the store is left empty.

// snapshotMagic starts a snapshot file.
const snapshotMagic = "KHSNAP1\n"

const endMarker = 0xFFFFFFFF

// maxSnapshotValue bounds one value in a snapshot file (the largest value a
// store holds is a module of at most a few MiB).
const maxSnapshotValue = 64 << 20

// loadBatch is the entries Load writes per transaction.
const loadBatch = 512

// ErrBadSnapshot is returned by Load for a file that is not a complete,
// intact snapshot.
var ErrBadSnapshot = errors.New("store: not a valid snapshot")

// ErrNotEmpty is returned by Load for a store that holds keys already.
var ErrNotEmpty = errors.New("store: the store is not empty")

// Dump writes every entry of st, from one snapshot, to w. It returns the
// number of entries written.
func Dump(st Store, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	h := sha256.New()
	out := io.MultiWriter(bw, h)
	if _, err := io.WriteString(out, snapshotMagic); err != nil {
		return 0, err
	}
	n := 0
	var lenBuf [4]byte
	err := st.View(func(tx Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error {
			for _, b := range [][]byte{k, v} {
				binary.BigEndian.PutUint32(lenBuf[:], uint32(len(b)))
				if _, err := out.Write(lenBuf[:]); err != nil {
					return err
				}
				if _, err := out.Write(b); err != nil {
					return err
				}
			}
			n++
			return nil
		})
	})
	if err != nil {
		return n, fmt.Errorf("store: dump: %w", err)
	}
	var tail [12]byte
	binary.BigEndian.PutUint32(tail[:4], endMarker)
	binary.BigEndian.PutUint64(tail[4:], uint64(n))
	if _, err := out.Write(tail[:]); err != nil {
		return n, err
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// Load reads a snapshot written by Dump from r into st, which must be
// empty. It returns the number of entries loaded.
func Load(st Store, r io.Reader) (int, error) {
	var written [][]byte
	n, err := load(st, r, &written)
	if err != nil {
		// Leave the store as it was: empty.
		for len(written) > 0 {
			chunk := written[:min(len(written), loadBatch)]
			written = written[len(chunk):]
			if derr := st.Update(func(tx Txn) error {
				for _, k := range chunk {
					if err := tx.Delete(k); err != nil {
						return err
					}
				}
				return nil
			}); derr != nil {
				return 0, errors.Join(err, fmt.Errorf("store: load: undo: %w", derr))
			}
		}
		return 0, err
	}
	return n, nil
}

func load(st Store, r io.Reader, written *[][]byte) (int, error) {
	empty := true
	if err := st.View(func(tx Txn) error {
		return tx.Iterate(nil, nil, func(_, _ []byte) error { empty = false; return ErrStop })
	}); err != nil {
		return 0, err
	}
	if !empty {
		return 0, ErrNotEmpty
	}
	br := bufio.NewReaderSize(r, 1<<20)
	h := sha256.New()
	magic := make([]byte, len(snapshotMagic))
	if err := readFull(br, h, magic); err != nil || string(magic) != snapshotMagic {
		return 0, fmt.Errorf("%w: no snapshot header", ErrBadSnapshot)
	}
	type kv struct{ k, v []byte }
	var batch []kv
	var last []byte
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := st.Update(func(tx Txn) error {
			for _, e := range batch {
				if err := tx.Set(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, e := range batch {
				*written = append(*written, e.k)
			}
		}
		batch = batch[:0]
		return err
	}
	for {
		kl, err := readLen(br, h)
		if err != nil {
			return n, err
		}
		if kl == endMarker {
			break
		}
		if kl == 0 || kl > MaxKeySize {
			return n, fmt.Errorf("%w: entry %d: key of %d bytes", ErrBadSnapshot, n, kl)
		}
		k := make([]byte, kl)
		if err := readFull(br, h, k); err != nil {
			return n, err
		}
		if last != nil && bytes.Compare(k, last) <= 0 {
			return n, fmt.Errorf("%w: entry %d: keys out of order", ErrBadSnapshot, n)
		}
		vl, err := readLen(br, h)
		if err != nil {
			return n, err
		}
		if vl > maxSnapshotValue {
			return n, fmt.Errorf("%w: entry %d: value of %d bytes", ErrBadSnapshot, n, vl)
		}
		v := make([]byte, vl)
		if err := readFull(br, h, v); err != nil {
			return n, err
		}
		last = k
		batch = append(batch, kv{k, v})
		n++
		if len(batch) >= loadBatch {
			// The hash is checked at the end; Load undoes these writes if
			// it does not match.
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	var count [8]byte
	if err := readFull(br, h, count[:]); err != nil {
		return n, err
	}
	if binary.BigEndian.Uint64(count[:]) != uint64(n) {
		return n, fmt.Errorf("%w: %d entries, the file says %d", ErrBadSnapshot, n, binary.BigEndian.Uint64(count[:]))
	}
	want := h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, want) {
		return n, fmt.Errorf("%w: the hash does not match", ErrBadSnapshot)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return n, fmt.Errorf("%w: data after the end", ErrBadSnapshot)
	}
	return n, flush()
}

func readFull(r io.Reader, h hash.Hash, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("%w: truncated", ErrBadSnapshot)
	}
	h.Write(b)
	return nil
}

func readLen(r io.Reader, h hash.Hash) (uint32, error) {
	var b [4]byte
	if err := readFull(r, h, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}
