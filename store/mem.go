package store

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// memDegree is the degree of memStore's B-tree: a node holds memDegree-1 to
// 2*memDegree-1 items. The first write of an Update below a published node
// copies that node (its items and, inside the tree, its children), level
// by level: a higher degree means fewer levels, so fewer allocations, but
// more bytes copied, and garbage made, per level. Measured against 16 and
// 64 (BenchmarkMem_100k, BenchmarkUpdate/mem, the kernel's
// BenchmarkAction/read): on 100k keys written in order (as the event log
// is), one Set costs 16 allocations of 4.9 KB at degree 16, 16 of 6.3 KB at
// 32 and 13 of 9.0 KB at 64; on 1024 keys 13 at degree 16, 10 at 32 and 64;
// a kernel read was cheapest in CPU at 32 and 64.
const memDegree = 32

// memItem is one key and its value in one private buffer that nothing
// writes once the item is in a tree: kv is the key, and the bytes after it
// up to kv's capacity are the value. Packing the value into the capacity
// keeps an item at 24 bytes, not 48, which halves the bytes every node
// copy moves and allocates.
type memItem struct {
	kv []byte
}

// newMemItem returns an item of a copy of key and value: one allocation.
func newMemItem(key, value []byte) memItem {
	buf := make([]byte, len(key)+len(value)) // make's capacity is exact
	copy(buf, key)
	copy(buf[len(key):], value)
	return memItem{kv: buf[:len(key)]}
}

// key returns the item's key; its capacity ends at its length, so that an
// append by a caller cannot scribble on the value.
func (it memItem) key() []byte { return it.kv[:len(it.kv):len(it.kv)] }

// value returns the item's value.
func (it memItem) value() []byte { return it.kv[len(it.kv):cap(it.kv):cap(it.kv)] }

// memLess orders items by key, as every Store iterates.
func memLess(a, b memItem) bool { return bytes.Compare(a.kv, b.kv) < 0 }

// memTree is the ordered map memStore keeps: a copy-on-write B-tree.
type memTree = btree.BTreeG[memItem]

// memStore is the in-memory Store: a copy-on-write B-tree whose published
// version is swapped on commit. A published tree is never written again: a
// View reads the tree it loaded at its start, so it is a snapshot; an
// Update writes a clone (O(1): nodes are copied lazily, one path per first
// write below a shared node) and publishes it on success, so a discarded
// Update leaves nothing behind.
type memStore struct {
	gate gate

	// writeMu serialises Updates (so they never conflict); it is held for
	// the whole closure by the goroutine running Update. Views do not take
	// it. It also guards every Clone of the published tree: Clone swaps the
	// source tree's copy-on-write context, so it must never run
	// concurrently with another Clone of the same tree (reads may).
	writeMu sync.Mutex

	tree atomic.Pointer[memTree] // committed state; replaced by Update under writeMu
}

// NewMem returns an empty in-memory Store for tests. It has the semantics of
// [OpenBadger]'s store (snapshot Views, discard on error, ordered iteration,
// copies) except that Updates run one at a time, so ErrConflict and
// ErrTxnTooBig never occur. Nothing survives Close.
func NewMem() Store {
	s := &memStore{}
	s.tree.Store(btree.NewG(memDegree, memLess))
	return s
}

func (s *memStore) View(fn func(Txn) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	txn := &memTxn{tree: s.tree.Load()}
	defer func() { txn.done = true }()
	return fn(txn)
}

func (s *memStore) Update(fn func(Txn) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// The clone is made by the first write, not here: an Update that
	// writes nothing costs no copy.
	txn := &memTxn{tree: s.tree.Load(), update: true}
	defer func() { txn.done = true }()
	if err := fn(txn); err != nil {
		return err
	}
	s.tree.Store(txn.tree)
	return nil
}

func (s *memStore) Close() error {
	if err := s.gate.close(); err != nil {
		return err
	}
	s.tree.Store(nil) // let the data go
	return nil
}

// memTxn is a transaction of memStore. It is used by one goroutine.
type memTxn struct {
	// tree is this transaction's view, including its own writes.
	tree *memTree
	// owned says that tree is this Update's private clone, which it may
	// write in place. It is false while tree is shared: published (a View
	// may be reading it) or being iterated by Iterate.
	owned  bool
	update bool
	done   bool
}

func (t *memTxn) check(key []byte, write bool) error {
	if t.done {
		return ErrTxnDone
	}
	if write && !t.update {
		return ErrReadOnly
	}
	return checkKey(key)
}

// writable returns the tree this Update may write, cloning the shared one
// first.
func (t *memTxn) writable() *memTree {
	if !t.owned {
		t.tree = t.tree.Clone()
		t.owned = true
	}
	return t.tree
}

func (t *memTxn) Get(key []byte) ([]byte, error) {
	if err := t.check(key, false); err != nil {
		return nil, err
	}
	it, ok := t.tree.Get(memItem{kv: key})
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte{}, it.value()...), nil
}

func (t *memTxn) Set(key, value []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	// A copy: the caller may reuse its buffers once Update returns.
	t.writable().ReplaceOrInsert(newMemItem(key, value))
	return nil
}

func (t *memTxn) Delete(key []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	// Look first: the B-tree's Delete copies (and may rebalance) the path
	// to a key even when the key is absent.
	if !t.tree.Has(memItem{kv: key}) {
		return nil
	}
	t.writable().Delete(memItem{kv: key})
	return nil
}

func (t *memTxn) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	if t.done {
		return ErrTxnDone
	}
	// While fn runs, the tree iterated is shared with this iteration: a
	// write by fn clones it (and writes the clone) instead of moving items
	// under the iteration, which therefore never sees that write.
	tree, owned := t.tree, t.owned
	t.owned = false
	var err error
	tree.AscendGreaterOrEqual(memItem{kv: seekKey(prefix, start)}, func(it memItem) bool {
		if !bytes.HasPrefix(it.kv, prefix) {
			return false
		}
		// key and value end at their capacity: an append by fn cannot
		// scribble on the store's copy.
		err = fn(it.key(), it.value())
		return err == nil
	})
	if t.tree == tree {
		t.owned = owned // nothing was written: the tree is private again
	}
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}
