package hammer_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/hammer"
)

func TestRun(t *testing.T) {
	const P, N = 8, 100
	wantN := N
	if testing.Short() {
		wantN = N / 10
	}
	var calls atomic.Int64
	var perP [P]atomic.Int64 // each goroutine sees n = 0, 1, ... in order
	hammer.Run(t, P, N, func(p, n int) {
		calls.Add(1)
		if got := perP[p].Add(1) - 1; got != int64(n) {
			t.Errorf("goroutine %d: iteration %d, want %d", p, n, got)
		}
	})
	require.Equal(t, int64(P*wantN), calls.Load())
}

// fakeT records the failures Run reports. Run uses only Helper and Error.
type fakeT struct {
	testing.TB
	errors []string
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Error(args ...any) { f.errors = append(f.errors, fmt.Sprint(args...)) }

func TestRun_panic(t *testing.T) {
	ft := &fakeT{}
	var calls atomic.Int64
	hammer.Run(ft, 4, 1000, func(p, n int) {
		calls.Add(1)
		if p == 2 && n == 0 {
			panic("boom")
		}
	})
	require.Len(t, ft.errors, 1)
	require.True(t, strings.HasPrefix(ft.errors[0], "goroutine 2 panicked: boom\n"), ft.errors[0])
	require.Contains(t, ft.errors[0], "hammer_test.go", "the stack points at the panic")
}

func TestRun_badArgs(t *testing.T) {
	require.Panics(t, func() { hammer.Run(t, 0, 1, func(int, int) {}) })
	require.Panics(t, func() { hammer.Run(t, 1, 0, func(int, int) {}) })
}
