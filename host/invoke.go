package host

import (
	"context"
	"errors"

	"github.com/kernelhost/kernelhost/abi"
)

// maxInvokeResult bounds what kh_invoke may return: header and output.
const maxInvokeResult = 12 + abi.MaxOutputLen

// Invoke runs kh_invoke of the prepared executable hash on req under lim,
// with calls serving its kernel host functions. It implements kernel.Invoker.
//
// The deadline is Config.InvokeTimeout, shortened by lim.Timeout and ctx's
// deadline. Nested invocations (an executable invoking another, or itself,
// through a host call) never wait for a pool slot: when every slot of the
// module is taken, an extra instance serves the call and is closed after it
// (the kernel's depth limit bounds how many).
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
	timeout := h.cfg.InvokeTimeout
	if lim.Timeout > 0 && lim.Timeout < timeout {
		timeout = lim.Timeout
	}
	inst, pooled, err := h.acquireNoWait(ctx, m, lim)
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
	}
	if pooled {
		h.release(m, inst, keep)
	} else {
		m.discard(inst)
	}
	return res, use, err
}

// acquireNoWait is acquire without waiting: with no free slot it returns a
// fresh instance outside the pool (pooled false), to be discarded after use.
func (h *Host) acquireNoWait(ctx context.Context, m *module, lim abi.Limits) (inst *instance, pooled bool, err error) {
	if inst, ok := m.trySlot(); ok {
		inst, err = h.fitInstance(ctx, m, inst, lim)
		return inst, true, err
	}
	inst, err = h.instantiate(ctx, m, h.cfg.InitTimeout)
	return inst, false, err
}
