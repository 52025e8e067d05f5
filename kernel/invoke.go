package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kernelhost/kernelhost/abi"
)

// Invoker is implemented by Evaluators that can run executables (package
// host's Host does). An executable's module exports kh_invoke; while it runs
// it may call back into the kernel through calls.
type Invoker interface {
	Invoke(ctx context.Context, hash [32]byte, req *abi.Request, lim abi.Limits, calls abi.HostCalls) (abi.InvokeResult, abi.Usage, error)
}

func isModule(typ string) bool { return typ == TypeContract || typ == TypeExecutable }

// Limits of one invocation's host calls.
const (
	maxHostCalls = 10_000 // kernel calls per invocation, nested ones included
	maxLogLines  = 64     // log lines kept per invocation
	maxLogLine   = 1024   // bytes kept per log line
)

// invoke runs the executable art after its access contract allowed the
// invocation and its cost was settled. Everything it does through host calls
// happens in this action's transaction: if it traps, times out or returns an
// error, all of it is rolled back.
func (w *work) invoke(art *artifactRec) *Error {
	a := w.a
	inv, ok := w.k.ev.(Invoker)
	if !ok {
		return errf(abi.InvalidArgument, "this kernel's evaluator cannot run executables")
	}
	if err := w.k.ensurePrepared(w.ctx, w.tx, a.Target, art.Hash); err != nil {
		return err
	}
	// CPU and memory are always the caller's own, like a check's: a payer
	// that consented to the contract's price agreed to scrip within its
	// caps, never to lend its cpu_rate or memory to whatever the code does.
	p, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	memIdx, _ := Memory.index()
	if p.Quota[memIdx] == 0 {
		return w.quotaErr(Memory, 0, 0, "memory quota of %q is 0: no executable can run for it", a.Caller)
	}
	got, release, qerr := w.reserveRate(a.Caller, &p, CPURate, w.k.cfg.InvokeTimeout.Microseconds())
	if qerr != nil {
		return qerr
	}
	req := requestFor(abi.ActionInvoke, a.Caller, a.Target, art, nil, w.now, 0, a.Method, a.Args)
	req.Depth = w.depth
	calls := &hostCalls{w: w, self: a.Target}
	lim := w.k.limits(got, p.Quota[memIdx])
	w.ran = true
	calls0 := w.st.calls
	out, usage, ierr := inv.Invoke(w.ctx, art.Hash, &req, lim, calls)
	if w.k.evicted(ierr) && w.st.calls == calls0 {
		if perr := w.k.ensurePrepared(w.ctx, w.tx, a.Target, art.Hash); perr != nil {
			release(0)
			return perr
		}
		out, usage, ierr = inv.Invoke(w.ctx, art.Hash, &req, lim, calls)
	}
	cpu := w.k.cpuCharge(usage, got)
	release(cpu)
	if calls.fatal == errNeedLLMErr {
		// The attempt aborts for an LLM call and runs again: what it ran
		// stays charged (release did), and the record keeps it for the
		// replay (llmexec.go).
		if w.ds.abortCPU == nil {
			w.ds.abortCPU = make(map[string]int64)
		}
		w.ds.abortCPU[a.Caller] += cpu
		return errNeedLLMErr
	}
	w.ev.CPU += cpu
	w.ev.Fuel += usage.Fuel
	w.res.Fuel += usage.Fuel
	w.res.Logs = calls.logs
	if calls.fatal != nil {
		// A nested action failed in a way that leaves the transaction
		// unusable: a storage fault or conflict (Do retries or reports it),
		// or a nested invocation that failed after writing.
		return calls.fatal
	}
	if ierr != nil {
		code := codeOf(ierr)
		if code == abi.OK || code == abi.Internal || code == abi.ContractFailed {
			code = abi.ExecutionFailed
		}
		return &Error{Code: code, Msg: fmt.Sprintf("executable %s failed; its writes are rolled back", a.Target), Err: ierr}
	}
	if !out.OK {
		return errf(abi.ExecutionFailed, "executable %s returned an error; its writes are rolled back: %s", a.Target, truncate(out.Output, abi.MaxReasonLen))
	}
	w.res.Output = out.Output
	w.res.Revision = art.Revision
	return nil
}

// limits are the limits of one execution for which cpuMicros of cpu_rate
// were reserved, under a memory quota of mem bytes: a wall-clock deadline for
// unmetered evaluators and a fuel budget, at Config.FuelPerMicrosecond, for
// metered ones.
func (k *Kernel) limits(cpuMicros, mem int64) abi.Limits {
	return abi.Limits{
		Timeout:     time.Duration(cpuMicros) * time.Microsecond,
		Fuel:        uint64(cpuMicros) * k.cfg.FuelPerMicrosecond,
		MemoryBytes: uint64(mem),
	}
}

