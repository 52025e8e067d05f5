package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// opCounter counts what a store is asked to do: read-write transactions
// (each a commit, and on Badger an fsync), and the keys and bytes they
// write. It passes Badger's deferred sync through, so that the kernel
// commits as it does on the bare store.
type opCounter struct {
	store.Store
	txns, writes, bytes atomic.Int64
}

func (c *opCounter) wrap(fn func(store.Txn) error) func(store.Txn) error {
	c.txns.Add(1)
	return func(tx store.Txn) error { return fn(&countingTxn{Txn: tx, c: c}) }
}

func (c *opCounter) Update(fn func(store.Txn) error) error { return c.Store.Update(c.wrap(fn)) }

// UpdateDeferred implements store.DeferredSync when the wrapped store does.
func (c *opCounter) UpdateDeferred(fn func(store.Txn) error) error {
	return c.Store.(store.DeferredSync).UpdateDeferred(c.wrap(fn))
}

// Sync implements store.DeferredSync.
func (c *opCounter) Sync() error { return c.Store.(store.DeferredSync).Sync() }

// countingTxn counts the writes of one transaction.
type countingTxn struct {
	store.Txn
	c *opCounter
}

func (t *countingTxn) Set(k, v []byte) error {
	t.c.writes.Add(1)
	t.c.bytes.Add(int64(len(k) + len(v)))
	return t.Txn.Set(k, v)
}

func (t *countingTxn) Delete(k []byte) error {
	t.c.writes.Add(1)
	t.c.bytes.Add(int64(len(k)))
	return t.Txn.Delete(k)
}

// scaleSpec is a genesis of n principals, each with a balance and a quota
// of its own, as a real genesis file would give them.
func scaleSpec(n int) genesis.Spec {
	var s genesis.Spec
	for i := range n {
		s.Principals = append(s.Principals, genesis.PrincipalSpec{
			ID: fmt.Sprintf("agent-%06d", i), Balance: 100, Quotas: map[kernel.Resource]int64{kernel.Disk: 1 << 20},
		})
	}
	return s
}

// TestInitScalesLinearly: init of a genesis of 8,000 principals costs per
// principal at most 1.5 times what one of 1,000 does, counted in what a
// store's time goes to (transactions, keys written, bytes written: counts,
// not a clock, so the test cannot be flaky), and a principal costs far less
// than a transaction: they are created and given tokens hundreds to a
// transaction (before, every principal took one transaction to be created
// and one more per quota, and every token went into one transaction, which
// Badger refuses past about 10,000 principals). The 100,000-principal
// figure is measured by hand (README, "init at scale").
func TestInitScalesLinearly(t *testing.T) {
	type cost struct{ txns, writes, bytes float64 }
	measure := func(n int) cost {
		dir := t.TempDir()
		g := &globals{dataDir: dir, out: io.Discard, errOut: io.Discard, log: slog.New(slog.DiscardHandler)}
		raw, where, err := g.openKV(dir, "", false)
		require.NoError(t, err)
		c := &opCounter{Store: raw}
		w, err := g.openWorld(context.Background(), dir, where, c, false)
		require.NoError(t, err)
		defer func() { require.NoError(t, w.close()) }()
		out, err := initWorld(context.Background(), w, scaleSpec(n))
		require.NoError(t, err)
		require.Len(t, out.Principals, n)
		a, err := auth.Open(raw)
		require.NoError(t, err)
		for _, i := range []int{0, n / 2, n - 1} {
			id, ok := a.Authenticate(out.Principals[i].Token)
			require.True(t, ok, "every principal's token works")
			require.Equal(t, out.Principals[i].ID, id.Principal)
		}
		ps, err := w.k.Principals(context.Background())
		require.NoError(t, err)
		require.Len(t, ps, n+1, "and the genesis principal")
		got := cost{float64(c.txns.Load()), float64(c.writes.Load()), float64(c.bytes.Load())}
		t.Logf("%d principals: %.0f transactions, %.0f keys written, %.0f bytes written", n, got.txns, got.writes, got.bytes)
		return cost{got.txns / float64(n), got.writes / float64(n), got.bytes / float64(n)}
	}
	small, large := measure(1000), measure(8000)
	for _, m := range []struct {
		what         string
		small, large float64
	}{
		{"transactions", small.txns, large.txns},
		{"keys written", small.writes, large.writes},
		{"bytes written", small.bytes, large.bytes},
	} {
		require.LessOrEqual(t, m.large, 1.5*m.small, "%s per principal: %.4f for 1,000, %.4f for 8,000", m.what, m.small, m.large)
	}
	// Hundreds of principals to a transaction: at 8,000, the batches of
	// principals and of tokens, and what genesis writes anyway.
	require.Less(t, large.txns, 0.01, "transactions per principal")
}
