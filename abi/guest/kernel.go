package guest

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The kernel host API (SPEC.md section 8, "Host API"): what an executable may
// ask of the kernel while its invoker runs. Every action is performed as the
// invoking caller (DoAs: as a principal that granted the executable
// standing) and judged by its target's access contract and the quota checks
// like any other action: an executable can do nothing its caller (or that
// principal) could not.

// Errors of the host API calls. Kernel failures are *Error values instead.
var (
	// ErrNoKernel is returned by every host call in a build that is not
	// wasip1/wasm: there is no kernel to call.
	ErrNoKernel = errors.New("guest: no kernel host outside wasip1/wasm")
	// ErrNotInvoking is returned by host calls made outside an invocation
	// (from a decider or from init): the kernel serves them only while
	// kh_invoke runs, so that contracts stay pure.
	ErrNotInvoking = errors.New("guest: kernel calls work only while kh_invoke runs")
	// ErrResponseTooLarge is returned when the kernel's response exceeds
	// MaxResponseLen.
	ErrResponseTooLarge = errors.New("guest: kernel response too large")
)

// MaxResponseLen bounds the response Call accepts.
const MaxResponseLen = 64 << 20

// firstResponseCap is the size of the buffer Call first offers the kernel;
// a longer response is fetched again with the result function.
const firstResponseCap = 4096

