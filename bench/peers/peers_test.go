package peers

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// The kernel world: CheckRequest's artifact, created by its created_by with
// its metadata, governed by the C genesis freeware contract.
const (
	reader = "agent-0099" // reads in the read group: not the controller
)

// engines holds every decider over one policy.
type engines struct {
	h     *host.Host
	hash  [32]byte
	cedar *Cedar
	opa   *OPA
}

func newEngines(tb testing.TB) *engines {
	tb.Helper()
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = h.Close(ctx) })
	hash, err := h.Prepare(ctx, genesis.Contracts()[genesis.Freeware])
	require.NoError(tb, err)
	c, err := NewCedar()
	require.NoError(tb, err)
	o, err := NewOPA(ctx)
	require.NoError(tb, err)
	return &engines{h: h, hash: hash, cedar: c, opa: o}
}

// hostDecide runs the C genesis freeware contract through host.Evaluate.
func (e *engines) hostDecide(tb testing.TB, req *abi.Request) bool {
	d, _, err := e.h.Evaluate(context.Background(), e.hash, req, abi.Limits{})
	require.NoError(tb, err)
	return d.Allowed
}

var (
	kernelHostOnce sync.Once
	kernelHostVal  *host.Host
	kernelHostErr  error
)

// kernelHost returns the wasm host shared by every kernel world of the
// process, so that the genesis modules (the rights registry is a Go module
// of a few MiB) are compiled once. It is never closed.
//
// NB: 1s deadlines (here and the kernel's ContractTimeout) instead of 100ms
// only so that a run on a loaded machine measures rather than fails with
// CONTRACT_TIMEOUT; the value does not change what arming a deadline costs.
func kernelHost(tb testing.TB) *host.Host {
	kernelHostOnce.Do(func() {
		kernelHostVal, kernelHostErr = host.New(context.Background(), host.Config{Timeout: time.Second})
	})
	require.NoError(tb, kernelHostErr)
	return kernelHostVal
}

// newKernel opens a kernel on store.NewMem with the wasm host and genesis,
// creates req's target as req.CreatedBy with req's metadata, and returns it.
func newKernel(tb testing.TB, req *abi.Request, callers ...string) *kernel.Kernel {
	tb.Helper()
	ctx := context.Background()
	st := store.NewMem()
	tb.Cleanup(func() { _ = st.Close() })
	h := kernelHost(tb)
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: h, Clock: time.Now, DefaultContract: genesis.DefaultContract,
		ContractTimeout: time.Second,
		// At least genesis.MinContentBytes: genesis installs the rights
		// registry, a Go module of a few MiB.
		MaxContentBytes: 8 << 20,
		// Raised so that a long run measures the steady state, not the
		// quota running out; the pre-check runs all the same.
		DefaultQuotas: map[kernel.Resource]int64{kernel.CPURate: 1 << 50},
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = k.Close(ctx) })
	ids := map[string]bool{req.CreatedBy: true}
	for _, c := range callers {
		ids[c] = true
	}
	spec := genesis.Spec{}
	for id := range ids {
		spec.Principals = append(spec.Principals, genesis.PrincipalSpec{ID: id, Balance: 1000})
	}
	sort.Slice(spec.Principals, func(i, j int) bool { return spec.Principals[i].ID < spec.Principals[j].ID })
	require.NoError(tb, genesis.Install(ctx, k, spec))
	meta := map[string]string{}
	for _, kv := range req.Metadata {
		meta[kv.Key] = kv.Value
	}
	res := k.Do(ctx, kernel.Action{
		Kind: kernel.KindWrite, Caller: req.CreatedBy, Target: req.TargetID, Type: req.TargetType,
		Content: bytes.Repeat([]byte("n"), int(req.Size)), Metadata: meta,
	})
	require.True(tb, res.OK, res.Message)
	return k
}

// kernelAction is req as a kernel action: a read, or a write of
// req.PayloadSize bytes.
func kernelAction(req *abi.Request) kernel.Action {
	a := kernel.Action{Kind: kernel.Kind(req.Action.String()), Caller: req.Caller, Target: req.TargetID}
	if req.Action == abi.ActionWrite {
		a.Content = bytes.Repeat([]byte("w"), int(req.PayloadSize))
	}
	return a
}

// BenchmarkPolicy decides one request of the freeware policy with every
// engine. Two groups, each with its own native floor:
//
//   - write: CheckRequest, a write by the controller (allowed);
//   - read: the same artifact read by another agent (allowed).
//
// Rows: native (plain Go on the decoded request), kernelhost-host (the C
// genesis contract through host.Evaluate, warm pooled instance, limits
// armed), kernelhost-kernel (Kernel.Do of the action on store.NewMem: the
// quota pre-check, the contract, the store transaction with the audit event
// and, for write, the effect), cedar (cedar-go, request and entities built
// per call) and opa (OPA's rego with a prepared query, input built per
// call).
func BenchmarkPolicy(b *testing.B) {
	ctx := context.Background()
	e := newEngines(b)
	write := CheckRequest()
	read := CheckRequest()
	read.Action, read.Caller, read.PayloadSize = abi.ActionRead, reader, 0
	for _, g := range []struct {
		name string
		req  *abi.Request
	}{{"write", write}, {"read", read}} {
		req := g.req
		run := func(name string, decide func() bool) {
			b.Run(g.name+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if !decide() {
						b.Fatalf("%s denied", name)
					}
				}
			})
		}
		run("native", func() bool { return Native(req) })
		run("kernelhost-host", func() bool {
			d, _, err := e.h.Evaluate(ctx, e.hash, req, abi.Limits{})
			return err == nil && d.Allowed
		})
		b.Run(g.name+"/kernelhost-kernel", func(b *testing.B) {
			k := newKernel(b, req, req.Caller)
			a := kernelAction(req)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := k.Do(ctx, a); !res.OK {
					b.Fatal(res.ErrorCode, res.Message)
				}
			}
		})
		run("cedar", func() bool { return e.cedar.Decide(req) })
		run("opa", func() bool {
			ok, err := e.opa.Decide(ctx, req)
			return err == nil && ok
		})
	}
}

