// Package api defines the JSON shapes kernelhost shows to people and
// programs, shared by the CLI's --output json and the HTTP API: results,
// decisions, explanations and errors, with snake_case names throughout.
package api

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// Error is the body of every failed response, and of every failure the CLI
// prints in JSON. ErrorCode is a stable abi code name.
type Error struct {
	OK        bool   `json:"ok"` // always false
	ErrorCode string `json:"error_code"`
	Category  string `json:"error_category"`
	Retriable bool   `json:"retriable"`
	Message   string `json:"message"`
}

// NewError returns the Error for code with message msg.
func NewError(code abi.Code, msg string) Error {
	return Error{ErrorCode: code.String(), Category: string(code.Category()), Retriable: code.Retriable(), Message: msg}
}

// ErrorOf returns the Error for err: its kernel code when it carries one
// (a *kernel.Error or anything with Code() abi.Code), else INTERNAL, and a
// *kernel.Error's own retriability (a QUOTA_EXCEEDED may be final).
func ErrorOf(err error) Error {
	e := NewError(CodeOf(err), err.Error())
	var ke *kernel.Error
	if errors.As(err, &ke) {
		e.Retriable = ke.Retriable()
	}
	return e
}

// CodeOf extracts err's stable code, or INTERNAL.
func CodeOf(err error) abi.Code {
	if err == nil {
		return abi.OK
	}
	var ke *kernel.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	var coded interface{ Code() abi.Code }
	if errors.As(err, &coded) {
		return coded.Code()
	}
	return abi.Internal
}

// Decision is a contract's answer.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Cost    uint64 `json:"cost"`
	Payer   string `json:"payer,omitempty"` // empty: the caller pays
	Payee   string `json:"payee,omitempty"` // empty: the cost is burned
	Reason  string `json:"reason,omitempty"`
}

// DecisionOf converts d; nil stays nil.
func DecisionOf(d *abi.Decision) *Decision {
	if d == nil {
		return nil
	}
	return &Decision{Allowed: d.Allowed, Cost: d.Cost, Payer: d.Payer, Payee: d.Payee, Reason: d.Reason}
}

// Result is the outcome of one action: kernel.Result with a snake_case
// decision, the content also as text when it is valid UTF-8, and the retry
// delay in seconds.
type Result struct {
	OK        bool   `json:"ok"`
	ErrorCode string `json:"error_code,omitempty"`
	Category  string `json:"error_category,omitempty"`
	Retriable bool   `json:"retriable"`
	Message   string `json:"message,omitempty"`

	Decision *Decision       `json:"decision,omitempty"`
	Charges  []kernel.Charge `json:"charges,omitempty"`
	Revision uint64          `json:"revision,omitempty"`
	Event    uint64          `json:"event,omitempty"`

	Artifact *kernel.ArtifactInfo `json:"artifact,omitempty"`
	Content  []byte               `json:"content,omitempty"` // base64 in JSON
	Text     *string              `json:"text,omitempty"`    // the content, when valid UTF-8

	// Output and Logs answer an invoke: the executable's output (base64 in
	// JSON), OutputText the same when it is valid UTF-8, and its log lines.
	Output     []byte   `json:"output,omitempty"`
	OutputText *string  `json:"output_text,omitempty"`
	Logs       []string `json:"logs,omitempty"`
	// IDs are the new parts of a split_right, in the order of its amounts.
	IDs []string `json:"ids,omitempty"`
	// Replayed is set on the answer to a repeated request_id: the first
	// result, returned again, with nothing run a second time.
	Replayed bool `json:"replayed,omitempty"`

	Resource          string  `json:"resource,omitempty"`
	Available         int64   `json:"available,omitempty"`
	RetryAfterSeconds float64 `json:"retry_after_seconds,omitempty"`
}

// ResultOf converts r.
func ResultOf(r kernel.Result) Result {
	out := Result{
		OK: r.OK, ErrorCode: r.ErrorCode, Category: string(r.Category), Retriable: r.Retriable, Message: r.Message,
		Decision: DecisionOf(r.Decision), Charges: r.Charges, Revision: r.Revision, Event: r.Event,
		Artifact: r.Artifact, Content: r.Content,
		Output: r.Output, Logs: r.Logs, IDs: r.IDs, Replayed: r.Replayed,
		Resource: r.Resource, Available: r.Available, RetryAfterSeconds: r.RetryAfter.Seconds(),
	}
	if r.Content != nil && utf8.Valid(r.Content) {
		s := string(r.Content)
		out.Text = &s
	}
	if r.Output != nil && utf8.Valid(r.Output) {
		s := string(r.Output)
		out.OutputText = &s
	}
	return out
}

// Request is what an access contract saw (abi.Request), for people.
type Request struct {
	Action         string            `json:"action"`
	Time           time.Time         `json:"time"`
	Depth          uint32            `json:"depth"`
	Caller         string            `json:"caller"`
	TargetID       string            `json:"target_id"`
	TargetExists   bool              `json:"target_exists"`
	TargetType     string            `json:"target_type"`
	CreatedBy      string            `json:"created_by"`
	AccessContract string            `json:"access_contract"`
	Size           uint64            `json:"size"`
	Revision       uint64            `json:"revision"`
	Metadata       map[string]string `json:"metadata"`
	PayloadSize    uint64            `json:"payload_size"`
	Method         string            `json:"method,omitempty"`
	Args           []byte            `json:"args,omitempty"`
	Config         map[string]string `json:"config"`
}

