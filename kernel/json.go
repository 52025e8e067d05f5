package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kernelhost/kernelhost/abi"
)

// MaxActionJSON bounds the encoded size DecodeAction accepts: the largest
// content, base64-encoded, plus room for the other fields.
const MaxActionJSON = 4<<20 + 64<<10

// actionJSON is the wire form of an Action: the same fields, plus text
// alternatives to the base64 byte fields for hand-written requests.
type actionJSON struct {
	Action
	Text     *string `json:"text,omitempty"`      // content as UTF-8 text
	ArgsText *string `json:"args_text,omitempty"` // args as UTF-8 text
}

// DecodeAction decodes an action from JSON as clients send it. The caller is
// never taken from the JSON (the transport binds it): a "caller" field is
// INVALID_ARGUMENT, a "created_by" field IMMUTABLE_FIELD. Unknown fields,
// fields the action's kind does not use (see actionFields; names match
// exactly, not in any case as encoding/json would), a key given twice in
// any object, trailing data, oversized input and type mismatches are
// INVALID_ARGUMENT: an action means one thing, whoever reads its bytes.
// Byte fields ("content", "args") are base64; "text" and "args_text" give
// them as plain text instead.
func DecodeAction(b []byte) (Action, error) {
	if a, ok := decodeActionFast(b); ok {
		return a, nil // the common shape, decoded alike in one pass (json_fast.go)
	}
	return decodeActionFull(b)
}

