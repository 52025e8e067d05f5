package main

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/kernelhost/kernelhost/store"
)

// queryStore is the store of a world opened for queries only (a command
// holding the shared lock): a Badger store opened read-only, under a kernel
// that writes a little while it opens (kernel.Open records the schema
// version, a node number for its rate windows, and sweeps expired rate
// rows). Until seal, Update runs its closure on a scratch layer over a
// snapshot, which reads its own writes and is then thrown away: the
// kernel's bookkeeping of a process that changes nothing. After seal,
// Update refuses (store.ErrReadOnly), so that a query command that
// attempted a change would fail rather than lose it.
type queryStore struct {
	store.Store // opened read-only
	sealed      atomic.Bool
}

// seal makes every later Update fail: the kernel is open.
func (s *queryStore) seal() { s.sealed.Store(true) }

// Update runs fn on a scratch layer until seal, and refuses afterwards.
func (s *queryStore) Update(fn func(store.Txn) error) error {
	if s.sealed.Load() {
		return fmt.Errorf("%w: this command opened the world for reading only", store.ErrReadOnly)
	}
	return s.Store.View(func(tx store.Txn) error {
		return fn(&scratchTxn{base: tx, writes: map[string]*[]byte{}})
	})
}

// scratchTxn is a transaction whose writes stay in memory over a read-only
// base transaction. A nil value in writes is a delete.
type scratchTxn struct {
	base   store.Txn
	writes map[string]*[]byte
}

func (t *scratchTxn) Get(key []byte) ([]byte, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, err
	}
	if v, ok := t.writes[string(key)]; ok {
		if v == nil {
			return nil, store.ErrNotFound
		}
		return bytes.Clone(*v), nil
	}
	return t.base.Get(key)
}

func (t *scratchTxn) Set(key, value []byte) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	t.writes[string(key)] = &v
	return nil
}

func (t *scratchTxn) Delete(key []byte) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	t.writes[string(key)] = nil
	return nil
}

// Iterate merges the scratch writes made before it was called into the
// base's keys, in order.
func (t *scratchTxn) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	from := start
	if bytes.Compare(from, prefix) < 0 {
		from = prefix
	}
	var mine []string
	snapshot := make(map[string]*[]byte, len(t.writes))
	for k, v := range t.writes {
		if bytes.HasPrefix([]byte(k), prefix) && k >= string(from) {
			mine = append(mine, k)
			snapshot[k] = v
		}
	}
	sort.Strings(mine)
	stopped := false
	call := func(k, v []byte) error {
		err := fn(k, v)
		if errors.Is(err, store.ErrStop) {
			stopped = true
		}
		return err
	}
	emit := func(k string) error {
		if v := snapshot[k]; v != nil { // nil: deleted
			return call([]byte(k), *v)
		}
		return nil
	}
	i := 0
	err := t.base.Iterate(prefix, start, func(key, value []byte) error {
		for i < len(mine) && mine[i] < string(key) {
			if err := emit(mine[i]); err != nil {
				return err
			}
			i++
		}
		if i < len(mine) && mine[i] == string(key) {
			i++
			return emit(string(key))
		}
		return call(key, value)
	})
	for ; err == nil && !stopped && i < len(mine); i++ {
		err = emit(mine[i])
	}
	if stopped && errors.Is(err, store.ErrStop) {
		return nil
	}
	return err
}
