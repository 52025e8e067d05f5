package llm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// Token bounds without a tokenizer. Every tokenizer the gateway meets
// (byte-level BPE, SentencePiece with byte fallback) makes a token of at
// least one byte of text, so a text's UTF-8 byte count bounds its tokens;
// the chat template adds a few tokens of its own per message (role
// markers), and a tool-calling template a preamble.
const (
	// MessageOverhead is added per message for the chat template's markers.
	MessageOverhead = 8
	// RequestOverhead is added once per request (the reply's priming).
	RequestOverhead = 16
	// ToolsOverhead is added once when the request carries tools or
	// functions: the template's instructions around them.
	ToolsOverhead = 512
	// MaxChoices bounds n, the number of completions of one request.
	MaxChoices = 16
	// MaxTokens bounds max_tokens times n (the kernel's bound on a call).
	MaxTokens = int64(1) << 31
)

// field kinds of a request's JSON values.
const (
	kString = 1 << iota
	kNumber
	kInteger
	kBool
	kObject
	kArray
)

// topFields are the request fields the gateway takes, with the JSON kinds
// each may have (null is always allowed and means absent). Anything else
// is refused: a field the gateway does not know might cost what it cannot
// bound (audio output, web search, a priority tier, predicted outputs).
var topFields = map[string]int{
	"model":                 kString,
	"messages":              kArray,
	"max_tokens":            kInteger,
	"max_completion_tokens": kInteger,
	"n":                     kInteger,
	"stream":                kBool,
	"stream_options":        kObject,
	"temperature":           kNumber,
	"top_p":                 kNumber,
	"presence_penalty":      kNumber,
	"frequency_penalty":     kNumber,
	"stop":                  kString | kArray,
	"logit_bias":            kObject,
	"logprobs":              kBool,
	"top_logprobs":          kInteger,
	"user":                  kString,
	"seed":                  kInteger,
	"tools":                 kArray,
	"tool_choice":           kString | kObject,
	"parallel_tool_calls":   kBool,
	"functions":             kArray,
	"function_call":         kString | kObject,
	"response_format":       kObject,
}

// messageFields are the fields of one message, with their kinds.
var messageFields = map[string]int{
	"role":          kString,
	"content":       kString | kArray,
	"name":          kString,
	"tool_call_id":  kString,
	"tool_calls":    kArray,
	"function_call": kObject,
	"refusal":       kString,
}

var roles = []string{"system", "developer", "user", "assistant", "tool", "function"}

// chatRequest is a validated request and what the gateway reserves for it.
type chatRequest struct {
	model     string
	stream    bool
	wantUsage bool  // the client asked for the stream's usage chunk itself
	maxInput  int64 // upper bound of the prompt's tokens
	maxOutput int64 // max_tokens (or the default) times n
	body      []byte
}

func invalid(format string, args ...any) *api.Error {
	e := api.NewError(abi.InvalidArgument, fmt.Sprintf(format, args...))
	return &e
}

// kindOf returns the kind of a JSON value (0 for null), from its first
// byte: the value is known to be valid JSON.
func kindOf(v json.RawMessage) int {
	if len(v) == 0 {
		return 0
	}
	switch v[0] {
	case '"':
		return kString
	case '{':
		return kObject
	case '[':
		return kArray
	case 't', 'f':
		return kBool
	case 'n':
		return 0
	}
	var i int64
	if json.Unmarshal(v, &i) == nil {
		return kNumber | kInteger
	}
	return kNumber
}

func kindName(k int) string {
	var names []string
	for _, x := range []struct {
		k    int
		name string
	}{{kString, "a string"}, {kInteger, "an integer"}, {kNumber, "a number"}, {kBool, "a boolean"}, {kObject, "an object"}, {kArray, "an array"}} {
		if k&x.k != 0 && !(x.k == kNumber && k&kInteger != 0) {
			names = append(names, x.name)
		}
	}
	switch len(names) {
	case 0:
		return "null"
	case 1:
		return names[0]
	}
	return names[0] + " or " + names[1]
}

