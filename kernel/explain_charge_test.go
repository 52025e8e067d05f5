package kernel_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// meteredEval is the fake evaluator with fuel metering for one module: the
// burner uses burn fuel per check, or traps with OUT_OF_FUEL, having used
// its whole budget, when the budget is smaller (a run without a fuel limit
// gets hostCheckFuel, as package host gives its default). It records the
// limits of every burner run. Every other module runs as in kerneltest (1µs,
// no fuel).
type meteredEval struct {
	*kerneltest.Evaluator
	burner [32]byte
	burn   uint64

	mu     sync.Mutex
	limits []abi.Limits // guarded by mu
}

func (e *meteredEval) Evaluate(ctx context.Context, h [32]byte, req *abi.Request, lim abi.Limits) (abi.Decision, abi.Usage, error) {
	d, u, err := e.Evaluator.Evaluate(ctx, h, req, lim)
	if h != e.burner {
		return d, u, err
	}
	e.mu.Lock()
	e.limits = append(e.limits, lim)
	e.mu.Unlock()
	budget := lim.Fuel
	if budget == 0 {
		budget = hostCheckFuel // as package host: no limit means its own default
	}
	if budget < e.burn {
		return abi.Decision{}, abi.Usage{Fuel: budget}, &kerneltest.CodedError{C: abi.OutOfFuel, Msg: "budget exhausted"}
	}
	return d, abi.Usage{Fuel: e.burn}, err
}

// hostCheckFuel stands for package host's default check budget, which a
// run without a fuel limit gets.
const hostCheckFuel = 1 << 40

// runs returns the limits of the burner runs so far and forgets them.
func (e *meteredEval) runs() []abi.Limits {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.limits
	e.limits = nil
	return l
}

// TestExplainCharged: Explain runs contracts on the caller's behalf, so it
// pays for them as Do does. Explaining a read of a fuel-burning contract (one
// run: it governs itself) charges the caller's cpu_rate exactly what the same
// read through Do charges; each run gets the caller's remaining cpu_rate as
// its budget, as in Do; once cpu_rate is exhausted, Explain is refused with
// QUOTA_EXCEEDED and runs nothing. Before, 20 explains of a spinning
// contract took 8 s with cpu_rate still at 0 used.
//
// Reference: issue 15, item 3a.
func TestExplainCharged(t *testing.T) {
	const (
		burn    = 5_000_000 // fuel per burner run
		burnCPU = 5_000     // µs at the default 1000 fuel per µs
		fuelPer = 1000
		quota   = 12_000 // µs of cpu_rate: two full runs, then part of one
	)
	var ev *meteredEval
	w := kerneltest.NewWorld(t, func(c *kernel.Config) {
		ev = &meteredEval{Evaluator: c.Evaluator.(*kerneltest.Evaluator), burner: sha256.Sum256([]byte("fake:burner")), burn: burn}
		c.Evaluator = ev
		c.ContractTimeout = 100 * time.Millisecond // 100_000 µs: more than any quota here
	})
	w.Principal(t, "alice", 0)
	w.Deploy(t, "alice", "burner", "burner", kerneltest.AllowAll)
	w.Principal(t, "bob", 0)   // explains
	w.Principal(t, "carol", 0) // does the same through Do
	for _, p := range []string{"bob", "carol"} {
		require.NoError(t, w.K.SetQuota(ctx, p, kernel.CPURate, quota))
	}
	read := func(caller string) kernel.Action {
		return kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: "burner"}
	}
	used := func(p string) int64 {
		s, err := w.K.QuotaStatus(ctx, p, kernel.CPURate)
		require.NoError(t, err)
		return s.Used
	}
	ev.runs()

	// Round by round, bob explains what carol does: the same charge, the
	// same budget, the same outcome.
	for i, want := range []struct {
		code   abi.Code
		charge int64
		budget int64 // µs of cpu_rate the run may use
	}{
		{abi.OK, burnCPU, quota},
		{abi.OK, burnCPU, quota - burnCPU},
		{abi.OutOfFuel, quota - 2*burnCPU, quota - 2*burnCPU}, // the rest is not enough: all of it is used
	} {
		before := used("bob")
		ex, err := w.K.Explain(ctx, read("bob"))
		require.NoError(t, err)
		requireCode(t, want.code, ex.Outcome)
		require.Equal(t, want.charge, used("bob")-before, "explain %d charges cpu_rate", i)
		require.Equal(t, want.charge, ex.CPU, "explain %d reports its charge", i)
		exRuns := ev.runs()
		require.Len(t, exRuns, 1, "a self-governed contract's read is judged by one run")

		before = used("carol")
		res := w.Do(read("carol"))
		requireCode(t, want.code, res)
		require.Equal(t, want.charge, used("carol")-before, "Do %d charges cpu_rate", i)
		doRuns := ev.runs()
		require.Len(t, doRuns, 1)
		require.Equal(t, doRuns, exRuns, "explain %d runs under Do's limits", i)
		require.Equal(t, uint64(want.budget*fuelPer), exRuns[0].Fuel, "the budget is the caller's remaining cpu_rate")
		require.Equal(t, time.Duration(want.budget)*time.Microsecond, exRuns[0].Timeout)
		require.Equal(t, res.Fuel, ex.Outcome.Fuel)
		if res.Event != 0 {
			evs, err := w.K.Events(ctx, res.Event-1, 1)
			require.NoError(t, err)
			require.Equal(t, want.charge, evs[0].CPU, "Do's event records the same charge")
		}
	}

	// Exhausted: refused before any contract runs, as Do is.
	require.Equal(t, int64(quota), used("bob"))
	ex, err := w.K.Explain(ctx, read("bob"))
	require.NoError(t, err)
	requireCode(t, abi.QuotaExceeded, ex.Outcome)
	require.Equal(t, string(kernel.CPURate), ex.Outcome.Resource)
	require.Zero(t, ex.CPU)
	require.Nil(t, ex.Decision)
	requireCode(t, abi.QuotaExceeded, w.Do(read("carol")))
	require.Empty(t, ev.runs(), "nothing ran for an exhausted caller")
	require.Equal(t, int64(quota), used("bob"))

	// An explanation pays for every run it makes: a write of an artifact
	// the burner governs is judged after the read checks of the artifact
	// and of the burner, three runs of 5ms each.
	w.Principal(t, "dave", 0)
	require.NoError(t, w.K.SetQuota(ctx, "dave", kernel.CPURate, quota*10))
	doc := write("alice", "doc", "x", nil)
	doc.Contract = "burner"
	requireCode(t, abi.OK, w.Do(doc))
	ev.runs()
	ex, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "dave", Target: "doc", Content: []byte("y")})
	require.NoError(t, err)
	requireCode(t, abi.OK, ex.Outcome)
	require.Len(t, ev.runs(), 3)
	require.Equal(t, int64(3*burnCPU), ex.CPU)
	require.Equal(t, int64(3*burnCPU), used("dave"))

	// An explanation records no event and changes nothing in the store.
	seq := lastEvent(t, w)
	before := snapshot(t, w.Store)
	_, err = w.K.Explain(ctx, read("dave"))
	require.NoError(t, err)
	require.Equal(t, seq, lastEvent(t, w))
	require.Equal(t, before, snapshot(t, w.Store))
}
