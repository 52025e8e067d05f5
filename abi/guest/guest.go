package guest

import "github.com/kernelhost/kernelhost/abi"

// Decider judges one request. The view and its slices are valid only until
// the decider returns.
type Decider func(req *abi.RequestView) abi.Decision

// Reasons the SDK gives when it denies on its own.
const (
	// ReasonMalformed is the reason of the denial of a request that does not
	// parse as abi version 1.
	ReasonMalformed = "malformed request"
	// ReasonInvalidDecision replaces a decision that cannot be encoded
	// (a payer or payee longer than abi.MaxIDLen).
	ReasonInvalidDecision = "invalid decision"
	// ReasonNoDecider is the reason of every denial before Register is called.
	ReasonNoDecider = "guest: no decider registered"
)

// maxAlloc bounds the request buffer kh_alloc hands out: requests within the
// SPEC limits are at most abi.MaxRequestSize bytes, and the slack leaves room
// for fields that later revisions of version 1 may append. Larger sizes get 0,
// which the host treats as a failed contract, instead of an out-of-memory trap.
const maxAlloc = 4 * abi.MaxRequestSize

// minAlloc is the smallest request buffer, so that growing requests do not
// reallocate at every few bytes.
const minAlloc = 4096

// std is the handler behind the exports.
var std = newHandler()

// Register makes d the decider of this module; call it from an init function.
// A later call replaces the decider; a nil d denies every request with
// ReasonNoDecider.
func Register(d Decider) { std.decide = d }

// handler holds the state of the exports: the decider, the invoker and the
// buffers reused across calls. It is not safe for concurrent use; a wasm
// instance is single threaded.
type handler struct {
	decide Decider
	invoke Invoker
	req    []byte // request buffer handed to the host by alloc; len == cap
	out    []byte // decision buffer, capacity abi.MaxDecisionSize
	res    []byte // invoke result buffer, reused across invocations
	view   abi.RequestView
}

func newHandler() *handler {
	return &handler{out: make([]byte, 0, abi.MaxDecisionSize)}
}

// alloc returns a buffer of at least size bytes for the host to write a
// request into, reusing the previous one when it is large enough. It returns
// nil when size exceeds maxAlloc.
func (h *handler) alloc(size uint32) []byte {
	if size > maxAlloc {
		return nil
	}
	if int(size) <= len(h.req) && h.req != nil {
		return h.req
	}
	n := max(int(size), minAlloc)
	h.req = make([]byte, n)
	return h.req
}

// region returns req[off:off+n] when the range lies inside the request
// buffer, which is where the host writes requests (SPEC section 1).
func (h *handler) region(off, n uint64) ([]byte, bool) {
	if off > uint64(len(h.req)) || n > uint64(len(h.req))-off {
		return nil, false
	}
	return h.req[off : off+n : off+n], true
}

// check judges the encoded request b and returns the encoded decision, which
// aliases the handler's decision buffer until the next call.
func (h *handler) check(b []byte, inRegion bool) []byte {
	var d abi.Decision
	switch {
	case !inRegion:
		d.Reason = ReasonMalformed
	case h.view.Parse(b) != nil:
		d.Reason = ReasonMalformed
	case h.decide == nil:
		d.Reason = ReasonNoDecider
	default:
		d = h.decide(&h.view)
	}
	h.view = abi.RequestView{} // drop the reference to b
	return h.encode(&d)
}

// encode appends d to the emptied decision buffer, truncating an overlong
// reason and turning an unencodable decision into a denial.
func (h *handler) encode(d *abi.Decision) []byte {
	if len(d.Reason) > abi.MaxReasonLen {
		d.Reason = d.Reason[:abi.MaxReasonLen]
	}
	out, err := abi.AppendDecision(h.out[:0], d)
	if err != nil {
		out, _ = abi.AppendDecision(h.out[:0], &abi.Decision{Reason: ReasonInvalidDecision})
	}
	h.out = out
	return out
}