// TestPolicyAgreement: every engine gives the same decision on a table of
// requests (every action by the controller, the creator and a stranger,
// with and without a controller in the metadata), so that BenchmarkPolicy
// compares equals. The kernel is checked on read and write.
func TestPolicyAgreement(t *testing.T) {
	ctx := context.Background()
	e := newEngines(t)
	callers := []string{"agent-0042", "agent-0007", "stranger"}
	for _, withController := range []bool{true, false} {
		for _, caller := range callers {
			for a := abi.ActionRead; a.Valid(); a++ {
				req := CheckRequest()
				req.Caller, req.Action = caller, a
				if !withController {
					req.Metadata = req.Metadata[1:]
				}
				want := Native(req)
				require.Equal(t, want, e.hostDecide(t, req), "host: %s %s controller=%v", caller, a, withController)
				require.Equal(t, want, e.cedar.Decide(req), "cedar: %s %s controller=%v", caller, a, withController)
				got, err := e.opa.Decide(ctx, req)
				require.NoError(t, err)
				require.Equal(t, want, got, "opa: %s %s controller=%v", caller, a, withController)
			}
		}
		base := CheckRequest()
		if !withController {
			base.Metadata = base.Metadata[1:]
		}
		k := newKernel(t, base, callers...)
		for _, caller := range callers {
			for _, a := range []abi.Action{abi.ActionRead, abi.ActionWrite} {
				req := CheckRequest()
				req.Caller, req.Action, req.Metadata = caller, a, base.Metadata
				res := k.Do(ctx, kernelAction(req))
				require.Equal(t, Native(req), res.OK, "kernel: %s %s controller=%v: %s", caller, a, withController, res.Message)
			}
		}
	}
	// The rows of BenchmarkPolicy are all allowed.
	require.True(t, Native(CheckRequest()))
}

// BenchmarkPoolMemory measures the Go heap held by one idle pooled instance
// of each genesis contract: a host whose pool bound is n grows the pool under
// concurrent load, and the heap difference is divided by the instances
// added. It reports B/instance, which includes the instance's share of the
// module's post-initialisation snapshot (host.ModuleStats.SnapshotBytes,
// held once per module and restored into every instance before each call,
// divided by the instances reached), snapshot-B, the snapshot itself, and
// the instances reached (the bound is host.Config.MaxInstancesPerModule,
// default 2*GOMAXPROCS). Run it with -benchtime 1x: each iteration is a
// whole measurement (three, of which it keeps the least).
func BenchmarkPoolMemory(b *testing.B) {
	const n = 32
	ids := make([]string, 0, 4)
	for id := range genesis.Contracts() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b.Run(id[len("genesis/"):], func(b *testing.B) {
			// The least of three measurements: garbage the GC has not
			// yet freed can only add to the difference.
			perInst, reached, snap := math.Inf(1), 0.0, 0.0
			for i := 0; i < b.N; i++ {
				for r := 0; r < 3; r++ {
					p, l, sb := poolMemory(b, genesis.Contracts()[id], n)
					perInst, reached, snap = min(perInst, p), l, sb
				}
			}
			b.ReportMetric(perInst+snap/reached, "B/instance")
			b.ReportMetric(snap, "snapshot-B")
			b.ReportMetric(reached, "instances")
		})
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// poolMemory returns the heap bytes per added idle instance of wasm, how
// many instances the pool reached and the bytes of the module's snapshot
// (allocated before the first instance is measured: not in the first).
func poolMemory(b *testing.B, wasm []byte, n int) (perInstance, live, snapshot float64) {
	ctx := context.Background()
	// A long deadline: with many more threads than cores a check can wait
	// for a CPU far longer than the default 100ms.
	h, err := host.New(ctx, host.Config{MaxInstancesPerModule: n, Timeout: 10 * time.Second})
	require.NoError(b, err)
	defer h.Close(ctx)
	hash, err := h.Prepare(ctx, wasm)
	require.NoError(b, err)
	req := CheckRequest()
	_, _, err = h.Evaluate(ctx, hash, req, abi.Limits{})
	require.NoError(b, err)
	live0 := h.Stats().Modules[hash].Live
	heap0 := heapAfterGC()

	// Many more threads than cores: the OS deschedules some mid-call, each
	// holding an instance, so the pool grows to its bound.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4 * n))
	var (
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for g := 0; g < 4*n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := h.Evaluate(ctx, hash, req, abi.Limits{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for h.Stats().Modules[hash].Live < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	live1 := h.Stats().Modules[hash].Live
	heap1 := heapAfterGC()
	require.Greater(b, live1, live0, "the pool did not grow")
	snap := h.Stats().Modules[hash].SnapshotBytes
	require.Positive(b, snap, "the module has a snapshot")
	return float64(int64(heap1)-int64(heap0)) / float64(live1-live0), float64(live1), float64(snap)
}
