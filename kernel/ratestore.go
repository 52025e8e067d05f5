package kernel

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/kernelhost/kernelhost/store"
)

// Rate windows in the store. Each kernel (node) keeps the exact sliding
// log of the usage it charged in memory (rateWindow) and writes a copy of
// it, in buckets, to the store under its own node number:
//
//	w/<principal>\x00<resource>\x00<node: 8 bytes BE>
//
// A check counts its own log, its own reservations and holds, and the rows
// of every other node. So usage survives a restart (the restarted kernel
// is a new node and reads the old one's row) and is shared by several
// kernels on one store, and no two nodes ever write one row: a node's
// charges never conflict with another's.
//
// A row lists (bucket end, amount) pairs: usage at time t counts in the
// bucket that ends at the first multiple of the resolution (the window
// divided by rateBuckets) at or after t, and leaves the window one window
// length after the bucket's end, never before the exact log would drop
// it. Another node's usage is therefore exact to the resolution, and late
// by at most one resolution, never early.
//
// When rows are written: consume_quota writes its node's row in its own
// transaction, with the amount, so that two nodes consuming one principal's
// quota at once read each other's rows and write their own, and the
// store's serialisability makes one of them run again: a renewable quota
// is never overspent across nodes by consume_quota. CPU charges of runs
// enter the node's log when a run ends and reach the store with the
// committer's next batch (flushRates): until then other nodes do not see
// them, so several nodes running contracts for one principal at once can
// together exceed its cpu_rate by what ran between two batches.

// rateBuckets is the number of buckets a window is divided into.
const rateBuckets = 60

// rateRowVersion leads a stored row.
const rateRowVersion = 1

// rateRes is the bucket resolution in ns.
func (k *Kernel) rateRes() int64 { return max(k.windowNanos()/rateBuckets, 1) }

// bucketEnd returns the end of the bucket holding time t.
func bucketEnd(t, res int64) int64 {
	if r := t % res; r != 0 {
		return t - r + res
	}
	return t
}

func rateRowPrefix(id string, res Resource) []byte {
	k := make([]byte, 0, 2+len(id)+1+len(res)+1+8)
	k = append(append(append(k, prefixRate...), id...), 0)
	return append(append(k, res...), 0)
}

func rateRowKey(id string, res Resource, node uint64) []byte {
	return binary.BigEndian.AppendUint64(rateRowPrefix(id, res), node)
}

// encodeRateRow encodes the live entries of a log, bucketed.
func encodeRateRow(entries []rateEntry, res int64) []byte {
	return appendRateRow(make([]byte, 0, 1+16*min(len(entries), rateBuckets+1)), entries, res)
}

// appendRateRow appends the row of entries to b.
func appendRateRow(b []byte, entries []rateEntry, res int64) []byte {
	b = append(b, rateRowVersion)
	var lastEnd, acc int64
	for i, e := range entries {
		end := bucketEnd(e.t, res)
		if i > 0 && end != lastEnd {
			b = le.AppendUint64(le.AppendUint64(b, uint64(lastEnd)), uint64(acc))
			acc = 0
		}
		lastEnd = end
		acc += e.amt
	}
	if len(entries) > 0 {
		b = le.AppendUint64(le.AppendUint64(b, uint64(lastEnd)), uint64(acc))
	}
	return b
}

// appendLive appends the entries of a stored row that are live at now
// (their bucket end after now-length) to dst, and returns their sum.
func appendLive(dst []rateEntry, b []byte, now, length int64) ([]rateEntry, int64, error) {
	if len(b) < 1 || b[0] != rateRowVersion || (len(b)-1)%16 != 0 {
		return dst, 0, errCorrupt
	}
	var sum int64
	for p := 1; p < len(b); p += 16 {
		t, amt := int64(le.Uint64(b[p:])), int64(le.Uint64(b[p+8:]))
		if amt < 0 {
			return dst, 0, errCorrupt
		}
		if t > now-length {
			dst = append(dst, rateEntry{t, amt})
			sum += amt
		}
	}
	return dst, sum, nil
}

// foreign is the usage of one principal's renewable resource charged by
// other nodes, from their rows: its sum and its entries in time order.
type foreign struct {
	sum     int64
	entries []rateEntry
}

// foreignUsage reads the other nodes' rows of id's res in tx. Without
// other rows that can hold live usage (one kernel on its store, opened
// longer than a window ago, or on a store with none) it reads nothing.
func (k *Kernel) foreignUsage(tx store.Txn, id string, res Resource, now int64) (foreign, error) {
	var f foreign
	if !k.shared && now >= k.foreignUntil {
		return f, nil
	}
	length := k.windowNanos()
	prefix := rateRowPrefix(id, res)
	own := rateRowKey(id, res, k.node)
	sorted := true
	err := tx.Iterate(prefix, nil, func(key, value []byte) error {
		if bytes.Equal(key, own) {
			return nil
		}
		n := len(f.entries)
		var s int64
		var err error
		f.entries, s, err = appendLive(f.entries, value, now, length)
		if n > 0 && len(f.entries) > n {
			sorted = false
		}
		f.sum += s
		return err
	})
	if err != nil {
		return foreign{}, err
	}
	if !sorted {
		slices.SortFunc(f.entries, func(a, b rateEntry) int { return cmp.Compare(a.t, b.t) })
	}
	return f, nil
}

