package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kernelhost/kernelhost/abi"
)

// maxInvokeResult bounds what kh_invoke may return: header and output.
const maxInvokeResult = 12 + abi.MaxOutputLen

// Invoke runs kh_invoke of the prepared executable hash on req under lim,
// with calls serving its kernel host functions. It implements kernel.Invoker.
//
// The deadline is Config.InvokeTimeout, shortened by lim.Timeout and ctx's
// deadline. A top-level invocation (req.Depth 0) takes one of the module's
// Config.MaxInstancesPerModule slots, waiting for one at most that deadline
// (then ErrBusy, retriable). Nested invocations (an executable invoking
// another, or itself, through a host call; req.Depth > 0) never wait, for
// the slot they would wait for may be held by the invocation they run
// inside: when every slot is taken, an extra instance serves the call and
// is closed after it, at most Config.MaxInstancesPerModule*8 at a time per
// module (the kernel's depth limit bounds one chain), beyond which the call
// fails with ErrBusy.
//
// Errors are *Error values as for Evaluate; a guest that returns an error
// result is not an error here: InvokeResult.OK is false.
func (h *Host) Invoke(ctx context.Context, hash [32]byte, req *abi.Request, lim abi.Limits, calls abi.HostCalls) (abi.InvokeResult, abi.Usage, error) {
	if h.closed.Load() {
		return abi.InvokeResult{}, abi.Usage{}, newError(ErrClosed, nil)
	}
	if calls == nil {
		return abi.InvokeResult{}, abi.Usage{}, &Error{code: abi.InvalidArgument, err: errors.New("host: Invoke needs HostCalls")}
	}
	m := h.lookup(hash)
	if m == nil {
		return abi.InvokeResult{}, abi.Usage{}, notPrepared(hash)
	}
	m.touch()
	timeout := h.cfg.InvokeTimeout
	if lim.Timeout > 0 && lim.Timeout < timeout {
		timeout = lim.Timeout
	}
	inst, pooled, err := h.acquireInvoke(ctx, m, req.Depth > 0, lim, timeout)
	if err != nil {
		return abi.InvokeResult{}, abi.Usage{}, err
	}
	var (
		res  abi.InvokeResult
		use  abi.Usage
		keep bool
	)
	if inst.invokeFn == nil {
		keep = true
		err = newError(ErrBadDecision, errors.New("module exports no kh_invoke: it is a contract, not an executable"))
	} else {
		inst.deadline.calls = calls
		var out []byte
		out, use, keep, err = h.callGuest(ctx, inst, inst.invokeFn, "kh_invoke", maxInvokeResult, req, lim, timeout, budget(h.cfg.InvokeFuel, lim.Fuel))
		inst.deadline.calls, inst.deadline.last = nil, nil
		if err == nil {
			if res, err = abi.DecodeInvokeResult(out); err != nil {
				keep = false
				err = newError(ErrBadDecision, err)
			}
		}
		use.Fuel = m.withReplacement(inst, keep, use.Fuel)
	}
	if pooled {
		h.release(m, inst, keep)
	} else {
		m.discard(inst)
		m.endNested()
	}
	return res, use, err
}

// acquireInvoke takes a slot of m and an instance for an invocation. With
// no free slot, a top-level invocation waits for one, for at most timeout;
// a nested one gets a fresh instance outside the pool (pooled false), to
// be discarded after use and then given back with endNested.
func (h *Host) acquireInvoke(ctx context.Context, m *module, nested bool, lim abi.Limits, timeout time.Duration) (inst *instance, pooled bool, err error) {
	inst, ok := m.trySlot()
	if !ok && !nested {
		expire := time.NewTimer(timeout) // only when every slot is taken
		err = m.waitSlotUntil(ctx, h.closing, expire.C)
		expire.Stop()
		if err != nil {
			return nil, false, err
		}
		inst, ok = m.popIdle(), true
	}
	if ok {
		inst, err = h.fitInstance(ctx, m, inst, lim)
		return inst, true, err
	}
	if err := m.beginNested(h.cfg.maxNested()); err != nil {
		return nil, false, err
	}
	if limit := h.cfg.callCap(lim.MemoryBytes); m.base > limit {
		m.endNested()
		return nil, false, baseTooBig(m, limit)
	}
	inst, err = h.instantiateIn(ctx, m)
	if err != nil {
		m.endNested()
	}
	return inst, false, err
}

// beginNested counts an instance outside the pool for a nested invocation,
// unless max are already out (ErrBusy). endNested gives it back.
func (m *module) beginNested(max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nested >= max {
		return newError(ErrBusy, fmt.Errorf("%d nested invocations of the module are running, the most at a time", max))
	}
	m.nested++
	return nil
}

func (m *module) endNested() {
	m.mu.Lock()
	m.nested--
	m.mu.Unlock()
}
