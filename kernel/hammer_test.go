package kernel_test

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/internal/hammer"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// TestLedger_hammer: concurrent random transfers and paid reads (some paid to
// an author, some burned, some sponsored) conserve minted = balances + burned
// exactly, on Badger, whose serialisable transactions really conflict.
func TestLedger_hammer(t *testing.T) {
	w := kerneltest.NewWorld(t, func(c *kernel.Config) {
		st, err := store.OpenBadger("", store.BadgerOptions{InMemory: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		c.Store = st
	})
	const n = 8
	for i := 0; i < n; i++ {
		w.Principal(t, fmt.Sprintf("p%d", i), 1000)
	}
	w.Principal(t, "sponsor", 5000)
	w.Deploy(t, "p0", "toll", "freeware", func(req *abi.Request) (abi.Decision, error) {
		switch req.TargetID {
		case "paid":
			return abi.Decision{Allowed: true, Cost: 3, Payee: "p0"}, nil
		case "burned":
			return abi.Decision{Allowed: true, Cost: 2}, nil
		default:
			return abi.Decision{Allowed: true, Cost: 1, Payer: "sponsor", Payee: "p1"}, nil
		}
	})
	for _, id := range []string{"paid", "burned", "sponsored"} {
		a := write("p0", id, "x", nil)
		a.Contract = "toll"
		requireCode(t, abi.OK, w.Do(a))
	}
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "toll", PerCallCap: 1, TotalCap: 1 << 40}))

	var ok, refused atomic.Int64
	hammer.Run(t, 8, 200, func(p, i int) {
		r := rand.New(rand.NewPCG(uint64(p), uint64(i)))
		caller := fmt.Sprintf("p%d", r.IntN(n))
		var res kernel.Result
		switch r.IntN(4) {
		case 0:
			res = w.Do(kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: []string{"paid", "burned", "sponsored"}[r.IntN(3)]})
		default:
			to := fmt.Sprintf("p%d", r.IntN(n))
			if to == caller {
				return
			}
			res = w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: caller, To: to, Amount: int64(1 + r.IntN(300))})
		}
		switch res.Code {
		case abi.OK:
			ok.Add(1)
		case abi.InsufficientFunds:
			refused.Add(1)
		default:
			t.Errorf("unexpected result %s: %s", res.ErrorCode, res.Message)
		}
	})
	require.NoError(t, w.K.CheckLedger(ctx))
	tot, err := w.K.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(n*1000+5000), tot.Minted)
	var sum uint64
	ps, err := w.K.Principals(ctx)
	require.NoError(t, err)
	for _, p := range ps {
		sum += p.Balance
	}
	require.Equal(t, tot.Minted, sum+tot.Burned)
	require.Greater(t, ok.Load(), int64(0))
	t.Logf("ok=%d insufficient=%d burned=%d", ok.Load(), refused.Load(), tot.Burned)
}

// Acknowledged actions survive closing and reopening the store.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	ev := kerneltest.NewEvaluator()
	ev.Register([]byte("fake:allow"), kerneltest.AllowAll)
	clock := kerneltest.NewClock(kerneltest.Start)
	open := func() (*kernel.Kernel, store.Store) {
		st, err := store.OpenBadger(dir, store.BadgerOptions{})
		require.NoError(t, err)
		k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: ev, Clock: clock.Now})
		require.NoError(t, err)
		return k, st
	}
	k, st := open()
	require.NoError(t, k.CreatePrincipal(ctx, "alice", 50))
	require.NoError(t, k.CreatePrincipal(ctx, "bob", 0))
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "allow", Type: kernel.TypeContract, Contract: "allow", Content: []byte("fake:allow")})
	requireCode(t, abi.OK, res)
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "doc", Type: "data", Contract: "allow", Content: []byte("kept")})
	requireCode(t, abi.OK, res)
	requireCode(t, abi.OK, k.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 20}))
	evs, err := k.Events(ctx, 0, 0)
	require.NoError(t, err)
	last := evs[len(evs)-1].Seq
	require.NoError(t, k.Close(ctx))
	require.NoError(t, st.Close())

	k, st = open()
	defer st.Close()
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "doc"})
	requireCode(t, abi.OK, res)
	require.Equal(t, "kept", string(res.Content))
	p, err := k.Principal(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, uint64(20), p.Balance)
	require.NoError(t, k.CheckLedger(ctx))
	// Event numbering continues after the last stored event.
	evs, err = k.Events(ctx, last, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, last+1, evs[0].Seq)
	require.Equal(t, kernel.KindRead, evs[0].Kind)
}
