package kernel_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// gateStore counts Updates and, while shut, holds every Update before it
// begins: what a slow fsync looks like to the committer.
type gateStore struct {
	store.Store
	updates atomic.Int64
	gate    atomic.Pointer[chan struct{}]
}

func (s *gateStore) Update(fn func(store.Txn) error) error {
	s.updates.Add(1)
	if g := s.gate.Load(); g != nil {
		<-*g
	}
	return s.Store.Update(fn)
}

func (s *gateStore) shut() { g := make(chan struct{}); s.gate.Store(&g) }

func (s *gateStore) open() {
	if g := s.gate.Swap(nil); g != nil {
		close(*g)
	}
}

func gateWorld(t *testing.T) (*kerneltest.World, *gateStore) {
	var gs *gateStore
	w := kerneltest.NewWorld(t, func(c *kernel.Config) {
		gs = &gateStore{Store: c.Store}
		c.Store = gs
	})
	t.Cleanup(gs.open)
	return w, gs
}

// lastStoredEvent returns the last audit event of k (Events syncs the queued
// read events first).
func lastStoredEvent(t *testing.T, k *kernel.Kernel) kernel.Event {
	t.Helper()
	var last kernel.Event
	since := uint64(0)
	for {
		evs, err := k.Events(ctx, since, 1000)
		require.NoError(t, err)
		if len(evs) == 0 {
			require.NotZero(t, last.Seq, "there is an event")
			return last
		}
		last = evs[len(evs)-1]
		since = last.Seq
	}
}

// waitQueued waits until n attempts wait for the committer (a condition,
// not a clock: the test fails only if they never arrive).
func waitQueued(t *testing.T, k *kernel.Kernel, n int) {
	require.Eventually(t, func() bool { return kernel.QueuedJobs(k) == n }, 30*time.Second, 100*time.Microsecond)
}

// TestReadCommitsNothing: a read is answered while the store cannot commit
// at all; its audit event is written afterwards, with the next batch, and a
// reader of the audit log sees it.
func TestReadCommitsNothing(t *testing.T) {
	w, gs := gateWorld(t)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "hello", nil)))

	gs.shut()
	before := gs.updates.Load()
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "doc"})
	requireCode(t, abi.OK, res)
	require.Equal(t, "hello", string(res.Content))
	require.Zero(t, res.Event, "a read's event is numbered when a batch writes it, after the answer")

	gs.open()
	ev := lastStoredEvent(t, w.K)
	require.Equal(t, kernel.KindRead, ev.Kind)
	require.Equal(t, "bob", ev.Caller)
	require.GreaterOrEqual(t, gs.updates.Load()-before, int64(1), "the event went out with a batch")
	st := w.K.CommitStats()
	require.Zero(t, st.EventsPending)
	require.NotZero(t, st.EventsFlushed)
}

// TestGroupCommit: actions that arrive while a batch commits are committed
// together, in one store transaction, and each is answered only after it.
func TestGroupCommit(t *testing.T) {
	w, gs := gateWorld(t)
	const n = 64
	for i := range n {
		w.Principal(t, fmt.Sprintf("p%d", i), 10)
	}
	gs.shut()
	before := gs.updates.Load()
	var wg sync.WaitGroup
	var answered atomic.Int64
	results := make([]kernel.Result, n)
	do := func(i int) {
		defer wg.Done()
		results[i] = w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: fmt.Sprintf("p%d", i), To: fmt.Sprintf("p%d", (i+1)%n), Amount: 3})
		answered.Add(1)
	}
	wg.Add(1)
	go do(0) // its batch waits at the gate
	require.Eventually(t, func() bool { return gs.updates.Load() == before+1 }, 30*time.Second, 100*time.Microsecond)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go do(i)
	}
	waitQueued(t, w.K, n-1)
	require.Zero(t, answered.Load(), "nobody is answered before its batch commits")
	gs.open()
	wg.Wait()
	for i, r := range results {
		requireCode(t, abi.OK, r)
		require.NotZero(t, r.Event, "transfer %d", i)
	}
	require.Equal(t, before+2, gs.updates.Load(), "one transaction for the first, one for the 63 that queued")
	for i := range n {
		require.Equal(t, uint64(10), w.Balance(t, fmt.Sprintf("p%d", i)))
	}
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestBatchIsolatesFailures: in one batch, an invocation whose executable
// transfers and then fails is rolled back alone; the transfers batched
// with it commit, and its failure is recorded.
func TestBatchIsolatesFailures(t *testing.T) {
	w, gs := gateWorld(t)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 0)
	w.Principal(t, "owner", 0)
	w.DeployExecutable(t, "owner", "flaky", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		if r := call(calls, act(map[string]any{"kind": "transfer", "to": "owner", "amount": 50})); r["ok"] != true {
			return abi.InvokeResult{}, fmt.Errorf("transfer refused: %v", r)
		}
		return abi.InvokeResult{OK: false, Output: []byte("changed my mind")}, nil
	})
	gs.shut()
	before := gs.updates.Load()
	var wg sync.WaitGroup
	var blocker kernel.Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		blocker = w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1})
	}()
	require.Eventually(t, func() bool { return gs.updates.Load() == before+1 }, 30*time.Second, 100*time.Microsecond)
	var inv kernel.Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		inv = w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "flaky"})
	}()
	waitQueued(t, w.K, 1)
	transfers := make([]kernel.Result, 10)
	for i := range transfers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			transfers[i] = w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 2})
		}()
	}
	waitQueued(t, w.K, 11)
	gs.open()
	wg.Wait()
	requireCode(t, abi.OK, blocker)
	requireCode(t, abi.ExecutionFailed, inv)
	for _, r := range transfers {
		requireCode(t, abi.OK, r)
	}
	require.Equal(t, uint64(100-1-20), w.Balance(t, "alice"), "the failed invocation's transfer is rolled back")
	require.Equal(t, uint64(21), w.Balance(t, "bob"))
	require.Equal(t, uint64(0), w.Balance(t, "owner"))
	evs, err := w.K.Events(ctx, inv.Event-1, 1)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, kernel.KindInvoke, evs[0].Kind)
	require.Equal(t, abi.ExecutionFailed.String(), evs[0].Code)
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestHotTransfersNeverConflict: 32 writers over 20 principals on Badger,
// where every pair of concurrent transactions on one principal used to
// conflict: every transfer is ordered, none fails with CONFLICT, and every
// success is in the audit log.
func TestHotTransfersNeverConflict(t *testing.T) {
	st, err := store.OpenBadger(t.TempDir(), store.BadgerOptions{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Store = st })
	const principals, writers, each = 20, 32, 25
	for i := range principals {
		w.Principal(t, fmt.Sprintf("p%d", i), 1000)
	}
	since, err := w.K.Events(ctx, 0, 1<<20)
	require.NoError(t, err)
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				from, to := (g+i)%principals, (g+3*i+1)%principals
				if from == to {
					to = (to + 1) % principals
				}
				r := w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: fmt.Sprintf("p%d", from), To: fmt.Sprintf("p%d", to), Amount: 1 + int64(i%5)})
				switch r.Code {
				case abi.OK:
					ok.Add(1)
				case abi.Conflict:
					conflicts.Add(1)
				default:
					t.Errorf("transfer: %s %s", r.Code, r.Message)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, conflicts.Load(), "no CONFLICT results")
	require.Equal(t, int64(writers*each), ok.Load())
	var sum uint64
	for i := range principals {
		sum += w.Balance(t, fmt.Sprintf("p%d", i))
	}
	require.Equal(t, uint64(principals*1000), sum, "scrip conserved")
	evs, err := w.K.Events(ctx, uint64(len(since)), 1<<20)
	require.NoError(t, err)
	n := 0
	for _, e := range evs {
		if e.Kind == kernel.KindTransfer && e.Code == "OK" {
			n++
		}
	}
	require.Equal(t, writers*each, n, "every success is in the audit log")
	require.NoError(t, w.K.CheckLedger(ctx))
}

