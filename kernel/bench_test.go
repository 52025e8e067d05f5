package kernel_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// The benchmark world mirrors the request of host's BenchmarkCheck
// (host/check_bench_test.go): an artifact created by benchCreator whose
// metadata names benchController as controller, governed by the C genesis
// freeware contract, read by benchReader and written by the controller.
const (
	benchTarget     = "workspace/agent-0042/notes.md"
	benchCreator    = "agent-0007"
	benchController = "agent-0042"
	benchReader     = "agent-0099"
	benchRich       = 1 << 40 // scrip of every bench principal: transfers never run dry
)

var (
	benchContent = bytes.Repeat([]byte("n"), 1834)
	benchPayload = bytes.Repeat([]byte("w"), 2048)
	benchMeta    = map[string]string{"controller": benchController, "description": "working notes", "topic": "market-making"}
)

// benchStore names a store a benchmark world runs on.
type benchStore int

const (
	storeSync   benchStore = iota // Badger on disk, SyncWrites on (the default)
	storeNoSync                   // Badger on disk, NoSync
	storeMem                      // store.NewMem
)

func openBenchStore(b testing.TB, kind benchStore) store.Store {
	b.Helper()
	var (
		st  store.Store
		err error
	)
	switch kind {
	case storeSync:
		st, err = store.OpenBadger(b.TempDir(), store.BadgerOptions{})
	case storeNoSync:
		st, err = store.OpenBadger(b.TempDir(), store.BadgerOptions{NoSync: true})
	default:
		st = store.NewMem()
	}
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	return st
}

var (
	benchHostOnce sync.Once
	benchHostVal  *host.Host
	benchHostErr  error
)

// benchHost returns the wasm host shared by every benchmark world of the
// process, so that the genesis modules (the rights registry is a Go module
// of a few MiB) are compiled once, not once per world. It is never closed.
//
// NB: 1s deadlines (here and the kernel's ContractTimeout) instead of 100ms
// only so that a run on a loaded machine, where a goroutine can be
// descheduled mid-check for longer than 100ms, measures rather than fails
// with CONTRACT_TIMEOUT. A deadline's value does not change what arming it
// costs.
func benchHost(b testing.TB) *host.Host {
	benchHostOnce.Do(func() {
		benchHostVal, benchHostErr = host.New(context.Background(), host.Config{Timeout: time.Second})
	})
	require.NoError(b, benchHostErr)
	return benchHostVal
}

// newBenchKernel opens a kernel over st with the real wasm host and the
// genesis contracts installed, the wall clock, and the bench principals. The
// cpu_rate quota is raised so that a long run measures the steady state
// rather than the quota running out; the pre-check runs all the same.
func newBenchKernel(b testing.TB, st store.Store) *kernel.Kernel {
	b.Helper()
	ctx := context.Background()
	h := benchHost(b)
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: h, Clock: time.Now,
		DefaultContract: genesis.DefaultContract, ContractTimeout: time.Second,
		// At least genesis.MinContentBytes: genesis installs the rights
		// registry, a Go module of a few MiB.
		MaxContentBytes: 8 << 20,
		DefaultQuotas:   map[kernel.Resource]int64{kernel.CPURate: 1 << 50, kernel.LLMRate: 1 << 50},
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = k.Close(ctx) })
	spec := genesis.Spec{}
	for _, id := range []string{benchCreator, benchController, benchReader} {
		spec.Principals = append(spec.Principals, genesis.PrincipalSpec{ID: id, Balance: benchRich})
	}
	require.NoError(b, genesis.Install(ctx, k, spec))
	res := k.Do(ctx, kernel.Action{
		Kind: kernel.KindWrite, Caller: benchCreator, Target: benchTarget,
		Type: "data", Content: benchContent, Metadata: benchMeta,
	})
	require.True(b, res.OK, "create %s: %s", benchTarget, res.Message)
	return k
}

