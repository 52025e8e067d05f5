package hostile_test

import (
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// boundsCorpus are the attacks on the host's memory bounds (issue 15): the
// cap must hold during the call, for linear memory and tables alike.
func boundsCorpus() []attack {
	return []attack{
		// The guest grows, then looks: with a 1 MiB quota its memory.grow
		// must already have failed inside the call (SPEC.md, "Memory").
		{name: "memory.grow past the caller's quota inside a call", module: "grow_size", by: govern, memory: 1 << 20, code: abi.ContractFailed, msg: "past its cap returned -1: memory and tables hold 131072 bytes, the limit is 1048576"},
		// One table.grow of 48M elements (384 MiB) on a 16 MiB quota, with
		// the fuel to pay for it (SPEC.md, "Tables").
		{name: "table.grow bomb", module: "table_bomb", by: govern, asExecutable: true, cpu: 300_000, memory: 16 << 20, code: abi.ExecutionFailed, msg: "past its cap returned -1"},
	}
}

// TestCorpus_memoryBounds runs boundsCorpus as TestCorpus does, on a metered
// and an unmetered host: the memory cap is instrumented either way.
//
// Reference: abi/SPEC.md section 6, "Memory" and "Tables".
func TestCorpus_memoryBounds(t *testing.T) {
	t.Run("metered", func(t *testing.T) { runCorpus(t, true, boundsCorpus()) })
	t.Run("unmetered", func(t *testing.T) { runCorpus(t, false, boundsCorpus()) })
}

// TestCorpus_invokeFlood: a flood of concurrent top-level invocations of one
// executable, four times MaxInstancesPerModule of them, each a host-call
// flood that keeps its instance busy. Invoke used to serve every call past
// the pool with an instance of its own; now the module never has more than
// MaxInstancesPerModule instances, and a call that finds them busy past its
// deadline fails with UNAVAILABLE (retriable) and changes nothing. The world
// is on Badger, whose transactions run concurrently (the in-memory store
// serialises them, and with them the invocations).
//
// Reference: abi/SPEC.md section 8, "Instances".
func TestCorpus_invokeFlood(t *testing.T) {
	h, err := host.New(ctx, host.Config{Timeout: 30 * time.Second, InvokeTimeout: 30 * time.Second, MaxInstancesPerModule: maxInstances})
	require.NoError(t, err)
	st, err := store.OpenBadger("", store.BadgerOptions{InMemory: true})
	require.NoError(t, err)
	k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: h, Clock: kerneltest.NewClock(kerneltest.Start).Now,
		DefaultContract: freeware, ContractTimeout: 30 * time.Second, InvokeTimeout: 30 * time.Second})
	require.NoError(t, err)
	w := &world{k: k, h: h, st: st}
	defer w.close(t)
	require.NoError(t, k.CreatePrincipal(ctx, root, 0))
	require.NoError(t, k.CreatePrincipal(ctx, victim, victimBalance))
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: freeware, Type: kernel.TypeContract, Contract: freeware, Content: genesis.Contracts()[genesis.Freeware]})
	exe := readModule(t, "exe")
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: exeID, Type: kernel.TypeExecutable, Content: exe})

	const callers = 4 * maxInstances
	var attackers []string
	for i := range callers {
		a := "m-flood-" + string(rune('a'+i))
		require.NoError(t, k.CreatePrincipal(ctx, a, attackerBalance))
		// 200ms of cpu_rate: the invocation's deadline, and the longest a
		// caller waits for a slot.
		require.NoError(t, k.SetQuota(ctx, a, kernel.CPURate, 200_000))
		attackers = append(attackers, a)
	}
	before := w.snapshot(t)
	results := make([]kernel.Result, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: a, Target: exeID, Method: "f",
				Args: []byte(`{"query":"balance","principal":"victim"}`)})
		}()
	}
	close(start)
	wg.Wait()
	busy := 0
	for i, res := range results {
		require.False(t, res.OK, "call %d", i)
		switch res.Code {
		case abi.Unavailable:
			busy++
			require.True(t, res.Retriable, "call %d: %s", i, res.Message)
			require.Contains(t, res.Message, "stayed busy")
			require.Empty(t, res.Charges)
		case abi.ExecutionFailed:
			require.Contains(t, res.Message, "more than 10000 kernel calls", "call %d", i)
		case abi.ContractTimeout:
			// The watchdog, the wall-clock backstop behind fuel, stops a run
			// still going 5 s past its deadline: that happens only on a
			// machine so loaded that 10,000 host calls take that long (seen
			// under -race on 2 busy cores). A stopped run is a failure like
			// the others, and the invariants below must hold all the same.
			require.Contains(t, res.Message, "watchdog", "call %d", i)
			require.Empty(t, res.Charges)
		default:
			t.Fatalf("call %d: %s %s", i, res.ErrorCode, res.Message)
		}
	}
	stats, ok := h.Stats().Modules[sha256.Sum256(exe)]
	require.True(t, ok)
	t.Logf("%d of %d invocations found every instance busy; %d instances at most, %d created", busy, callers, stats.Peak, stats.Instantiated)
	require.LessOrEqual(t, stats.Peak, maxInstances, "no instance beyond MaxInstancesPerModule")
	require.LessOrEqual(t, stats.Instantiated, uint64(maxInstances), "none created outside the pool either")
	require.NoError(t, k.CheckLedger(ctx))
	after := w.snapshot(t)
	require.Equal(t, before.Artifacts, after.Artifacts)
	require.Equal(t, before.Balances, after.Balances)
}
