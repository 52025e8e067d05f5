package kernel_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// txnCounter counts the read-write transactions of the store it wraps.
type txnCounter struct {
	store.Store
	updates atomic.Int64
}

func (c *txnCounter) Update(fn func(store.Txn) error) error {
	c.updates.Add(1)
	return c.Store.Update(fn)
}

// bulkSpec is n principals, every third with quotas of its own.
func bulkSpec(n int) []kernel.NewPrincipal {
	ps := make([]kernel.NewPrincipal, n)
	for i := range ps {
		ps[i] = kernel.NewPrincipal{ID: fmt.Sprintf("p%05d", i), Balance: uint64(i % 7 * 10)}
		if i%3 == 0 {
			ps[i].Quotas = map[kernel.Resource]int64{kernel.Disk: int64(1000 + i), kernel.LLMBudget: 5}
		}
	}
	return ps
}

// TestCreatePrincipalsMatchesSingleCalls: a bulk creation of more
// principals than one transaction holds ends in the state the single calls
// (CreatePrincipal, then SetQuota for each quota) end in, records the same
// inputs, and its recording replays (as those single calls) to that state.
func TestCreatePrincipalsMatchesSingleCalls(t *testing.T) {
	const n = 2*kernel.PrincipalsPerTxn + 17
	ps := bulkSpec(n)
	record := func(c *kernel.Config) { c.Record = true }

	single := kerneltest.NewWorld(t, record)
	for _, p := range ps {
		require.NoError(t, single.K.CreatePrincipal(ctx, p.ID, p.Balance))
		for _, r := range kernel.Resources {
			if v, ok := p.Quotas[r]; ok {
				require.NoError(t, single.K.SetQuota(ctx, p.ID, r, v))
			}
		}
	}

	cs := &txnCounter{Store: store.NewMem()}
	bulk := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Record = true; c.Store = cs })
	t.Cleanup(func() { _ = cs.Close() })
	before := cs.updates.Load()
	var batches []int
	created, err := bulk.K.CreatePrincipals(ctx, ps, func(tx store.Txn, b []kernel.NewPrincipal) error {
		batches = append(batches, len(b))
		return tx.Set([]byte("x/test/"+b[0].ID), []byte("with the batch"))
	})
	require.NoError(t, err)
	require.Equal(t, n, created)
	require.Equal(t, []int{kernel.PrincipalsPerTxn, kernel.PrincipalsPerTxn, 17}, batches)
	require.LessOrEqual(t, cs.updates.Load()-before, int64(3), "one transaction per batch")

	want, err := kernel.StateHash(single.Store)
	require.NoError(t, err)
	got, err := kernel.StateHash(bulk.Store)
	require.NoError(t, err)
	require.Equal(t, want, got, "bulk creation ends in the single calls' state")
	require.NoError(t, bulk.K.CheckLedger(ctx))

	strip := func(rs []kernel.Record) []kernel.Record {
		for i := range rs {
			rs[i].Seq = 0
		}
		return rs
	}
	wantRecs, err := kernel.Records(single.Store, 0, 100000)
	require.NoError(t, err)
	gotRecs, err := kernel.Records(bulk.Store, 0, 100000)
	require.NoError(t, err)
	require.Equal(t, strip(wantRecs), strip(gotRecs), "the same inputs are recorded")

	gotRecs, err = kernel.Records(bulk.Store, 0, 100000)
	require.NoError(t, err)
	replayed, err := replayInto(t, bulk, gotRecs)
	require.NoError(t, err)
	again, err := kernel.StateHash(replayed)
	require.NoError(t, err)
	require.Equal(t, want, again, "the recording replays to the same state")
}

// TestCreatePrincipalsRefusesBadInput: a bad entry anywhere refuses the
// whole call before anything is written; a principal that exists fails its
// batch, which (one transaction) writes none of its principals nor what
// the hook wrote; a hook's error fails its batch.
func TestCreatePrincipalsRefusesBadInput(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	require.NoError(t, w.K.CreatePrincipal(ctx, "taken", 5))
	hookErr := errors.New("token store down")
	for _, tc := range []struct {
		name string
		ps   []kernel.NewPrincipal
		hook error
		code abi.Code
	}{
		{"bad id", []kernel.NewPrincipal{{ID: "a"}, {ID: "../x"}}, nil, abi.InvalidArgument},
		{"listed twice", []kernel.NewPrincipal{{ID: "a"}, {ID: "b"}, {ID: "a"}}, nil, abi.InvalidArgument},
		{"unknown resource", []kernel.NewPrincipal{{ID: "a", Quotas: map[kernel.Resource]int64{"gold": 1}}}, nil, abi.InvalidArgument},
		{"negative quota", []kernel.NewPrincipal{{ID: "a", Quotas: map[kernel.Resource]int64{kernel.Disk: -1}}}, nil, abi.InvalidArgument},
		{"balance past the supply", []kernel.NewPrincipal{{ID: "a", Balance: kernel.MaxSupply}, {ID: "b", Balance: 1}}, nil, abi.InvalidArgument},
		{"exists already", []kernel.NewPrincipal{{ID: "a"}, {ID: "taken"}}, nil, abi.AlreadyExists},
		{"hook fails", []kernel.NewPrincipal{{ID: "a"}}, hookErr, abi.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := kernel.StateHash(w.Store)
			require.NoError(t, err)
			created, err := w.K.CreatePrincipals(ctx, tc.ps, func(tx store.Txn, _ []kernel.NewPrincipal) error {
				if err := tx.Set([]byte("x/test/hook"), []byte("1")); err != nil {
					return err
				}
				return tc.hook
			})
			require.Equal(t, tc.code, codeOfErr(err), "%v", err)
			require.Zero(t, created)
			after, err := kernel.StateHash(w.Store)
			require.NoError(t, err)
			require.Equal(t, before, after, "nothing written")
			require.NoError(t, w.Store.View(func(tx store.Txn) error {
				_, err := tx.Get([]byte("x/test/hook"))
				require.ErrorIs(t, err, store.ErrNotFound, "the hook's writes are dropped with the batch")
				return nil
			}))
		})
	}
}
