package kernel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// BenchmarkQuotaCheck measures the cost of the quota pre-check:
//
//   - would-exceed: Kernel.WouldExceed of cpu_rate, the pre-check as an API
//     (a store view of the principal plus its rolling window), for an idle
//     principal and for a busy one whose window holds the maximum 4096
//     distinct timestamps;
//   - read-fake: a whole Do(read) with the fake evaluator at default quotas,
//     the kernel path without wasm, of which the pre-check is a part; -busy
//     with the caller's window full.
//
// The store is store.NewMem and the clock is kerneltest's fake.
func BenchmarkQuotaCheck(b *testing.B) {
	ctx := context.Background()
	world := func(b *testing.B, busy bool) *kerneltest.World {
		w := kerneltest.NewWorld(b, nil)
		w.Principal(b, "alice", 1000)
		res := w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "notes", Type: "data", Content: []byte("hello")})
		require.True(b, res.OK, res.Message)
		if busy {
			// One distinct timestamp per use: the window's entry bound.
			for i := 0; i < 4096; i++ {
				w.Clock.Advance(time.Microsecond)
				res := w.K.ConsumeQuota(ctx, "alice", kernel.CPURate, 1)
				require.True(b, res.OK, res.Message)
			}
		}
		return w
	}
	for _, busy := range []bool{false, true} {
		suffix := "-idle"
		if busy {
			suffix = "-busy"
		}
		b.Run("would-exceed"+suffix, func(b *testing.B) {
			w := world(b, busy)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if over, err := w.K.WouldExceed(ctx, "alice", kernel.CPURate, 1000); err != nil || over {
					b.Fatal(over, err)
				}
			}
		})
		b.Run("read-fake"+suffix, func(b *testing.B) {
			w := world(b, busy)
			a := kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "notes"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := w.K.Do(ctx, a); !res.OK {
					b.Fatal(res.ErrorCode, res.Message)
				}
			}
		})
	}
}

// BenchmarkTransferQuota measures Kernel.TransferQuota of 1 llm_rate unit on
// a durable Badger store (SyncWrites on), from one goroutine and from
// b.RunParallel goroutines each moving quota between its own pair.
func BenchmarkTransferQuota(b *testing.B) {
	ctx := context.Background()
	b.Run("sync", func(b *testing.B) {
		k := newBenchKernel(b, openBenchStore(b, storeSync))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if res := k.TransferQuota(ctx, benchCreator, benchController, kernel.LLMRate, 1); !res.OK {
				b.Fatal(res.ErrorCode, res.Message)
			}
		}
	})
	b.Run("sync-parallel", func(b *testing.B) {
		k := newBenchKernel(b, openBenchStore(b, storeSync))
		benchDoParallel(b, k, func(g int) kernel.Action {
			from, to := fmt.Sprintf("qfrom-%d", g), fmt.Sprintf("qto-%d", g)
			for _, id := range []string{from, to} {
				if err := k.CreatePrincipal(ctx, id, 0); err != nil {
					b.Errorf("principal %s: %v", id, err)
				}
			}
			return kernel.Action{Kind: kernel.KindTransferQuota, Caller: from, To: to, Resource: string(kernel.LLMRate), Amount: 1}
		})
	})
}