// Error is a kernel result with ok false, as a Go error: its Code is the
// kernel's stable error code (such as "QUOTA_EXCEEDED" or "PERMISSION_DENIED").
type Error struct {
	Code      string
	Message   string
	Retriable bool
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// kernelFuncs are the imported functions of module "kernel". The wasip1 build
// sets kernelHost to the real imports; elsewhere it is nil (tests set fakes).
type kernelFuncs interface {
	// call performs req and writes up to len(out) bytes of the response to
	// out; it returns the response's full length, or -1 outside kh_invoke.
	call(req, out []byte) int32
	// result copies the latest response again into out; same return.
	result(out []byte) int32
	// log records msg.
	log(msg []byte)
}

// kernelHost serves the host API calls of this module.
var kernelHost kernelFuncs

// Call performs one raw kernel request (the JSON of SPEC.md "Host API":
// {"action": {...}}, {"action": {...}, "as": "principal"}, {"query": ...}) and
// returns the JSON response, which the caller owns. A kernel failure is a
// response with "ok": false, not an error; errors are ErrNoKernel,
// ErrNotInvoking and ErrResponseTooLarge.
func Call(request []byte) ([]byte, error) { return call(kernelHost, request) }

func call(k kernelFuncs, req []byte) ([]byte, error) {
	if k == nil {
		return nil, ErrNoKernel
	}
	out := make([]byte, firstResponseCap)
	n := k.call(req, out)
	// NB: at most one retry: the kernel keeps the response until the next
	// call, so result returns the same length.
	for try := 0; ; try++ {
		switch {
		case n < 0:
			return nil, ErrNotInvoking
		case int(n) <= len(out):
			return out[:n:n], nil
		case n > MaxResponseLen:
			return nil, fmt.Errorf("%w: %d bytes > %d", ErrResponseTooLarge, n, MaxResponseLen)
		case try > 0:
			return nil, fmt.Errorf("guest: kernel response changed length between call and result (%d > %d)", n, len(out))
		}
		out = make([]byte, n)
		n = k.result(out)
	}
}

// Log records msg as a log line of this invocation (the kernel keeps at most
// 64 lines of 1 KiB). Outside an invocation it does nothing.
func Log(msg string) {
	if kernelHost != nil {
		kernelHost.log([]byte(msg))
	}
}

// Result is the kernel's result of an action performed through Do or
// DoAsSelf: the kernel's action result JSON, decoded.
type Result struct {
	OK        bool   `json:"ok"`
	ErrorCode string `json:"error_code,omitempty"`
	Category  string `json:"error_category,omitempty"`
	Retriable bool   `json:"retriable"`
	Message   string `json:"message,omitempty"`
	// Decision is the target's access contract's answer, when one ran.
	Decision *Decision `json:"decision,omitempty"`
	Charges  []Charge  `json:"charges,omitempty"`
	Revision uint64    `json:"revision,omitempty"`
	Event    uint64    `json:"event,omitempty"`
	// Artifact and Content answer a read.
	Artifact *Artifact `json:"artifact,omitempty"`
	Content  []byte    `json:"content,omitempty"`
	// Output and Logs answer an invoke.
	Output []byte   `json:"output,omitempty"`
	Logs   []string `json:"logs,omitempty"`
	// IDs are split_right's new parts.
	IDs []string `json:"ids,omitempty"`
	// Resource, Available and RetryAfterNanos detail QUOTA_EXCEEDED.
	Resource        string `json:"resource,omitempty"`
	Available       int64  `json:"available,omitempty"`
	RetryAfterNanos int64  `json:"retry_after_ns,omitempty"`

	// Raw is the response as the kernel sent it.
	Raw json.RawMessage `json:"-"`
}

// Err returns nil for a successful result and an *Error otherwise.
func (r *Result) Err() error {
	if r.OK {
		return nil
	}
	return &Error{Code: r.ErrorCode, Message: r.Message, Retriable: r.Retriable}
}

// Decision is an access contract's answer as the kernel reports it.
type Decision struct {
	Allowed bool
	Cost    uint64
	Payer   string
	Payee   string
	Reason  string
}

// Charge is one movement of scrip caused by an action.
type Charge struct {
	Payer  string `json:"payer"`
	Payee  string `json:"payee,omitempty"`
	Amount uint64 `json:"amount"`
	Reason string `json:"reason"`
}

// Artifact describes an artifact, as a read returns it.
type Artifact struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	CreatedBy string            `json:"created_by"`
	Contract  string            `json:"access_contract"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Size      uint64            `json:"size"`
	Revision  uint64            `json:"revision"`
	Hash      string            `json:"sha256"`
}

// Do performs action as the invoking caller and returns the kernel's result.
// action is anything that marshals to the kernel's action JSON, such as
//
//	map[string]any{"kind": "transfer", "to": "bob", "amount": 5}
//
// or a struct with those json tags. err is nil exactly when the action
// succeeded: a kernel failure is an *Error with the kernel's code (the result
// is returned too); ErrNoKernel, ErrNotInvoking or a JSON error mean the call
// could not be made.
func Do(action any) (Result, error) { return do(kernelHost, action, "") }

// DoAs is Do performed as principal instead of the invoking caller (the
// host call's "as"). The kernel refuses it with NO_STANDING unless principal
// granted this executable standing (grant_standing) and the executable's
// code and metadata are still those it agreed to. An executable learns which
// principal to act as from its own metadata or its arguments: ids imply
// nothing.
func DoAs(principal string, action any) (Result, error) { return do(kernelHost, action, principal) }

// actionRequest is a host call carrying an action.
type actionRequest struct {
	Action any    `json:"action"`
	As     string `json:"as,omitempty"`
}

func do(k kernelFuncs, action any, as string) (Result, error) {
	req, err := json.Marshal(actionRequest{Action: action, As: as})
	if err != nil {
		return Result{}, fmt.Errorf("guest: encode action: %w", err)
	}
	resp, err := call(k, req)
	if err != nil {
		return Result{}, err
	}
	var r Result
	if err := json.Unmarshal(resp, &r); err != nil {
		return Result{}, fmt.Errorf("guest: decode kernel result: %w", err)
	}
	r.Raw = resp
	return r, r.Err()
}

// QuotaStatus is one resource's standing of one principal, as the kernel
// reports it (kernel.QuotaStatus).
type QuotaStatus struct {
	Resource        string `json:"resource"`
	Quota           int64  `json:"quota"`
	Used            int64  `json:"used"`
	Available       int64  `json:"available"`
	RetryAfterNanos int64  `json:"retry_after_ns,omitempty"`
}

// queryRequest is a host call carrying a query.
type queryRequest struct {
	Query     string `json:"query"`
	Principal string `json:"principal"`
	Resource  string `json:"resource,omitempty"`
}

// queryResponse is the kernel's answer to a query.
type queryResponse struct {
	OK        bool          `json:"ok"`
	ErrorCode string        `json:"error_code,omitempty"`
	Message   string        `json:"message,omitempty"`
	Balance   *uint64       `json:"balance,omitempty"`
	Quotas    []QuotaStatus `json:"quotas,omitempty"`
}

func query(k kernelFuncs, q queryRequest) (queryResponse, error) {
	req, err := json.Marshal(q)
	if err != nil {
		return queryResponse{}, fmt.Errorf("guest: encode query: %w", err)
	}
	resp, err := call(k, req)
	if err != nil {
		return queryResponse{}, err
	}
	var r queryResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		return queryResponse{}, fmt.Errorf("guest: decode kernel answer: %w", err)
	}
	if !r.OK {
		return queryResponse{}, &Error{Code: r.ErrorCode, Message: r.Message}
	}
	return r, nil
}

// Balance returns principal's scrip balance. Errors: *Error with NOT_FOUND
// for an unknown principal, and those of Call.
func Balance(principal string) (uint64, error) { return balance(kernelHost, principal) }

func balance(k kernelFuncs, principal string) (uint64, error) {
	r, err := query(k, queryRequest{Query: "balance", Principal: principal})
	if err != nil {
		return 0, err
	}
	if r.Balance == nil {
		return 0, errors.New("guest: kernel answer has no balance")
	}
	return *r.Balance, nil
}

// Quota returns principal's standing in resource ("cpu_rate", "llm_rate",
// "llm_budget", "disk" or "memory"). Errors: *Error with NOT_FOUND for an
// unknown principal, INVALID_ARGUMENT for an unknown resource, and those of
// Call.
func Quota(principal, resource string) (QuotaStatus, error) {
	return quota(kernelHost, principal, resource)
}

func quota(k kernelFuncs, principal, resource string) (QuotaStatus, error) {
	if resource == "" {
		return QuotaStatus{}, &Error{Code: "INVALID_ARGUMENT", Message: "guest: Quota needs a resource"}
	}
	r, err := query(k, queryRequest{Query: "quota", Principal: principal, Resource: resource})
	if err != nil {
		return QuotaStatus{}, err
	}
	if len(r.Quotas) != 1 {
		return QuotaStatus{}, fmt.Errorf("guest: kernel answered %d quotas for one resource", len(r.Quotas))
	}
	return r.Quotas[0], nil
}

// LLMAnswer is the kernel's answer to an LLM host call (LLMChat).
type LLMAnswer struct {
	OK        bool   `json:"ok"`
	ErrorCode string `json:"error_code,omitempty"`
	Message   string `json:"message,omitempty"`
	// Response is the provider's chat-completions answer, as it came.
	Response     json.RawMessage `json:"response,omitempty"`
	InputTokens  int64           `json:"input_tokens,omitempty"`
	OutputTokens int64           `json:"output_tokens,omitempty"`
	// Cost is what the call was charged, in micro-dollars of llm_budget.
	Cost int64 `json:"cost_microdollars,omitempty"`
	// Event is the call's llm_call audit event.
	Event uint64 `json:"event,omitempty"`
}

// LLMChat asks the kernel's LLM gateway (SPEC.md section 8, "llm") as the
// invoking caller: request is a chat-completions request, such as
//
//	map[string]any{"model": "m", "max_tokens": 64,
//		"messages": []any{map[string]any{"role": "user", "content": "hi"}}}
//
// (not streamed). It is charged to the caller's llm_rate and llm_budget,
// within the max_llm_cost the caller's invoke gave (none by default: the
// call is refused with PERMISSION_DENIED). err is nil exactly when the call
// was answered; a refusal is an *Error with the kernel's code. The answer
// is replayed from the record on a replay, so an executable that calls an
// LLM stays deterministic.
func LLMChat(request any) (LLMAnswer, error) { return llmChat(kernelHost, request) }

func llmChat(k kernelFuncs, request any) (LLMAnswer, error) {
	req, err := json.Marshal(struct {
		LLM any `json:"llm"`
	}{request})
	if err != nil {
		return LLMAnswer{}, fmt.Errorf("guest: encode LLM request: %w", err)
	}
	out, err := call(k, req)
	if err != nil {
		return LLMAnswer{}, err
	}
	var a LLMAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return LLMAnswer{}, fmt.Errorf("guest: decode LLM answer: %w", err)
	}
	if !a.OK {
		return a, &Error{Code: a.ErrorCode, Message: a.Message}
	}
	return a, nil
}
