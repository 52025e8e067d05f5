package mcp

import (
	"encoding/json"
	"fmt"
	"time"

	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
)

// ErrorBody is the JSON of a failed tool call (isError): the kernel's stable
// code, whether the same call may succeed later unchanged (and after how
// long), and a hint that tells the model what to do next.
type ErrorBody struct {
	OK        bool   `json:"ok"` // always false
	ErrorCode string `json:"error_code"`
	Category  string `json:"category"`
	Retriable bool   `json:"retriable"`
	// RetryAfterNS is how long to wait before the same call can succeed,
	// in nanoseconds (0: no wait helps, or none is known).
	RetryAfterNS int64  `json:"retry_after_ns"`
	Message      string `json:"message"`
	Hint         string `json:"hint"`
	// RequestID is the call's request_id: a call sent again with it is
	// never applied twice.
	RequestID string `json:"request_id,omitempty"`
	// Resource and Available detail a QUOTA_EXCEEDED.
	Resource  string `json:"resource,omitempty"`
	Available int64  `json:"available,omitempty"`
	// Decision is the contract's answer when one ran (its reason says why
	// it refused); Charges what was charged all the same; Logs an
	// executable's log lines.
	Decision *api.Decision `json:"decision,omitempty"`
	Charges  any           `json:"charges,omitempty"`
	Logs     []string      `json:"logs,omitempty"`
}

// newErrorBody returns the body of code with message msg and hint h ("":
// the code's own hint).
func newErrorBody(code abi.Code, msg, h string) ErrorBody {
	b := ErrorBody{ErrorCode: code.String(), Category: string(code.Category()), Retriable: code.Retriable(), Message: msg, Hint: h}
	if b.Hint == "" {
		b.Hint = hint(b)
	}
	return b
}

// bodyOfAPIError converts an error answer of the HTTP API.
func bodyOfAPIError(e api.Error) ErrorBody {
	return ErrorBody{ErrorCode: e.ErrorCode, Category: e.Category, Retriable: e.Retriable, Message: e.Message}
}

// bodyOfResult converts a failed action result.
func bodyOfResult(r api.Result, requestID string) ErrorBody {
	b := ErrorBody{
		ErrorCode: r.ErrorCode, Category: r.Category, Retriable: r.Retriable, Message: r.Message,
		RetryAfterNS: int64(r.RetryAfterSeconds * float64(time.Second)),
		RequestID:    requestID, Resource: r.Resource, Available: r.Available,
		Decision: r.Decision, Logs: r.Logs,
	}
	if len(r.Charges) > 0 {
		b.Charges = r.Charges
	}
	b.Hint = hint(b)
	return b
}

// sameRequest is the end of a hint to call again: with the request_id, so
// that a call that did happen is not applied twice.
func sameRequest(requestID string) string {
	if requestID == "" {
		return "."
	}
	return fmt.Sprintf(" with the same request_id %q: if the first call was applied, you get its result and nothing happens twice.", requestID)
}

// hint says what a model should do about b.
func hint(b ErrorBody) string {
	code, _ := abi.ParseCode(b.ErrorCode)
	reason := ""
	if b.Decision != nil && b.Decision.Reason != "" {
		reason = fmt.Sprintf(" (the contract's reason: %q)", b.Decision.Reason)
	}
	switch code {
	case abi.QuotaExceeded:
		if b.Retriable {
			return fmt.Sprintf("your %s quota is in use: wait retry_after_ns (%s) and call again%s",
				orWord(b.Resource, "resource"), time.Duration(b.RetryAfterNS), sameRequest(b.RequestID))
		}
		return fmt.Sprintf("your %s quota cannot cover this and waiting will not help: make the request smaller, delete artifacts to free disk, or get quota from another principal (they call transfer_quota); the quota tool shows what you have", orWord(b.Resource, "resource"))
	case abi.CostLimitExceeded:
		return "the price is above max_cost (the message names both) and nothing was charged: if you agree to pay that price, call again with max_cost at least the price and without this request_id (it holds this refusal); otherwise leave it. explain shows the price without acting"
	case abi.PermissionDenied:
		return "the access contract refused" + reason + ": calling again unchanged will fail the same way. explain shows the contract's decision; the artifact's controller may grant access"
	case abi.PayerNotAuthorized:
		return "the contract names a payer that has not consented to pay (or whose caps are spent)" + reason + ": nothing was charged; this is up to that payer, not you"
	case abi.InsufficientFunds:
		return "your scrip balance cannot pay this price: check the balance tool; you need scrip transferred to you (transfer) before calling again"
	case abi.NotFound:
		return "nothing has that id: check the id (list_artifacts lists the artifacts you may read; ids are case-sensitive)"
	case abi.AlreadyExists:
		return "that id is taken: choose another id, or write to the existing artifact if its contract lets you"
	case abi.InvalidArgument:
		return "the arguments are wrong as the message says: fix them (see the tool's input schema) and call again"
	case abi.ImmutableField:
		return "type and created_by never change: create a new artifact under another id instead"
	case abi.ContractInvalid:
		return "the module failed the host's checks as the message says: fix the module and write it again"
	case abi.ContractFailed, abi.ContractTimeout, abi.OutOfFuel:
		return "the artifact's contract failed, so the action was denied (fail closed)" + reason + ": this is a fault of the contract, not of your call; calling again unchanged fails the same way"
	case abi.ContractInUse:
		return "a contract that still governs artifacts cannot be deleted: give those artifacts another contract first"
	case abi.KernelProtected:
		return "the kernel manages this artifact (a right): use the rights primitives, not artifact actions"
	case abi.DepthExceeded:
		return "the invocation nested past the kernel's depth limit: the executable calls too deep; nothing can be done from this call"
	case abi.ExecutionFailed:
		return "the invoked executable failed (see message and logs) and all its writes were rolled back: check method and args, or do not retry"
	case abi.NoStanding:
		return "an executable tried to act as a principal that has not granted it standing: only that principal can grant it"
	case abi.Unauthenticated:
		return "this MCP server's kernelhost token is missing, wrong or revoked: the operator must configure a valid token; calling again will not help"
	case abi.Conflict, abi.Internal, abi.Unavailable:
		return "a transient fault of the server: wait a few seconds and call again" + sameRequest(b.RequestID)
	}
	return "see the message"
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// errorResult is the tool result of a failure: isError, the body as
// structured content and as its JSON text (which every client shows the
// model).
func errorResult(b ErrorBody) *gomcp.CallToolResult {
	b.OK = false
	j, err := json.Marshal(b)
	if err != nil {
		j = []byte(`{"ok":false,"error_code":"INTERNAL","message":"error body did not encode"}`)
	}
	return &gomcp.CallToolResult{IsError: true, Content: []gomcp.Content{&gomcp.TextContent{Text: string(j)}}, StructuredContent: json.RawMessage(j)}
}