// benchDo runs a in a loop of b.N, failing on the first error.
func benchDo(b *testing.B, k *kernel.Kernel, a kernel.Action) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := k.Do(ctx, a); !res.OK {
			b.Fatalf("%s: %s %s", a.Kind, res.ErrorCode, res.Message)
		}
	}
}

// benchDoParallel runs actions from b.RunParallel goroutines. each is called
// once per goroutine with the goroutine's number and returns the action that
// goroutine repeats (its own artifact or principals, so that goroutines do
// not conflict on the same keys).
func benchDoParallel(b *testing.B, k *kernel.Kernel, each func(g int) kernel.Action) {
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := each(int(next.Add(1) - 1))
		for pb.Next() {
			if res := k.Do(ctx, a); !res.OK {
				b.Errorf("%s: %s %s", a.Kind, res.ErrorCode, res.Message)
				return
			}
		}
	})
}

// BenchmarkAction measures whole actions through Kernel.Do with the wasm host
// and the C genesis freeware contract, on a durable Badger store in a
// temporary directory (SyncWrites on unless the name says nosync), except
// read, which is on the in-memory store:
//
//   - read, read-durable: a read of a 1834-byte artifact by a
//     non-controller (contract check and a store snapshot; its audit event
//     goes out with the committer's next batch);
//   - write-sync, write-nosync: the controller replaces its content with
//     2048 bytes;
//   - transfer: 1 scrip from one principal to another (kernel-judged, no
//     contract runs).
//
// Each has a -parallel twin under b.RunParallel, where every goroutine uses
// its own artifact or pair of principals; transfer-durable-64 and
// transfer-durable-hot are 64 writers over 10,000 and over 20 principals.
func BenchmarkAction(b *testing.B) {
	ctx := context.Background()
	read := kernel.Action{Kind: kernel.KindRead, Caller: benchReader, Target: benchTarget}
	write := kernel.Action{Kind: kernel.KindWrite, Caller: benchController, Target: benchTarget, Content: benchPayload}
	transfer := kernel.Action{Kind: kernel.KindTransfer, Caller: benchCreator, To: benchController, Amount: 1}

	b.Run("read", func(b *testing.B) {
		benchDo(b, newBenchKernel(b, openBenchStore(b, storeMem)), read)
	})
	b.Run("read-durable", func(b *testing.B) {
		benchDo(b, newBenchKernel(b, openBenchStore(b, storeSync)), read)
	})
	b.Run("read-durable-parallel", func(b *testing.B) {
		k := newBenchKernel(b, openBenchStore(b, storeSync))
		benchDoParallel(b, k, func(int) kernel.Action { return read })
	})
	b.Run("read-nosync", func(b *testing.B) {
		benchDo(b, newBenchKernel(b, openBenchStore(b, storeNoSync)), read)
	})
	b.Run("write-sync", func(b *testing.B) {
		benchDo(b, newBenchKernel(b, openBenchStore(b, storeSync)), write)
	})
	b.Run("write-nosync", func(b *testing.B) {
		benchDo(b, newBenchKernel(b, openBenchStore(b, storeNoSync)), write)
	})
	b.Run("transfer", func(b *testing.B) {
		benchDo(b, newBenchKernel(b, openBenchStore(b, storeSync)), transfer)
	})

	b.Run("read-nosync-parallel", func(b *testing.B) {
		k := newBenchKernel(b, openBenchStore(b, storeNoSync))
		benchDoParallel(b, k, func(int) kernel.Action { return read })
	})
	// Parallel writers each write their own artifact, created (outside
	// the timed loop's steady state) by their first write.
	parallelWrite := func(b *testing.B, k *kernel.Kernel) {
		benchDoParallel(b, k, func(g int) kernel.Action {
			a := write
			a.Target = fmt.Sprintf("%s.%d", benchTarget, g)
			create := a
			create.Type, create.Metadata = "data", benchMeta
			if res := k.Do(ctx, create); !res.OK {
				b.Errorf("create %s: %s", a.Target, res.Message)
			}
			return a
		})
	}
	b.Run("write-sync-parallel", func(b *testing.B) {
		parallelWrite(b, newBenchKernel(b, openBenchStore(b, storeSync)))
	})
	b.Run("write-nosync-parallel", func(b *testing.B) {
		parallelWrite(b, newBenchKernel(b, openBenchStore(b, storeNoSync)))
	})
	// 64 writers over 10,000 principals, then over 20 (every transfer
	// touches a principal others are touching): transfers/s and the
	// CONFLICT results per transfer, which must be 0.
	b.Run("transfer-durable-64", func(b *testing.B) {
		benchTransfers(b, newBenchKernel(b, openBenchStore(b, storeSync)), 64, 10_000)
	})
	b.Run("transfer-durable-hot", func(b *testing.B) {
		benchTransfers(b, newBenchKernel(b, openBenchStore(b, storeSync)), 64, 20)
	})
	b.Run("transfer-parallel", func(b *testing.B) {
		k := newBenchKernel(b, openBenchStore(b, storeSync))
		benchDoParallel(b, k, func(g int) kernel.Action {
			from, to := fmt.Sprintf("payer-%d", g), fmt.Sprintf("payee-%d", g)
			for _, id := range []string{from, to} {
				if err := k.CreatePrincipal(ctx, id, benchRich); err != nil {
					b.Errorf("principal %s: %v", id, err)
				}
			}
			return kernel.Action{Kind: kernel.KindTransfer, Caller: from, To: to, Amount: 1}
		})
	})
}

