package kernel

import (
	"bytes"
	"errors"
	"slices"

	"github.com/kernelhost/kernelhost/store"
)

// overlay is one action's writes over a transaction it must not touch until
// the action is known to succeed: the batch transaction of the committer
// (commit.go), where an action that fails must leave no trace while the
// actions before and after it in the batch commit, or a read-only snapshot
// (Explain, and reads, whose writes are only their audit event). Reads see
// the overlay's writes first, then the base. flush copies the writes into
// the base; dropping the overlay discards them.
//
// Like every Txn it is not safe for concurrent use. Following the Txn
// contract (the caller does not modify a key or value after Set), it keeps
// the slices it is given without copying them, and hands them on to the
// base at flush.
type overlay struct {
	base   store.Txn
	writes []ovWrite
	idx    map[string]int // key -> index in writes, built once writes grow past ovLinear
	bytes  int            // sum of key and value sizes, for the batch size bound
	// num is the committer's next event number while the overlay runs in
	// a batch (nil on a snapshot): takeSeq hands numbers out from it.
	num *uint64
	// rnum likewise hands out record numbers when the kernel records.
	rnum *uint64
}

type ovWrite struct {
	key []byte // kept as given: the caller does not modify it after Set
	val []byte
	del bool
}

// ovLinear is the number of writes looked up by a linear scan before the
// overlay builds an index: most actions write fewer than ten keys.
const ovLinear = 8

func (o *overlay) reset(base store.Txn) {
	clear(o.writes)
	o.base, o.writes, o.idx, o.bytes, o.num, o.rnum = base, o.writes[:0], nil, 0, nil, nil
}

func (o *overlay) find(key []byte) int {
	if o.idx != nil {
		if i, ok := o.idx[string(key)]; ok {
			return i
		}
		return -1
	}
	for i := range o.writes {
		if bytes.Equal(o.writes[i].key, key) {
			return i
		}
	}
	return -1
}

func (o *overlay) put(key []byte, val []byte, del bool) error {
	if i := o.find(key); i >= 0 {
		w := &o.writes[i]
		o.bytes += len(val) - len(w.val)
		w.val, w.del = val, del
		return nil
	}
	o.writes = append(o.writes, ovWrite{key: key, val: val, del: del})
	o.bytes += len(key) + len(val)
	switch {
	case o.idx != nil:
		o.idx[string(key)] = len(o.writes) - 1
	case len(o.writes) > ovLinear:
		o.idx = make(map[string]int, 2*len(o.writes))
		for i := range o.writes {
			o.idx[string(o.writes[i].key)] = i
		}
	}
	return nil
}

// Get returns the overlay's value of key, else the base's.
func (o *overlay) Get(key []byte) ([]byte, error) {
	if i := o.find(key); i >= 0 {
		if o.writes[i].del {
			return nil, store.ErrNotFound
		}
		return bytes.Clone(o.writes[i].val), nil
	}
	return o.base.Get(key)
}

// Set records a write; the base sees it at flush.
func (o *overlay) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return o.put(key, value, false)
}

// Delete records a deletion; the base sees it at flush.
func (o *overlay) Delete(key []byte) error { return o.put(key, nil, true) }

// Iterate merges the overlay's writes in [prefix, start...) into the base's
// keys, in ascending order, streaming the base.
func (o *overlay) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	var mine []*ovWrite
	for i := range o.writes {
		w := &o.writes[i]
		if bytes.HasPrefix(w.key, prefix) && (start == nil || bytes.Compare(w.key, start) >= 0) {
			mine = append(mine, w)
		}
	}
	if len(mine) == 0 {
		return o.base.Iterate(prefix, start, fn)
	}
	slices.SortFunc(mine, func(a, b *ovWrite) int { return bytes.Compare(a.key, b.key) })
	var stopped error // fn's error, or store.ErrStop
	emit := func(k, v []byte) bool {
		if err := fn(k, v); err != nil {
			stopped = err
			return false
		}
		return true
	}
	err := o.base.Iterate(prefix, start, func(k, v []byte) error {
		for len(mine) > 0 && bytes.Compare(mine[0].key, k) < 0 {
			w := mine[0]
			mine = mine[1:]
			if !w.del && !emit(w.key, w.val) {
				return store.ErrStop
			}
		}
		if len(mine) > 0 && bytes.Equal(mine[0].key, k) {
			w := mine[0]
			mine = mine[1:]
			if w.del {
				return nil
			}
			v = w.val
		}
		if !emit(k, v) {
			return store.ErrStop
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range mine {
		if stopped != nil {
			break
		}
		if !w.del {
			emit(w.key, w.val)
		}
	}
	if stopped != nil && !errors.Is(stopped, store.ErrStop) {
		return stopped
	}
	return nil
}

// flush writes the overlay's writes into tx, in the order they were first
// made.
func (o *overlay) flush(tx store.Txn) error {
	for i := range o.writes {
		w := &o.writes[i]
		var err error
		if w.del {
			err = tx.Delete(w.key)
		} else {
			err = tx.Set(w.key, w.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// only reports whether the overlay's writes are at most the one write of
// key, and returns that write's value (nil when there is none).
func (o *overlay) only(key []byte) ([]byte, bool) {
	switch {
	case len(o.writes) == 0:
		return nil, true
	case len(o.writes) == 1 && bytes.Equal(o.writes[0].key, key) && !o.writes[0].del:
		return o.writes[0].val, true
	}
	return nil, false
}
