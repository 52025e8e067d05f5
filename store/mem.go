package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// memStore is the in-memory Store: an immutable (persistent) treap whose root
// is swapped on commit. A View reads the root it loaded at its start, so it
// is a snapshot; an Update works on its own copy-on-write root and publishes
// it on success, so a discarded Update leaves nothing behind.
type memStore struct {
	gate gate

	// writeMu serialises Updates (so they never conflict); it is held for
	// the whole closure by the goroutine running Update. Views do not take it.
	writeMu sync.Mutex

	root atomic.Pointer[node] // committed state; replaced by Update under writeMu
}

// NewMem returns an empty in-memory Store for tests. It has the semantics of
// [OpenBadger]'s store (snapshot Views, discard on error, ordered iteration,
// copies) except that Updates run one at a time, so ErrConflict and
// ErrTxnTooBig never occur. Nothing survives Close.
func NewMem() Store {
	return &memStore{}
}

func (s *memStore) View(fn func(Txn) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	txn := &memTxn{root: s.root.Load()}
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
	txn := &memTxn{root: s.root.Load(), update: true}
	defer func() { txn.done = true }()
	if err := fn(txn); err != nil {
		return err
	}
	s.root.Store(txn.root)
	return nil
}

func (s *memStore) Close() error {
	if err := s.gate.close(); err != nil {
		return err
	}
	s.root.Store(nil) // let the data go
	return nil
}

// memTxn is a transaction of memStore. It is used by one goroutine.
type memTxn struct {
	root   *node // this transaction's view, including its own writes
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

func (t *memTxn) Get(key []byte) ([]byte, error) {
	if err := t.check(key, false); err != nil {
		return nil, err
	}
	n := t.root.get(key)
	if n == nil {
		return nil, ErrNotFound
	}
	return append([]byte{}, n.value...), nil
}

func (t *memTxn) Set(key, value []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	n := &node{
		key:   bytes.Clone(key),
		value: append([]byte{}, value...),
		prio:  rand.Uint64(),
	}
	l, r := t.root.split(key)
	_, r = r.split(successor(key))
	t.root = merge(merge(l, n), r)
	return nil
}

func (t *memTxn) Delete(key []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	l, r := t.root.split(key)
	_, r = r.split(successor(key))
	t.root = merge(l, r)
	return nil
}

func (t *memTxn) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	if t.done {
		return ErrTxnDone
	}
	err := t.root.ascend(seekKey(prefix, start), prefix, fn)
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// successor returns the smallest key greater than key.
func successor(key []byte) []byte {
	s := make([]byte, len(key)+1)
	copy(s, key)
	return s
}

// node is a node of an immutable treap ordered by key (a binary search tree)
// and heap-ordered by prio (random, so the tree is balanced in expectation
// whatever the keys). Nodes are never modified once reachable from a root:
// every change copies the path it touches.
type node struct {
	key, value  []byte
	prio        uint64
	left, right *node
}

// get returns the node of key, or nil.
func (n *node) get(key []byte) *node {
	for n != nil {
		switch c := bytes.Compare(key, n.key); {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return n
		}
	}
	return nil
}

// split returns the treaps of the keys < key and >= key, copying the path.
func (n *node) split(key []byte) (lt, ge *node) {
	if n == nil {
		return nil, nil
	}
	c := *n
	if bytes.Compare(n.key, key) < 0 {
		c.right, ge = n.right.split(key)
		return &c, ge
	}
	lt, c.left = n.left.split(key)
	return lt, &c
}

// merge joins two treaps whose keys are all less in l than in r, copying
// the path.
func merge(l, r *node) *node {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.prio > r.prio:
		c := *l
		c.right = merge(l.right, r)
		return &c
	default:
		c := *r
		c.left = merge(l, r.left)
		return &c
	}
}

// ascend calls fn in key order for the keys >= from that start with prefix.
// It stops at the first error, which it returns.
func (n *node) ascend(from, prefix []byte, fn func(key, value []byte) error) error {
	// An explicit stack, not recursion: the path is short, but an iterative
	// walk also makes stopping early trivial.
	var stack []*node
	for n != nil {
		if bytes.Compare(n.key, from) >= 0 {
			stack = append(stack, n)
			n = n.left
		} else {
			n = n.right
		}
	}
	for len(stack) > 0 {
		n = stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !bytes.HasPrefix(n.key, prefix) {
			return nil
		}
		// Full slice expressions: an append by fn cannot scribble on the
		// store's copy.
		if err := fn(n.key[:len(n.key):len(n.key)], n.value[:len(n.value):len(n.value)]); err != nil {
			return err
		}
		for c := n.right; c != nil; c = c.left {
			stack = append(stack, c)
		}
	}
	return nil
}
