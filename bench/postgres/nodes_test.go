package postgres_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
	pgstore "github.com/kernelhost/kernelhost/store/postgres"
)

// TestMain keeps one PostgreSQL server for every test and benchmark of the
// package; each world is a schema of its own on it (pgtest.Start).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// countingStore counts the Updates of a node that PostgreSQL aborted with a
// serialisation failure (store.ErrConflict): each is a batch of the node's
// committer that ran again, every action in it with it. The kernel does not
// count them; the store is where they show. It forwards Shared, the one
// optional method of store/postgres that the kernel looks for (it
// implements no store.DeferredSync).
type countingStore struct {
	store.Store
	updates, conflicts atomic.Int64
}

// Update runs the wrapped store's Update and counts it.
func (s *countingStore) Update(fn func(store.Txn) error) error {
	err := s.Store.Update(fn)
	s.updates.Add(1)
	if errors.Is(err, store.ErrConflict) {
		s.conflicts.Add(1)
	}
	return err
}

// Shared reports what the wrapped store's Shared reports, false for a
// store without one.
func (s *countingStore) Shared() bool {
	sh, ok := s.Store.(interface{ Shared() bool })
	return ok && sh.Shared()
}

// node is one kernel on its own connection pool to the shared database.
type node struct {
	k  *kernel.Kernel
	st *countingStore
}

// openNodes opens n kernels on one new, empty PostgreSQL schema, each on a
// store of its own (its own pool) with the evaluator ev(i) returns and the
// config cfg (Store and Evaluator set here, and SharedStore: every quota
// check reads the other nodes' rate windows, as on any PostgreSQL world,
// one node included); they are closed when tb ends. Node 0 opens first, on
// the empty schema.
func openNodes(tb testing.TB, n int, cfg kernel.Config, ev func(i int) kernel.Evaluator) []*node {
	tb.Helper()
	ctx := context.Background()
	dsn := pgtest.Start(tb)
	nodes := make([]*node, n)
	for i := range nodes {
		st, err := pgstore.Open(dsn, pgstore.Options{})
		require.NoError(tb, err)
		cs := &countingStore{Store: st}
		c := cfg
		c.Store, c.Evaluator, c.SharedStore = cs, ev(i), true
		k, err := kernel.Open(ctx, c)
		if err != nil {
			_ = st.Close()
		}
		require.NoError(tb, err)
		tb.Cleanup(func() {
			require.NoError(tb, k.Close(ctx))
			require.NoError(tb, st.Close())
		})
		nodes[i] = &node{k: k, st: cs}
	}
	return nodes
}
