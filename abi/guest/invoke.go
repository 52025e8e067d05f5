package guest

import "github.com/kernelhost/kernelhost/abi"

// Invoker runs one invocation of an executable (SPEC.md section 8): the
// request's Caller is the invoking principal, TargetID the executable itself,
// Method and Args what the caller asked for. It returns the output, or an
// error whose message becomes the invocation's error result: the kernel then
// rolls back everything the invocation did and fails the invoke with
// EXECUTION_FAILED. The view and its slices are valid only until the invoker
// returns; the output may be any slice, the SDK copies it.
type Invoker func(req *abi.RequestView) (output []byte, err error)

// Messages of the error results the SDK returns on its own.
const (
	// ErrMsgNoInvoker is the error of every invocation before RegisterInvoke
	// is called.
	ErrMsgNoInvoker = "guest: no invoker registered"
	// ErrMsgOutputTooLarge replaces an output longer than abi.MaxOutputLen.
	ErrMsgOutputTooLarge = "guest: output exceeds abi.MaxOutputLen"
)

// RegisterInvoke makes f the invoker of this module, which makes it an
// executable; call it from an init function. A module may register a decider
// (Register) too: it then serves both kh_check and kh_invoke. A later call
// replaces the invoker; a nil f fails every invocation with ErrMsgNoInvoker.
func RegisterInvoke(f Invoker) { std.invoke = f }

// invokeReq runs the encoded request b and returns the encoded invoke
// result, which aliases the handler's result buffer until the next call.
func (h *handler) invokeReq(b []byte, inRegion bool) []byte {
	var (
		out []byte
		err error
	)
	switch {
	case !inRegion:
		err = errMsg(ReasonMalformed)
	case h.view.Parse(b) != nil:
		err = errMsg(ReasonMalformed)
	case h.invoke == nil:
		err = errMsg(ErrMsgNoInvoker)
	default:
		out, err = h.invoke(&h.view)
	}
	h.view = abi.RequestView{} // drop the reference to b
	r := abi.InvokeResult{OK: err == nil, Output: out}
	if err != nil {
		msg := err.Error()
		if len(msg) > abi.MaxOutputLen {
			msg = msg[:abi.MaxOutputLen]
		}
		r.Output = []byte(msg)
	} else if len(out) > abi.MaxOutputLen {
		r = abi.InvokeResult{Output: []byte(ErrMsgOutputTooLarge)}
	}
	// Cannot fail: the output is within abi.MaxOutputLen.
	h.res, _ = abi.AppendInvokeResult(h.res[:0], &r)
	return h.res
}

// errMsg is an error that is only a message.
type errMsg string

func (e errMsg) Error() string { return string(e) }