// decodeActionFull is DecodeAction's full decoder: every input, every
// refusal.
func decodeActionFull(b []byte) (Action, error) {
	if len(b) > MaxActionJSON {
		return Action{}, errf(abi.InvalidArgument, "action of %d bytes exceeds %d", len(b), MaxActionJSON)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return Action{}, &Error{Code: abi.InvalidArgument, Msg: "action is not a JSON object", Err: err}
	}
	if _, ok := probe["created_by"]; ok {
		return Action{}, errf(abi.ImmutableField, "created_by is set by the kernel at creation and never changes")
	}
	if _, ok := probe["caller"]; ok {
		return Action{}, errf(abi.InvalidArgument, "caller is the authenticated principal and cannot be given in the action")
	}
	if err := checkDuplicateKeys(b); err != nil {
		return Action{}, err
	}
	if err := checkJSONFields(probe); err != nil {
		return Action{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w actionJSON
	if err := dec.Decode(&w); err != nil {
		return Action{}, &Error{Code: abi.InvalidArgument, Msg: "malformed action", Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Action{}, errf(abi.InvalidArgument, "trailing data after the action")
	}
	a := w.Action
	if w.Text != nil {
		if a.Content != nil {
			return Action{}, errf(abi.InvalidArgument, "give content or text, not both")
		}
		a.Content = []byte(*w.Text)
	}
	if w.ArgsText != nil {
		if a.Args != nil {
			return Action{}, errf(abi.InvalidArgument, "give args or args_text, not both")
		}
		a.Args = []byte(*w.ArgsText)
	}
	return a, nil
}

// EncodeAction is DecodeAction's inverse (the caller is not encoded).
func EncodeAction(a Action) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("kernel: encode action: %w", err)
	}
	return b, nil
}

// actionFields lists, for each kind, the JSON fields of an action of that
// kind besides "kind" (always allowed). "text" counts as "content" and
// "args_text" as "args". DecodeAction refuses any other field, and validate
// any other non-zero Action field (actionFieldSet): a field the kind does
// not use would mean nothing, yet travel into audit events at any size.
// A new kind or field needs its entry here. Every kind takes request_id.
var actionFields = map[Kind][]string{
	// Judged by the artifact's access contract; max_cost caps the price.
	KindRead:        {"target", "max_cost", "request_id"},
	KindWrite:       {"target", "type", "contract", "content", "metadata", "unset", "max_cost", "request_id"},
	KindEdit:        {"target", "type", "content", "metadata", "unset", "max_cost", "request_id"},
	KindDelete:      {"target", "max_cost", "request_id"},
	KindSetContract: {"target", "contract", "max_cost", "request_id"},
	KindInvoke:      {"target", "method", "args", "max_cost", "max_llm_cost", "request_id"},

	// Judged by the kernel, on the caller's own standing.
	KindTransfer:         {"to", "amount", "request_id"},
	KindGrantConsent:     {"contract", "per_call_cap", "total_cap", "request_id"},
	KindRevokeConsent:    {"contract", "request_id"},
	KindTransferQuota:    {"to", "resource", "amount", "request_id"},
	KindConsumeQuota:     {"resource", "amount", "request_id"},
	KindGrantStanding:    {"target", "request_id"},
	KindRevokeStanding:   {"target", "request_id"},
	KindSetSpendingLimit: {"amount", "request_id"},
	KindGrantLLMConsent:  {"to", "amount", "per_call_cap", "total_cap", "request_id"},
	KindRevokeLLMConsent: {"to", "request_id"},

	// Right primitives.
	KindMintRight:     {"target", "resource", "amount", "contract", "request_id"},
	KindTransferRight: {"target", "to", "request_id"},
	KindSplitRight:    {"target", "amounts", "ids", "request_id"},
	KindMergeRights:   {"target", "ids", "request_id"},
	KindRedeemRight:   {"target", "request_id"},
}

// actionFieldSet reports, for each JSON field of Action, whether a sets it:
// validate's side of actionFields, for actions built in Go.
var actionFieldSet = map[string]func(a *Action) bool{
	"target":       func(a *Action) bool { return a.Target != "" },
	"type":         func(a *Action) bool { return a.Type != "" },
	"contract":     func(a *Action) bool { return a.Contract != "" },
	"content":      func(a *Action) bool { return a.Content != nil },
	"metadata":     func(a *Action) bool { return len(a.Metadata) > 0 },
	"unset":        func(a *Action) bool { return len(a.Unset) > 0 },
	"max_cost":     func(a *Action) bool { return a.MaxCost != nil },
	"max_llm_cost": func(a *Action) bool { return a.MaxLLMCost != nil },
	"method":       func(a *Action) bool { return a.Method != "" },
	"args":         func(a *Action) bool { return a.Args != nil },
	"to":           func(a *Action) bool { return a.To != "" },
	"amount":       func(a *Action) bool { return a.Amount != 0 },
	"resource":     func(a *Action) bool { return a.Resource != "" },
	"per_call_cap": func(a *Action) bool { return a.PerCallCap != 0 },
	"total_cap":    func(a *Action) bool { return a.TotalCap != 0 },
	"amounts":      func(a *Action) bool { return len(a.Amounts) > 0 },
	"ids":          func(a *Action) bool { return len(a.IDs) > 0 },
	"request_id":   func(a *Action) bool { return a.RequestID != "" },
}

// jsonAliases are the JSON-only names of Action fields.
var jsonAliases = map[string]string{"text": "content", "args_text": "args"}

// kindUses reports whether actions of kind k use JSON field f. Unknown
// kinds use no field; validate refuses them.
func kindUses(k Kind, f string) bool {
	for _, g := range actionFields[k] {
		if g == f {
			return true
		}
	}
	return false
}

// checkJSONFields checks the top-level keys of an action against
// actionFields. Names must match exactly: encoding/json would also take
// "Target" or "TARGET" for "target", and keep whichever comes last.
func checkJSONFields(probe map[string]json.RawMessage) *Error {
	var kind Kind
	if raw, ok := probe["kind"]; ok {
		_ = json.Unmarshal(raw, &kind) // a non-string kind fails decoding later
	}
	_, known := actionFields[kind]
	for key := range probe {
		if key == "kind" {
			continue
		}
		f := key
		if alias, ok := jsonAliases[key]; ok {
			f = alias
		}
		if _, ok := actionFieldSet[f]; !ok {
			return errf(abi.InvalidArgument, "unknown field %.64q in the action", key)
		}
		if known && !kindUses(kind, f) {
			return errf(abi.InvalidArgument, "%s does not use %q: send only %s", kind, key, fieldList(kind))
		}
	}
	return nil
}

// checkFields is validate's check that a (of a known kind) sets only
// fields its kind uses.
func checkFields(a *Action) *Error {
	if _, known := actionFields[a.Kind]; !known {
		return nil
	}
	for f, set := range actionFieldSet {
		if set(a) && !kindUses(a.Kind, f) {
			return errf(abi.InvalidArgument, "%s does not use %q: set only %s", a.Kind, f, fieldList(a.Kind))
		}
	}
	return nil
}

// fieldList names kind's fields for an error message.
func fieldList(k Kind) string {
	fs := actionFields[k]
	if len(fs) == 0 {
		return "kind"
	}
	return "kind, " + strings.Join(fs, ", ")
}

// CheckDuplicateKeys returns an INVALID_ARGUMENT *Error if any JSON object
// in b, at any depth, has a key twice, or if b is not JSON. DecodeAction
// applies it; transports apply it to their other JSON bodies.
func CheckDuplicateKeys(b []byte) error {
	if err := checkDuplicateKeys(b); err != nil {
		return err
	}
	return nil
}

// checkDuplicateKeys fails if any JSON object in b, at any depth, has a key
// twice: encoding/json keeps the last silently, so two readers of the same
// bytes (a client, a proxy, a log, the kernel) could each see another
// action. It walks the tokens of b, which must already be valid JSON.
func checkDuplicateKeys(b []byte) *Error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // no float parsing: only the structure matters
	type frame struct {
		keys   map[string]struct{} // nil in an array
		wanted bool                // in an object: the next token is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &Error{Code: abi.InvalidArgument, Msg: "action is not valid JSON", Err: err}
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].wanted {
			if key, ok := tok.(string); ok {
				if _, dup := stack[n-1].keys[key]; dup {
					return errf(abi.InvalidArgument, "key %.64q appears twice in one object of the action", key)
				}
				stack[n-1].keys[key] = struct{}{}
				stack[n-1].wanted = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]struct{}{}, wanted: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wanted = true
		}
	}
}