// cpuCharge is the cpu_rate an execution is charged, in microseconds: its
// fuel converted at Config.FuelPerMicrosecond, rounded up, when the
// evaluator meters (deterministic: the same on every machine), else its wall
// time; at least 1, at most what was reserved.
func (k *Kernel) cpuCharge(u abi.Usage, reserved int64) int64 {
	var us int64
	if u.Fuel > 0 {
		us = int64((u.Fuel + k.cfg.FuelPerMicrosecond - 1) / k.cfg.FuelPerMicrosecond)
	} else {
		us = (u.CPU + time.Microsecond - 1).Microseconds()
	}
	return min(max(us, 1), reserved)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// hostCalls serves one invocation's calls into the kernel. Every request is
// performed as the invocation's caller (or, with "as", as a principal that
// granted this executable standing), as an ordinary action judged by its
// target's contract and quotas: an executable can do nothing its caller (or
// that principal) could not.
//
// A hostCalls is used by one invocation on one goroutine.
type hostCalls struct {
	w     *work  // the invoke action
	self  string // the executable's id
	logs  []string
	fatal *Error // set once the transaction can no longer commit
}

// hostRequest is the JSON an executable sends: an action, or a query.
type hostRequest struct {
	// Action is a kernel action in DecodeAction's format.
	Action json.RawMessage `json:"action,omitempty"`
	// As performs Action as this principal instead of the invoking caller.
	// It must have granted the executable standing (grant_standing) for its
	// current code and metadata; nothing else, an id included, gives it.
	As string `json:"as,omitempty"`
	// AsSelf is refused: it used to mean "as the principal whose id is the
	// executable's id", which let anyone squat an id (see As).
	AsSelf *bool `json:"as_self,omitempty"`
	// Query is "balance" or "quota" (about Principal; Resource optional).
	Query     string `json:"query,omitempty"`
	Principal string `json:"principal,omitempty"`
	Resource  string `json:"resource,omitempty"`
	// LLM is a chat-completions request for the kernel's LLM gateway,
	// made as the invoking caller (llmexec.go).
	LLM json.RawMessage `json:"llm,omitempty"`
}

// hostResponse answers a query; actions answer with their Result.
type hostResponse struct {
	OK        bool          `json:"ok"`
	ErrorCode string        `json:"error_code,omitempty"`
	Message   string        `json:"message,omitempty"`
	Balance   *uint64       `json:"balance,omitempty"`
	Quotas    []QuotaStatus `json:"quotas,omitempty"`
}

func (h *hostCalls) Log(msg []byte) {
	if len(h.logs) < maxLogLines {
		h.logs = append(h.logs, truncate(msg, maxLogLine))
	}
}

func (h *hostCalls) Call(b []byte) []byte {
	res := h.call(b)
	out, err := json.Marshal(res)
	if err != nil {
		out, _ = json.Marshal(failResult(&Error{Code: abi.Internal, Msg: "encode result", Err: err}))
	}
	return out
}

func (h *hostCalls) call(b []byte) any {
	if h.fatal != nil {
		return failResult(errf(h.fatal.Code, "the invocation is failing: %s", h.fatal.Msg))
	}
	// The limit holds for the whole invocation tree (SPEC section 8), not
	// per level: nested invocations share the transaction's count.
	if h.w.st.calls++; h.w.st.calls > maxHostCalls {
		return failResult(errf(abi.InvalidArgument, "more than %d kernel calls in one invocation", maxHostCalls))
	}
	req, herr := decodeHostRequest(b)
	if herr != nil {
		return failResult(herr)
	}
	caller := h.w.a.Caller
	switch {
	case req.LLM != nil && req.Action == nil && req.Query == "" && req.As == "" && req.Principal == "" && req.Resource == "":
		return h.llm(req.LLM) // llmexec.go
	case req.Query != "" && req.Action == nil && req.LLM == nil:
		return h.query(&req)
	case req.Action != nil && req.Query == "" && req.LLM == nil:
	default:
		return failResult(errf(abi.InvalidArgument, `a host call has one of "action" (with "as"), "query" (with "principal", "resource") or "llm" (alone)`))
	}
	a, err := DecodeAction(req.Action)
	if err != nil {
		return failResult(asError(err))
	}
	if req.AsSelf != nil {
		return failResult(errf(abi.InvalidArgument, `"as_self" is no longer supported: act as a principal with "as": "<principal>", which needs that principal's grant_standing to this executable`))
	}
	if a.MaxLLMCost != nil {
		return failResult(errf(abi.InvalidArgument, "max_llm_cost belongs to top-level invokes: the invocation tree shares its caller's"))
	}
	if grantsAuthority(a.Kind) {
		// A grant is the principal's own word (DESIGN: nothing implies
		// authority): an executable acting for it now must not leave
		// behind a power to act for it, or charge it, later.
		return failResult(errf(abi.PermissionDenied, "%s gives authority over its principal: only the principal itself can do it, never an executable acting for it", a.Kind))
	}
	if req.As != "" && req.As != caller {
		if !validID(req.As) {
			return failResult(errf(abi.InvalidArgument, "as %q is not a valid principal id", req.As))
		}
		if serr := h.w.checkStanding(req.As, h.self); serr != nil {
			if serr.Code != abi.NoStanding {
				h.fatal = serr
			}
			return failResult(serr)
		}
		caller = req.As
	}
	// The tree's events name the token its top-level caller authenticated
	// with: an executable's actions are that token's use too.
	a.Caller, a.Token = caller, h.w.a.Token
	if verr := h.w.k.validate(&a); verr != nil {
		return failResult(verr)
	}
	child := h.w.child(&a)
	if ferr := child.exec(); ferr != nil {
		if ferr == errNeedLLMErr {
			// An LLM call deeper down: the whole attempt aborts for it.
			h.fatal = errNeedLLMErr
			return failResult(errf(abi.Unavailable, "the LLM call is being made; the invocation runs again"))
		}
		if ferr == errNeedPrepareErr {
			ferr = errf(abi.Internal, "nested module was not prepared")
		}
		// The transaction now holds effects of a failed nested invocation
		// (or cannot commit at all): the whole invocation fails.
		h.fatal = &Error{Code: ferr.Code, Msg: fmt.Sprintf("nested %s of %q failed: %s", a.Kind, a.Target, ferr.Msg), Err: ferr.Err}
		return failResult(h.fatal)
	}
	return child.res
}

// grantsAuthority reports whether actions of kind k give someone power
// over the acting principal's standing, scrip or quotas beyond the action
// itself: grants of standing and consent, and the spending limit.
func grantsAuthority(k Kind) bool {
	switch k {
	case KindGrantStanding, KindGrantConsent, KindGrantLLMConsent, KindSetSpendingLimit:
		return true
	}
	return false
}

// hostRequestFields are the fields of a host call, spelled exactly.
var hostRequestFields = map[string]bool{"action": true, "as": true, "as_self": true, "query": true, "principal": true, "resource": true, "llm": true}

// decodeHostRequest decodes a host call as strictly as DecodeAction decodes
// an action: a JSON object whose keys are hostRequestFields, exactly, each
// at most once, at any depth (so that "as" cannot be given twice, or as
// "AS", for two readers to see two principals).
func decodeHostRequest(b []byte) (hostRequest, *Error) {
	var req hostRequest
	if err := CheckDuplicateKeys(b); err != nil {
		return req, asError(err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return req, &Error{Code: abi.InvalidArgument, Msg: "host call is not a JSON object", Err: err}
	}
	for k := range probe {
		if !hostRequestFields[k] {
			return req, errf(abi.InvalidArgument, "host call field %q is unknown: use action (with as), query (with principal, resource), or llm", k)
		}
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, &Error{Code: abi.InvalidArgument, Msg: "malformed host call", Err: err}
	}
	return req, nil
}

func (h *hostCalls) query(req *hostRequest) hostResponse {
	if req.Query != "balance" && req.Query != "quota" {
		return hostResponse{ErrorCode: abi.InvalidArgument.String(), Message: fmt.Sprintf("unknown query %q: use balance or quota", req.Query)}
	}
	p, err := h.w.principal(req.Principal)
	if err != nil {
		return hostResponse{ErrorCode: err.Code.String(), Message: err.Msg}
	}
	switch req.Query {
	case "balance":
		bal := p.Balance
		return hostResponse{OK: true, Balance: &bal}
	case "quota":
		rs := Resources
		if req.Resource != "" {
			if _, ok := Resource(req.Resource).index(); !ok {
				return hostResponse{ErrorCode: abi.InvalidArgument.String(), Message: fmt.Sprintf("unknown resource %q", req.Resource)}
			}
			rs = []Resource{Resource(req.Resource)}
		}
		out := hostResponse{OK: true}
		for _, r := range rs {
			st, err := h.w.k.status(h.w.tx, req.Principal, &p, r, h.w.now)
			if err != nil {
				return hostResponse{ErrorCode: err.Code.String(), Message: err.Msg}
			}
			out.Quotas = append(out.Quotas, st)
		}
		return out
	default:
		return hostResponse{ErrorCode: abi.InvalidArgument.String(), Message: fmt.Sprintf("unknown query %q: use balance or quota", req.Query)}
	}
}

// child prepares a nested action in w's transaction, one level deeper.
func (w *work) child(a *Action) *work {
	return &work{k: w.k, ctx: w.ctx, a: a, now: w.now, tx: w.tx, st: w.st, ds: w.ds, depth: w.depth + 1}
}

func asError(err error) *Error {
	if ke, ok := err.(*Error); ok {
		return ke
	}
	return &Error{Code: codeOf(err), Msg: err.Error()}
}
