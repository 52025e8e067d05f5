package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/kernelhost/kernelhost/abi"
)

// Executables' LLM calls (SPEC section 8, host call "llm").
//
// An executable asks an LLM with the host call {"llm": <chat request>}; the
// kernel's LLMGateway (SetLLMGateway; kernelhost serve --llm-endpoint sets
// the HTTP gateway's) sends it to the provider as the invocation's caller,
// through ReserveLLM and SettleLLM like any other call: the caller's
// llm_rate and llm_budget, QUOTA_EXCEEDED before anything is sent, one
// llm_call audit event.
//
// An invocation runs inside the committer's batch, where a call that takes
// seconds would stop every other write. So the call is never made there:
// the attempt that meets a call it has no answer for aborts (nothing it did
// commits), Do makes the call outside any transaction, keeps the answer on
// the action's tape, and runs the action again from the start. The new
// attempt finds the answer on the tape at the same position, for the same
// request (compared by sha256), and goes on to the next call or the end.
// An attempt whose state changed so that it asks something else at that
// position drops the tape from there and asks again. The tape is kept in
// the action's record (Record.Tape), so that a replay answers every call
// from it, with no gateway, and decides exactly as the recording did.
//
// Bounds, all decided in the kernel and kept on the tape like an answer:
//   - the caller pays only what it allowed: the top-level invoke's
//     max_llm_cost (micro-dollars, default 0: no LLM call at all) bounds
//     everything the invocation tree's calls cost, asked-again calls
//     included; each call's reservation is capped by what is left;
//   - at most maxLLMAsks calls to the gateway per action;
//   - the attempts a call interrupted are charged the CPU they used (the
//     cpu_rate of each principal that ran code, as any run), and the
//     top-level event shows it; the record keeps it for the replay.

// maxLLMAsks bounds the calls one action makes to the gateway, asked-again
// ones included: every ask reruns the action, so this bounds the reruns.
const maxLLMAsks = 16

// LLMGateway answers executables' LLM host calls. Chat sends request (a
// chat-completions request body, JSON, not streaming) to the provider for
// caller (token: the name of the token the top-level action came with, for
// the call's event), reserving and settling through ReserveLLM and SettleLLM with
// LLMCall.Cap set to maxCost (the most the call may cost, micro-dollars),
// and returns the provider's answer and what it was charged. An error
// should be a *Error with a stable code (QUOTA_EXCEEDED, COST_LIMIT_EXCEEDED,
// INVALID_ARGUMENT, UNAVAILABLE): the executable receives its code and
// message. The kernel calls Chat outside any transaction.
type LLMGateway interface {
	Chat(ctx context.Context, caller, token string, request []byte, maxCost int64) (LLMAnswer, error)
}

// LLMAnswer is a provider's answer to one call and what the call was
// charged.
type LLMAnswer struct {
	// Response is the provider's JSON answer, as it came.
	Response     json.RawMessage `json:"response"`
	InputTokens  int64           `json:"input_tokens"`
	OutputTokens int64           `json:"output_tokens"`
	// Cost is the llm_budget charged, in micro-dollars.
	Cost int64 `json:"cost_microdollars"`
	// Event is the llm_call audit event's number, when known.
	Event uint64 `json:"event,omitempty"`
}

// LLMExchange is one LLM host call of an action, as its tape and record
// keep it: the sha256 of the request, and the answer or the error.
type LLMExchange struct {
	Request string     `json:"request_sha256"`
	Answer  *LLMAnswer `json:"answer,omitempty"`
	Code    string     `json:"code,omitempty"`
	Message string     `json:"message,omitempty"`
}

// llmAsk is the call an aborted attempt left for Do to make.
type llmAsk struct {
	caller string
	token  string
	body   []byte
	sum    string
	cap    int64 // the most the call may cost: what max_llm_cost has left
}

// llmHostResponse is what an executable receives for an LLM host call.
type llmHostResponse struct {
	OK        bool   `json:"ok"`
	ErrorCode string `json:"error_code,omitempty"`
	Message   string `json:"message,omitempty"`
	*LLMAnswer
}

func (x *LLMExchange) hostResponse() llmHostResponse {
	if x.Answer != nil {
		return llmHostResponse{OK: true, LLMAnswer: x.Answer}
	}
	return llmHostResponse{ErrorCode: x.Code, Message: x.Message}
}

// llmGatewayBox holds the gateway for the kernel's atomic pointer.
type llmGatewayBox struct{ g LLMGateway }

// SetLLMGateway sets the gateway that answers executables' LLM host calls;
// nil removes it (the calls then fail with UNAVAILABLE). It may be called
// at any time: an embedder builds the gateway over the kernel it serves.
func (k *Kernel) SetLLMGateway(g LLMGateway) {
	if g == nil {
		k.llm.Store(nil)
		return
	}
	k.llm.Store(&llmGatewayBox{g: g})
}

func (k *Kernel) llmGateway() LLMGateway {
	if b := k.llm.Load(); b != nil {
		return b.g
	}
	return nil
}

// errNeedLLM aborts an attempt that met an LLM call with no answer on the
// tape: Do asks the gateway, and the action runs again.
var errNeedLLM = errors.New("kernel: an LLM call needs an answer")

// errNeedLLMErr carries errNeedLLM through *Error returns (Internal, so
// that any path that does not know it aborts the transaction).
var errNeedLLMErr = &Error{Code: abi.Internal, Msg: "an LLM call needs an answer", Err: errNeedLLM}