// parseChat validates a chat-completions request body against prices and
// computes its bounds. defaultMax is the max_tokens of a request that
// gives none; the body sent upstream then carries it, so the provider
// never generates more than was reserved. A streaming request always asks
// the provider for the usage chunk.
func parseChat(b []byte, prices Prices, defaultMax int64) (*chatRequest, *api.Error) {
	if err := kernel.CheckDuplicateKeys(b); err != nil {
		e := api.ErrorOf(err)
		return nil, &e
	}
	var raw map[string]json.RawMessage
	if err := strictDecode(b, &raw); err != nil || raw == nil {
		return nil, invalid("the body must be a chat-completions request, a JSON object with model and messages")
	}
	for name, v := range raw {
		want, ok := topFields[name]
		if !ok {
			return nil, invalid("field %.64q is not supported by the gateway: it takes %s", name, fieldList())
		}
		k := kindOf(v)
		if k == 0 {
			delete(raw, name) // null is absent
			continue
		}
		if k&want == 0 {
			return nil, invalid("%s must be %s", name, kindName(want))
		}
	}
	req := &chatRequest{}

	// The model, from the price table.
	if raw["model"] == nil {
		return nil, invalid("model is required")
	}
	_ = json.Unmarshal(raw["model"], &req.model)
	if _, ok := prices[req.model]; !ok {
		return nil, invalid("model %.64q is not in the gateway's price table: use one of %v", req.model, prices.Models())
	}

	// The prompt's bound.
	if raw["messages"] == nil {
		return nil, invalid("messages is required")
	}
	in, e := promptBound(raw)
	if e != nil {
		return nil, e
	}
	req.maxInput = in

	// The completion's bound: max_tokens times n.
	maxTok := defaultMax
	_, hasMax := raw["max_tokens"]
	_, hasMaxC := raw["max_completion_tokens"]
	switch {
	case hasMax && hasMaxC:
		return nil, invalid("give max_tokens or max_completion_tokens, not both")
	case hasMax, hasMaxC:
		name := "max_tokens"
		if hasMaxC {
			name = "max_completion_tokens"
		}
		_ = json.Unmarshal(raw[name], &maxTok)
		if maxTok < 1 || maxTok > MaxTokens {
			return nil, invalid("%s must be between 1 and %d", name, MaxTokens)
		}
	default:
		raw["max_tokens"] = json.RawMessage(fmt.Sprint(defaultMax))
	}
	n := int64(1)
	if v, ok := raw["n"]; ok {
		_ = json.Unmarshal(v, &n)
		if n < 1 || n > MaxChoices {
			return nil, invalid("n must be between 1 and %d", MaxChoices)
		}
	}
	if maxTok > MaxTokens/n {
		return nil, invalid("max_tokens times n must be at most %d", MaxTokens)
	}
	req.maxOutput = maxTok * n

	// Streaming: the provider reports the usage in the last chunk.
	if v, ok := raw["stream"]; ok {
		_ = json.Unmarshal(v, &req.stream)
	}
	if v, ok := raw["stream_options"]; ok {
		if !req.stream {
			return nil, invalid("stream_options is only for a streaming request (stream: true)")
		}
		var so map[string]json.RawMessage
		_ = json.Unmarshal(v, &so)
		for name, x := range so {
			if name != "include_usage" || kindOf(x)&kBool == 0 {
				return nil, invalid("stream_options takes only include_usage, a boolean")
			}
			_ = json.Unmarshal(x, &req.wantUsage)
		}
	}
	if req.stream {
		raw["stream_options"] = json.RawMessage(`{"include_usage":true}`)
	}
	body, err := json.Marshal(raw)
	if err != nil {
		e := api.NewError(abi.Internal, "encode the upstream request: "+err.Error())
		return nil, &e
	}
	req.body = body
	return req, nil
}