// dirtyRates are the windows whose log changed since the committer last
// wrote their rows.
type dirtyRates struct {
	mu sync.Mutex
	m  map[rateKey]*rateWindow
	// flushing are the windows the batch being committed writes, put back
	// into m if it fails.
	flushing map[rateKey]*rateWindow
}

func (d *dirtyRates) mark(key rateKey, w *rateWindow) {
	d.mu.Lock()
	if d.m == nil {
		d.m = make(map[rateKey]*rateWindow)
	}
	d.m[key] = w
	d.mu.Unlock()
}

// flushRates writes the rows of the windows that changed, in the
// committer's batch transaction (commit.go).
func (k *Kernel) flushRates(tx store.Txn) error {
	d := &k.dirty
	d.mu.Lock()
	if len(d.m) == 0 && len(d.flushing) == 0 {
		d.mu.Unlock()
		return nil
	}
	// A batch that failed left its windows in flushing: write them too.
	if d.flushing == nil {
		d.flushing = make(map[rateKey]*rateWindow)
	}
	for key, w := range d.m {
		d.flushing[key] = w
	}
	clear(d.m)
	flushing := d.flushing
	d.mu.Unlock()
	// Only the committer's goroutine runs this and flushed: flushing is
	// not touched by mark.
	now, length, res := k.nowNanos(), k.windowNanos(), k.rateRes()
	for key, w := range flushing {
		// One allocation holds the key and the row (the store keeps both).
		prefixLen := len(prefixRate) + len(key.principal) + 1 + len(key.res) + 1
		w.mu.Lock()
		w.prune(now, length)
		live := w.entries[w.head:]
		if len(w.inflight) > 0 {
			// Consumptions of transactions still open (or committed and
			// not yet resolved, while their batch syncs) stay counted.
			live = slices.Concat(live, w.inflight)
			slices.SortStableFunc(live, func(a, b rateEntry) int { return cmp.Compare(a.t, b.t) })
		}
		buf := make([]byte, 0, prefixLen+8+1+16*min(len(live), rateBuckets+1))
		buf = append(append(append(append(append(buf, prefixRate...), key.principal...), 0), key.res...), 0)
		buf = binary.BigEndian.AppendUint64(buf, k.node)
		rk := buf[:len(buf):len(buf)]
		var row []byte
		if len(live) > 0 {
			row = appendRateRow(buf[len(buf):], live, res)
		}
		w.mu.Unlock()
		var err error
		if row == nil {
			err = tx.Delete(rk)
		} else {
			err = tx.Set(rk, row)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// flushed is told whether the batch that ran flushRates committed.
func (k *Kernel) flushed(ok bool) {
	d := &k.dirty
	d.mu.Lock()
	if ok {
		clear(d.flushing)
	}
	d.mu.Unlock()
}

// openNode takes this kernel's node number from the store's counter
// (l/node), so that no two kernels that ever opened the store write the
// same rate rows, and finds whether rows of other nodes exist that may
// still hold live usage, deleting those whose usage has all left the
// window.
func (k *Kernel) openNode() error {
	now, length := k.nowNanos(), k.windowNanos()
	for attempt := 0; ; attempt++ {
		err := k.st.Update(func(tx store.Txn) error {
			n, err := readCounter(tx, keyNode)
			if err != nil {
				return err
			}
			k.node = n + 1
			if err := tx.Set(keyNode, encodeU64(k.node)); err != nil {
				return err
			}
			var stale [][]byte
			live := false
			err = tx.Iterate(prefixRate, nil, func(key, value []byte) error {
				entries, _, err := appendLive(nil, value, now, length)
				if err != nil {
					return err
				}
				if len(entries) == 0 && len(stale) < maxStaleRows {
					stale = append(stale, bytes.Clone(key))
				} else {
					live = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, key := range stale {
				if err := tx.Delete(key); err != nil {
					return err
				}
			}
			k.foreignUntil = 0
			if live {
				k.foreignUntil = now + length + k.rateRes()
			}
			return nil
		})
		if !errors.Is(err, store.ErrConflict) || attempt >= k.cfg.MaxConflictRetries {
			return err
		}
		conflictBackoff(attempt)
	}
}

// maxStaleRows bounds the expired rate rows one Open deletes.
const maxStaleRows = 10000