// llm answers the LLM host call whose request is body: from the tape, or
// by aborting the attempt for Do to ask the gateway.
func (h *hostCalls) llm(body json.RawMessage) any {
	w := h.w
	st, ds := w.st, w.ds
	i := st.llmCalls
	st.llmCalls++
	s := sha256.Sum256(body)
	sum := hex.EncodeToString(s[:])
	if i < len(ds.tape) {
		if ds.tape[i].Request == sum {
			return ds.tape[i].hostResponse()
		}
		if ds.replay {
			return failResult(errf(abi.Unavailable, "LLM call %d asks something else than the record holds: the replay diverges", i+1))
		}
		ds.tape = ds.tape[:i] // asked something else: from here on, ask again
	}
	if ds.replay {
		return failResult(errf(abi.Unavailable, "LLM call %d is not in the record: the replay diverges", i+1))
	}
	cap, e := h.llmRefusal()
	if e != nil {
		// Refused by the kernel: on the tape too, so that a rerun and a
		// replay answer it alike.
		ds.tape = append(ds.tape, LLMExchange{Request: sum, Code: e.Code.String(), Message: e.Msg})
		return ds.tape[i].hostResponse()
	}
	ds.llmAsk = &llmAsk{caller: w.a.Caller, token: w.a.Token, body: bytes.Clone(body), sum: sum, cap: cap}
	h.fatal = errNeedLLMErr
	return failResult(errf(abi.Unavailable, "the LLM call is being made; the invocation runs again"))
}

func errNoLLMGateway() *Error {
	return errf(abi.Unavailable, "this kernel has no LLM gateway (kernelhost serve --llm-endpoint)")
}

// llmRefusal returns what the next call may cost at most, or why the kernel
// refuses it.
func (h *hostCalls) llmRefusal() (int64, *Error) {
	ds, st := h.w.ds, h.w.st
	switch {
	case h.w.a.Caller != st.top:
		// max_llm_cost is the top-level caller's word about its own
		// llm_budget: a principal whose standing an executable uses ("as")
		// gave no such word, and its budget is not spent for it.
		return 0, errf(abi.PermissionDenied, "an LLM call is made as the top-level caller %q only, not as %q: max_llm_cost is its word about its own llm_budget", st.top, h.w.a.Caller)
	case st.topLLMCap == 0:
		return 0, errf(abi.PermissionDenied, "the invoke allows no LLM spending: its caller sets max_llm_cost (micro-dollars) to let the executable call an LLM at its expense")
	case h.w.k.llmGateway() == nil:
		return 0, errNoLLMGateway()
	case ds.llmSpent >= st.topLLMCap:
		return 0, errf(abi.CostLimitExceeded, "the invoke's max_llm_cost of %dµ$ is spent (%dµ$)", st.topLLMCap, ds.llmSpent)
	case ds.llmAsks >= maxLLMAsks:
		return 0, errf(abi.InvalidArgument, "more than %d LLM calls in one action", maxLLMAsks)
	}
	return st.topLLMCap - ds.llmSpent, nil
}

// askLLM makes the call an aborted attempt left and puts the outcome on
// the tape.
func (k *Kernel) askLLM(ctx context.Context, ds *doState) {
	q := ds.llmAsk
	ds.llmAsk = nil
	ds.llmAsks++
	x := LLMExchange{Request: q.sum}
	g := k.llmGateway()
	if g == nil {
		e := errNoLLMGateway()
		x.Code, x.Message = e.Code.String(), e.Msg
		ds.tape = append(ds.tape, x)
		return
	}
	ans, err := g.Chat(ctx, q.caller, q.token, q.body, q.cap)
	if err != nil {
		e := asError(err)
		code := e.Code
		if code == abi.OK {
			code = abi.Unavailable
		}
		x.Code, x.Message = code.String(), truncate([]byte(e.Msg), abi.MaxReasonLen)
	} else {
		ans.Response = bytes.Clone(ans.Response)
		if !json.Valid(ans.Response) {
			x.Code, x.Message = abi.Unavailable.String(), "the LLM gateway's answer is not JSON"
		} else {
			x.Answer = &ans
		}
		// Charged either way: the call was made.
		ds.llmSpent += max(ans.Cost, 0)
	}
	ds.tape = append(ds.tape, x)
}

// chargeAbortedCPU adds, at now, the CPU that attempts interrupted by LLM
// calls used (by principal) to the cpu_rate windows, as those attempts
// did: a replay does it before running the action, which then finds the
// windows as the recording's last attempt found them.
func (k *Kernel) chargeAbortedCPU(byPrincipal map[string]int64, now int64) {
	for p, us := range byPrincipal {
		if us <= 0 {
			continue
		}
		win := k.rates.get(p, CPURate)
		win.mu.Lock()
		win.prune(now, k.windowNanos())
		win.add(now, us)
		win.mu.Unlock()
		k.dirty.mark(win.key, win)
	}
}

// abortedCPUTotal sums byPrincipal.
func abortedCPUTotal(byPrincipal map[string]int64) int64 {
	var n int64
	for _, us := range byPrincipal {
		n += us
	}
	return n
}

// llmTapeUsed is the part of the tape the final attempt used.
func (w *work) llmTapeUsed() []LLMExchange {
	n := min(len(w.ds.tape), w.st.llmCalls)
	if n == 0 {
		return nil
	}
	return w.ds.tape[:n]
}
