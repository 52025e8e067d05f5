package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
// trailing data, oversized input and type mismatches are INVALID_ARGUMENT.
// Byte fields ("content", "args") are base64; "text" and "args_text" give
// them as plain text instead.
func DecodeAction(b []byte) (Action, error) {
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
