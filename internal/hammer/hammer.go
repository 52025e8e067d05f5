// Package hammer runs a function from many goroutines at once to shake out
// races in concurrent code, like wazero's internal/testing/hammer. Run the
// tests that use it with -race.
package hammer

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
)

// shortDivisor divides N under -short, so that CI's -race -short run stays
// quick while still overlapping goroutines.
const shortDivisor = 10

// Run calls fn(p, n) for every p in [0, P) and n in [0, N): P goroutines,
// each running its N iterations in order. All goroutines start together,
// after a barrier, so that they overlap as much as possible. Under -short, N
// is divided by 10 (at least 1). Run returns when every goroutine is done.
//
// fn runs off the test goroutine: it must report failures with t.Error or
// t.Errorf, never t.Fatal, t.FailNow or testify's require. A panic in fn is
// recovered: Run stops the other goroutines at their next iteration and
// fails t with the panic value and its stack.
//
// Run panics if P or N is below 1: that is a bug in the test.
func Run(t testing.TB, P, N int, fn func(p, n int)) {
	t.Helper()
	if P < 1 || N < 1 {
		panic(fmt.Sprintf("hammer: P=%d and N=%d must be at least 1", P, N))
	}
	if testing.Short() {
		N = max(1, N/shortDivisor)
	}

	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		stop        atomic.Bool // set by the first panic

		// mu guards panics; the goroutines that panic append to it.
		mu     sync.Mutex
		panics []string
	)
	ready.Add(P)
	done.Add(P)
	for p := range P {
		go func() {
			defer done.Done()
			defer func() {
				if r := recover(); r != nil {
					stop.Store(true)
					mu.Lock()
					defer mu.Unlock()
					panics = append(panics, fmt.Sprintf("goroutine %d panicked: %v\n%s", p, r, debug.Stack()))
				}
			}()
			ready.Done()
			<-start
			for n := range N {
				if stop.Load() {
					return
				}
				fn(p, n)
			}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for _, msg := range panics {
		t.Error(msg)
	}
}