func fieldList() []string {
	out := make([]string, 0, len(topFields))
	for k := range topFields {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// promptBound is the upper bound of the prompt's tokens: the UTF-8 bytes
// of every text of every message, the raw JSON of tool calls, tools,
// functions, tool_choice and response_format (a template renders them as
// text), MessageOverhead per message, RequestOverhead, and ToolsOverhead
// with tools. Only text content parts are taken: the tokens of an image
// or a sound do not follow from its bytes.
func promptBound(raw map[string]json.RawMessage) (int64, *api.Error) {
	var msgs []json.RawMessage
	_ = json.Unmarshal(raw["messages"], &msgs)
	if len(msgs) == 0 {
		return 0, invalid("messages must hold at least one message")
	}
	total := int64(RequestOverhead)
	for i, m := range msgs {
		var f map[string]json.RawMessage
		if kindOf(m) != kObject || json.Unmarshal(m, &f) != nil {
			return 0, invalid("messages[%d] must be an object with role and content", i)
		}
		total += MessageOverhead
		for name, v := range f {
			want, ok := messageFields[name]
			if !ok {
				return 0, invalid("messages[%d]: field %.64q is not supported by the gateway", i, name)
			}
			k := kindOf(v)
			if k == 0 {
				continue
			}
			if k&want == 0 {
				return 0, invalid("messages[%d].%s must be %s", i, name, kindName(want))
			}
			switch {
			case name == "content" && k == kArray:
				n, e := textParts(i, v)
				if e != nil {
					return 0, e
				}
				total += n
			case k == kString:
				var s string
				_ = json.Unmarshal(v, &s)
				total += int64(len(s))
			default: // tool_calls, function_call: rendered as JSON
				total += int64(len(v))
			}
		}
		var role string
		if json.Unmarshal(f["role"], &role) != nil || !slices.Contains(roles, role) {
			return 0, invalid("messages[%d].role must be one of %v", i, roles)
		}
	}
	for _, name := range []string{"tools", "functions", "tool_choice", "function_call", "response_format"} {
		if v, ok := raw[name]; ok {
			total += int64(len(v))
		}
	}
	if raw["tools"] != nil || raw["functions"] != nil {
		total += ToolsOverhead
	}
	return total, nil
}

// textParts is the byte count of an array of content parts, each
// {"type": "text", "text": "..."}.
func textParts(i int, v json.RawMessage) (int64, *api.Error) {
	var parts []map[string]json.RawMessage
	if json.Unmarshal(v, &parts) != nil {
		return 0, invalid("messages[%d].content must be a string or an array of text parts", i)
	}
	var n int64
	for j, p := range parts {
		var typ, text string
		if len(p) != 2 || json.Unmarshal(p["type"], &typ) != nil || typ != "text" || kindOf(p["text"]) != kString {
			return 0, invalid(`messages[%d].content[%d]: the gateway takes only text parts, {"type": "text", "text": "..."}: it cannot bound the tokens of images, audio or files`, i, j)
		}
		_ = json.Unmarshal(p["text"], &text)
		n += int64(len(text))
	}
	return n, nil
}

// usage is the usage object of a chat completion or of a stream's last
// chunk. A side the provider leaves out is charged its reservation.
type usage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
}

// settleUsage turns what the provider reported (nil: nothing) into what
// the kernel settles to: a side not reported is its reservation.
func settleUsage(u *usage, call kernel.LLMCall) kernel.LLMUsage {
	out := kernel.LLMUsage{InputTokens: call.MaxInputTokens, OutputTokens: call.MaxOutputTokens}
	if u == nil {
		return out
	}
	if u.PromptTokens != nil {
		out.InputTokens = *u.PromptTokens
	}
	if u.CompletionTokens != nil {
		out.OutputTokens = *u.CompletionTokens
	}
	return out
}

// validText makes s safe to put in a message: valid UTF-8, at most about
// n bytes.
func validText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
