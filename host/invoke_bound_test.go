package host_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// blockingCalls is a HostCalls whose every call blocks until release is
// closed, after saying so on entered.
type blockingCalls struct {
	entered chan struct{}
	release chan struct{}
}

func newBlockingCalls() *blockingCalls {
	return &blockingCalls{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (b *blockingCalls) Call([]byte) []byte {
	b.entered <- struct{}{}
	<-b.release
	return []byte(`{"ok":true}`)
}

func (b *blockingCalls) Log([]byte) {}

// TestInvokeInstancesBounded: Invoke no longer creates instances outside
// the pool for top-level calls when every slot is taken, so that
// MaxInstancesPerModule bounds them: a top-level invocation waits for a slot
// for at most its deadline and then fails with ErrBusy (UNAVAILABLE,
// retriable), creating nothing. Nested invocations (depth > 0) still never
// wait, but their instances outside the pool are bounded too.
func TestInvokeInstancesBounded(t *testing.T) {
	ctx := context.Background()
	const slots = 2
	h := newHost(t, host.Config{MaxInstancesPerModule: slots, InvokeTimeout: 30 * time.Second})
	hash := prepare(t, h, "exec")
	call := invokeReq("call", `{"query":"balance"}`)

	// Two invocations hold both slots, blocked in a host call.
	holders := newBlockingCalls()
	var wg sync.WaitGroup
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _, err := h.Invoke(ctx, hash, call, abi.Limits{}, holders)
			require.NoError(t, err)
			require.True(t, res.OK)
		}()
	}
	for range slots {
		<-holders.entered
	}

	// A flood of top-level invocations gets no instance of its own.
	for i := range 3 * slots {
		_, _, err := h.Invoke(ctx, hash, invokeReq("", ""), abi.Limits{Timeout: 20 * time.Millisecond}, &fakeCalls{})
		require.ErrorIs(t, err, host.ErrBusy, "flood call %d", i)
		require.Equal(t, abi.Unavailable, codeOf(err))
		require.True(t, codeOf(err).Retriable())
		require.ErrorContains(t, err, "all 2 instances of the module stayed busy")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err := h.Invoke(cctx, hash, invokeReq("", ""), abi.Limits{}, &fakeCalls{})
	require.Error(t, err, "a cancelled caller stops waiting")
	st := h.Stats().Modules[hash]
	require.Equal(t, slots, st.Live)
	require.Equal(t, slots, st.Peak, "no instance beyond the pool was ever created")

	// A waiting invocation gets the first slot released.
	waited := make(chan error, 1)
	go func() {
		res, _, err := h.Invoke(ctx, hash, invokeReq("", ""), abi.Limits{}, &fakeCalls{})
		if err == nil && !res.OK {
			err = host.ErrBadDecision
		}
		waited <- err
	}()

	// Nested invocations never wait: they get instances outside the pool,
	// 8 per slot at most at a time.
	nested := invokeReq("call", `{"query":"balance"}`)
	nested.Depth = 1
	inner := newBlockingCalls()
	const maxNested = 8 * slots
	var nwg sync.WaitGroup
	for range maxNested {
		nwg.Add(1)
		go func() {
			defer nwg.Done()
			res, _, err := h.Invoke(ctx, hash, nested, abi.Limits{}, inner)
			require.NoError(t, err)
			require.True(t, res.OK)
		}()
	}
	for range maxNested {
		<-inner.entered
	}
	_, _, err = h.Invoke(ctx, hash, nested, abi.Limits{}, &fakeCalls{})
	require.ErrorIs(t, err, host.ErrBusy)
	require.ErrorContains(t, err, "16 nested invocations of the module are running")
	require.Equal(t, slots+maxNested, h.Stats().Modules[hash].Live)

	close(inner.release)
	nwg.Wait()
	close(holders.release)
	wg.Wait()
	require.NoError(t, <-waited)
	st = h.Stats().Modules[hash]
	require.LessOrEqual(t, st.Live, slots, "the nested instances were closed")
	require.Equal(t, slots+maxNested, st.Peak)
}