// benchTransfers runs b.N transfers of 1 scrip from writers goroutines
// over principals principals, each transfer between a pseudo-random pair,
// and reports actions/s and conflicts/op (CONFLICT results per transfer).
// Any other failure fails the benchmark.
func benchTransfers(b *testing.B, k *kernel.Kernel, writers, principals int) {
	ctx := context.Background()
	ids := make([]string, principals)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < principals; i += writers {
				ids[i] = fmt.Sprintf("bench-p%d", i)
				if err := k.CreatePrincipal(ctx, ids[i], benchRich); err != nil {
					b.Errorf("principal %s: %v", ids[i], err)
				}
			}
		}()
	}
	wg.Wait()
	var next, conflicts atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(g)*0x9e3779b97f4a7c15 + 1
			for next.Add(1) <= int64(b.N) {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				from, to := int(x%uint64(principals)), int((x>>32)%uint64(principals-1))
				if to >= from {
					to++
				}
				res := k.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, Caller: ids[from], To: ids[to], Amount: 1})
				switch {
				case res.OK:
				case res.Code == abi.Conflict:
					conflicts.Add(1)
				default:
					b.Errorf("transfer: %s %s", res.ErrorCode, res.Message)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "actions/s")
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
}

// BenchmarkKernelCheck is one permission check through the full kernel path:
// Do(read) of a small (1834-byte) artifact by a non-controller, judged by
// the C genesis freeware contract in the wasm host, on store.NewMem, so
// that no disk is involved. (Badger InMemory cannot hold the genesis rights
// registry: it rejects values over 1 MiB.) It is
// the "same through the full kernel check path" row of the comparison with
// host's BenchmarkCheck.
func BenchmarkKernelCheck(b *testing.B) {
	read := kernel.Action{Kind: kernel.KindRead, Caller: benchReader, Target: benchTarget}
	for _, s := range []struct {
		name string
		kind benchStore
	}{{"mem", storeMem}} {
		b.Run(s.name, func(b *testing.B) {
			benchDo(b, newBenchKernel(b, openBenchStore(b, s.kind)), read)
		})
		b.Run(s.name+"-parallel", func(b *testing.B) {
			k := newBenchKernel(b, openBenchStore(b, s.kind))
			benchDoParallel(b, k, func(int) kernel.Action { return read })
		})
	}
}
