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

// fakeCalls is a HostCalls that records requests and answers with reply.
type fakeCalls struct {
	mu    sync.Mutex
	reqs  []string
	logs  []string
	reply func(req []byte) []byte
}

func (f *fakeCalls) Call(req []byte) []byte {
	f.mu.Lock()
	f.reqs = append(f.reqs, string(req))
	f.mu.Unlock()
	if f.reply != nil {
		return f.reply(req)
	}
	return []byte(`{"ok":true}`)
}

func (f *fakeCalls) Log(msg []byte) {
	f.mu.Lock()
	f.logs = append(f.logs, string(msg))
	f.mu.Unlock()
}

func invokeReq(method, args string) *abi.Request {
	return &abi.Request{Action: abi.ActionInvoke, TargetExists: true, Caller: "alice", TargetID: "exec", TargetType: "executable", Method: method, Args: []byte(args)}
}

func TestInvoke(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "exec")

	t.Run("call", func(t *testing.T) {
		f := &fakeCalls{reply: func(req []byte) []byte { return []byte(`{"ok":true,"echo":` + string(req) + `}`) }}
		res, use, err := h.Invoke(ctx, hash, invokeReq("call", `{"query":"balance"}`), abi.Limits{}, f)
		require.NoError(t, err)
		require.True(t, res.OK)
		require.Equal(t, `{"ok":true,"echo":{"query":"balance"}}`, string(res.Output))
		require.Equal(t, []string{`{"query":"balance"}`}, f.reqs)
		require.Positive(t, use.Fuel, "metered calls report fuel used")
	})
	t.Run("log", func(t *testing.T) {
		f := &fakeCalls{}
		res, _, err := h.Invoke(ctx, hash, invokeReq("log", "hello"), abi.Limits{}, f)
		require.NoError(t, err)
		require.True(t, res.OK)
		require.Equal(t, []string{"hello"}, f.logs)
	})
	t.Run("error result", func(t *testing.T) {
		res, _, err := h.Invoke(ctx, hash, invokeReq("fail", ""), abi.Limits{}, &fakeCalls{})
		require.NoError(t, err)
		require.False(t, res.OK)
		require.Equal(t, "failed on purpose", string(res.Output))
	})
	t.Run("trap after a call", func(t *testing.T) {
		f := &fakeCalls{}
		_, _, err := h.Invoke(ctx, hash, invokeReq("trap", `{"action":{}}`), abi.Limits{}, f)
		require.ErrorIs(t, err, host.ErrTrap)
		require.Equal(t, abi.ContractFailed, codeOf(err))
		require.Len(t, f.reqs, 1, "the call happened before the trap; the kernel rolls it back")
	})
	t.Run("infinite loop stopped by its fuel", func(t *testing.T) {
		_, use, err := h.Invoke(ctx, hash, invokeReq("spin", ""), abi.Limits{Fuel: 2_000_000}, &fakeCalls{})
		require.ErrorIs(t, err, host.ErrOutOfFuel)
		require.Equal(t, abi.OutOfFuel, codeOf(err))
		require.Equal(t, uint64(2_000_000), use.Fuel, "the whole budget is used, to be charged")
	})
	t.Run("infinite loop stopped by the deadline, unmetered", func(t *testing.T) {
		h := newHost(t, host.Config{DisableMetering: true})
		hash := prepare(t, h, "exec")
		start := time.Now()
		_, use, err := h.Invoke(ctx, hash, invokeReq("spin", ""), abi.Limits{Timeout: 50 * time.Millisecond}, &fakeCalls{})
		require.ErrorIs(t, err, host.ErrTimeout)
		require.Equal(t, abi.ContractTimeout, codeOf(err))
		require.Less(t, time.Since(start), 5*time.Second)
		require.GreaterOrEqual(t, use.CPU, 50*time.Millisecond, "the time used is reported, to be charged")
	})
	t.Run("bad request region traps", func(t *testing.T) {
		// args longer than the guest's 30000-byte output buffer is fine; a
		// region outside memory is not: the guest reads args at the request,
		// so craft nothing here, just check the module still serves calls.
		res, _, err := h.Invoke(ctx, hash, invokeReq("", ""), abi.Limits{}, &fakeCalls{})
		require.NoError(t, err)
		require.True(t, res.OK)
	})
	t.Run("needs HostCalls", func(t *testing.T) {
		_, _, err := h.Invoke(ctx, hash, invokeReq("", ""), abi.Limits{}, nil)
		require.Equal(t, abi.InvalidArgument, codeOf(err))
	})
}

// Contracts cannot call back into the kernel: during a check every kernel
// function answers -1.
func TestEvaluate_noHostCallsInChecks(t *testing.T) {
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "check_calls_kernel")
	d, _, err := h.Evaluate(context.Background(), hash, request(abi.ActionRead, "alice", "alice"), abi.Limits{})
	require.NoError(t, err)
	require.True(t, d.Allowed, "kernel.call returned -1 during the check")
}

// A module is a contract, an executable or both; each entry point is used
// only for its purpose.
func TestEntryPoints(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{})
	exec := prepare(t, h, "exec")
	contract := prepare(t, h, "allow")
	_, _, err := h.Evaluate(ctx, exec, request(abi.ActionRead, "a", "a"), abi.Limits{})
	require.ErrorIs(t, err, host.ErrBadDecision)
	require.ErrorContains(t, err, "not a contract")
	_, _, err = h.Invoke(ctx, contract, invokeReq("", ""), abi.Limits{}, &fakeCalls{})
	require.ErrorIs(t, err, host.ErrBadDecision)
	require.ErrorContains(t, err, "not an executable")
}

// Nested invocations of one module (request depth > 0, as the kernel sets
// it) never wait for a pool slot: recursion deeper than the pool completes
// instead of deadlocking.
func TestInvoke_nestedBeyondPool(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{MaxInstancesPerModule: 1})
	hash := prepare(t, h, "exec")
	depth := 0
	var calls *fakeCalls
	calls = &fakeCalls{reply: func(req []byte) []byte {
		depth++
		if depth < 6 {
			nested := invokeReq("call", `{"nested":true}`)
			nested.Depth = uint32(depth)
			res, _, err := h.Invoke(ctx, hash, nested, abi.Limits{}, calls)
			if err != nil || !res.OK {
				return []byte(`{"ok":false}`)
			}
		}
		return []byte(`{"ok":true}`)
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, _, err := h.Invoke(ctx, hash, invokeReq("call", `{"nested":true}`), abi.Limits{}, calls)
		require.NoError(t, err)
		require.True(t, res.OK)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("nested invocation deadlocked")
	}
	require.Equal(t, 6, depth)
	require.LessOrEqual(t, h.Stats().Modules[hash].Live, 1, "overflow instances are closed after use")
}