// syncStore is a store whose commits are durable only at Sync, which waits
// while the gate is shut: Badger's split of commit and fsync, made slow.
type syncStore struct {
	store.Store
	commits, syncs atomic.Int64
	gate           atomic.Pointer[chan struct{}] // nil: open
}

func (s *syncStore) UpdateDeferred(fn func(store.Txn) error) error {
	err := s.Store.Update(fn)
	s.commits.Add(1)
	return err
}

func (s *syncStore) Sync() error {
	if g := s.gate.Load(); g != nil {
		<-*g
	}
	s.syncs.Add(1)
	return nil
}

// TestAnsweredAfterSync: on a store that syncs apart from committing, an
// action is answered only once a sync after its commit returned, and the
// committer runs the next batch while the last one is being synced.
func TestAnsweredAfterSync(t *testing.T) {
	ss := &syncStore{}
	w := kerneltest.NewWorld(t, func(c *kernel.Config) {
		ss.Store = c.Store
		c.Store = ss
	})
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 0)
	gate := make(chan struct{})
	ss.gate.Store(&gate)
	open := func() {
		if ss.gate.Swap(nil) != nil {
			close(gate)
		}
	}
	defer open()

	commits := ss.commits.Load()
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 5}))
			answered.Add(1)
		}()
		// Each transfer commits (in a batch of its own or not) while the
		// sync of the first is held.
		require.Eventually(t, func() bool { return ss.commits.Load() > commits }, 30*time.Second, 100*time.Microsecond)
		commits = ss.commits.Load()
	}
	require.Zero(t, answered.Load(), "committed, not yet durable: nobody is answered")
	require.Equal(t, uint64(10), w.Balance(t, "bob"), "a snapshot sees the commits already")
	open()
	wg.Wait()
	require.Equal(t, int64(2), answered.Load())
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestPanicInCommittedAction: an Evaluator that panics while the committer
// runs an action fails that action with INTERNAL, changes nothing, and
// leaves the kernel serving: the actions batched with it and after it
// commit.
func TestPanicInCommittedAction(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 0)
	w.Deploy(t, "alice", "boom", "allow-all", func(req *abi.Request) (abi.Decision, error) {
		if req.Action != abi.ActionRead {
			panic("contract host bug")
		}
		return abi.Decision{Allowed: true}, nil
	})
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "doc", Type: "data", Contract: "boom", Content: []byte("x")}))
	res := w.Do(write("alice", "doc", "y", nil)) // judged by boom: it panics
	requireCode(t, abi.Internal, res)
	require.Zero(t, res.Event, "no event for an INTERNAL abort")
	read := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"})
	requireCode(t, abi.OK, read)
	require.Equal(t, "x", string(read.Content), "the write changed nothing")
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 7}))
	require.Equal(t, uint64(7), w.Balance(t, "bob"))
	require.NoError(t, w.K.CheckLedger(ctx))
}