// RequestOf converts r; nil stays nil.
func RequestOf(r *abi.Request) *Request {
	if r == nil {
		return nil
	}
	return &Request{
		Action: r.Action.String(), Time: time.Unix(0, int64(r.Time)).UTC(), Depth: r.Depth,
		Caller: r.Caller, TargetID: r.TargetID, TargetExists: r.TargetExists, TargetType: r.TargetType,
		CreatedBy: r.CreatedBy, AccessContract: r.AccessContract, Size: r.Size, Revision: r.Revision,
		Metadata: kvMap(r.Metadata), PayloadSize: r.PayloadSize, Method: r.Method, Args: r.Args,
		Config: kvMap(r.Config),
	}
}

func kvMap(kvs []abi.KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// Explanation is kernel.Explanation for people, plus the time Explain took.
type Explanation struct {
	Caller           string    `json:"caller"`
	Kind             string    `json:"kind"`
	Target           string    `json:"target"`
	Contract         string    `json:"contract,omitempty"`
	ContractSHA256   string    `json:"contract_sha256,omitempty"`
	TargetReadable   bool      `json:"target_readable"`
	ContractReadable bool      `json:"contract_readable"`
	Redacted         []string  `json:"redacted,omitempty"`
	Notes            []string  `json:"notes,omitempty"`
	Request          *Request  `json:"request,omitempty"`
	Decision         *Decision `json:"decision,omitempty"`
	// ContractSeconds is the wall time of the contract's run of the action;
	// ElapsedSeconds the whole explanation's, read checks included.
	ContractSeconds float64 `json:"contract_seconds"`
	// ContractFuel is the fuel the contract used (0 when the host does not
	// meter): deterministic, unlike the seconds.
	ContractFuel   uint64  `json:"contract_fuel"`
	ContractMemory uint64  `json:"contract_memory_bytes,omitempty"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// CPUCharged is the cpu_rate, in µs, charged to the caller for the
	// explanation's contract runs (read checks included), each as Do
	// charges its run.
	CPUCharged int64 `json:"cpu_rate_charged_us"`
	// SpendingLimit is the most the caller pays for the action (its
	// max_cost, or its default): a price above it fails COST_LIMIT_EXCEEDED.
	SpendingLimit uint64 `json:"spending_limit"`
	// Outcome is what the action would do now: the charges settlement would
	// apply, or the failure.
	Outcome Result `json:"outcome"`
}

// ExplanationOf converts ex, which took elapsed.
func ExplanationOf(ex kernel.Explanation, caller string, elapsed time.Duration) Explanation {
	out := Explanation{
		Caller: caller, Kind: string(ex.Action.Kind), Target: ex.Action.Target,
		Contract: ex.Contract, ContractSHA256: ex.ContractHash,
		TargetReadable: ex.TargetReadable, ContractReadable: ex.ContractReadable, Redacted: ex.Redacted,
		Request: RequestOf(ex.Request), Decision: DecisionOf(ex.Decision),
		ContractSeconds: ex.Usage.CPU.Seconds(), ContractFuel: ex.Usage.Fuel, ContractMemory: ex.Usage.MemoryBytes,
		ElapsedSeconds: elapsed.Seconds(), CPUCharged: ex.CPU, SpendingLimit: ex.SpendingLimit, Outcome: ResultOf(ex.Outcome),
	}
	for _, r := range ex.Redacted {
		switch r {
		case "metadata":
			out.Notes = append(out.Notes, "metadata omitted: "+caller+" may not read "+ex.Action.Target)
		case "config":
			out.Notes = append(out.Notes, "config omitted: "+caller+" may not read the contract "+ex.Contract)
		}
	}
	if ex.Request == nil {
		out.Notes = append(out.Notes, "no contract ran: the kernel judges this alone")
	}
	// Explain pays for its contract runs as Do does, and records nothing.
	out.Notes = append(out.Notes, "nothing was changed, paid or recorded; the contract runs were charged to the caller's cpu_rate (cpu_rate_charged_us)")
	return out
}

// ResultStatus is the HTTP status of an answer carrying result r: its
// code's, except that a QUOTA_EXCEEDED no wait can cure (r.Retriable false)
// is 403 rather than 429, so that HTTP clients that retry every 429 do not
// retry it.
func ResultStatus(r kernel.Result) int { return Status(r.Code, r.Retriable) }

// Status is the HTTP status of a failure of code c, retriable or not (see
// ResultStatus).
func Status(c abi.Code, retriable bool) int {
	if c == abi.QuotaExceeded && !retriable {
		return http.StatusForbidden
	}
	return HTTPStatus(c)
}

// HTTPStatus maps a code to the HTTP status the API answers with when the
// failure is as retriable as its code (see Status).
func HTTPStatus(c abi.Code) int {
	switch c {
	case abi.OK:
		return http.StatusOK
	case abi.InvalidArgument, abi.ImmutableField, abi.ContractInvalid, abi.DepthExceeded:
		return http.StatusBadRequest
	case abi.Unauthenticated:
		return http.StatusUnauthorized
	case abi.InsufficientFunds:
		return http.StatusPaymentRequired
	case abi.PermissionDenied, abi.PayerNotAuthorized, abi.KernelProtected,
		abi.ContractFailed, abi.ContractTimeout, abi.OutOfFuel,
		abi.CostLimitExceeded, abi.NoStanding:
		return http.StatusForbidden // denied, the contract failing closed included
	case abi.NotFound:
		return http.StatusNotFound
	case abi.AlreadyExists, abi.ContractInUse, abi.Conflict:
		return http.StatusConflict
	case abi.ExecutionFailed:
		return http.StatusUnprocessableEntity // the invoked executable failed; rolled back
	case abi.QuotaExceeded:
		return http.StatusTooManyRequests // retriable; else 403, see Status
	case abi.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
