package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/kernel"
)

// priced are the arguments of every tool whose action a contract judges.
type priced struct {
	MaxCost   *int64 `json:"max_cost,omitempty" jsonschema:"the most scrip you agree to pay for this call's contract decision; a higher price fails with COST_LIMIT_EXCEEDED and charges nothing. Default: the server's default (0 unless its operator chose otherwise)"`
	RequestID string `json:"request_id,omitempty" jsonschema:"an id of 1-128 letters, digits and - _ . : @ that makes the call idempotent: the same call sent again with the same request_id returns the first result and applies nothing twice. Made for you when absent, and returned"`
}

type readIn struct {
	Target string `json:"target" jsonschema:"the id of the artifact to read"`
	priced
}

type writeIn struct {
	Target        string            `json:"target" jsonschema:"the artifact's id (1-128 bytes of letters, digits and - _ . : @, in segments separated by /)"`
	Type          string            `json:"type,omitempty" jsonschema:"the artifact's type, needed to create one (e.g. text, data, contract, executable); it never changes afterwards"`
	Text          *string           `json:"text,omitempty" jsonschema:"the new content as text (give text or content_base64)"`
	ContentBase64 *string           `json:"content_base64,omitempty" jsonschema:"the new content as standard base64, for bytes that are not text"`
	Contract      string            `json:"contract,omitempty" jsonschema:"on create: the id of the access contract that will govern the artifact (default: the world's default contract)"`
	Metadata      map[string]string `json:"metadata,omitempty" jsonschema:"string keys and values merged into the artifact's metadata (contracts read it, e.g. controller)"`
	priced
}

type editIn struct {
	Target        string            `json:"target" jsonschema:"the id of the artifact to edit"`
	Text          *string           `json:"text,omitempty" jsonschema:"new content as text (omit to keep the content)"`
	ContentBase64 *string           `json:"content_base64,omitempty" jsonschema:"new content as standard base64 (omit to keep the content)"`
	Metadata      map[string]string `json:"metadata,omitempty" jsonschema:"metadata keys to set"`
	Unset         []string          `json:"unset,omitempty" jsonschema:"metadata keys to remove"`
	priced
}

type deleteIn struct {
	Target string `json:"target" jsonschema:"the id of the artifact to delete"`
	priced
}

type llmMessage struct {
	Role    string `json:"role" jsonschema:"system, user or assistant"`
	Content string `json:"content" jsonschema:"the message's text"`
}

type llmChatIn struct {
	Model     string       `json:"model" jsonschema:"a model of the gateway's price table (others are refused)"`
	Messages  []llmMessage `json:"messages" jsonschema:"the conversation, oldest first"`
	MaxTokens *int64       `json:"max_tokens,omitempty" jsonschema:"the most tokens the reply may have: what is reserved (default: the gateway's)"`
	Sponsor   string       `json:"sponsor,omitempty" jsonschema:"a principal that pays for the call under its grant_llm_consent for you (default: you pay)"`
}

type llmChatOut struct {
	OK           bool   `json:"ok"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason,omitempty"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	Cost         int64  `json:"cost_microdollars"`
	Event        uint64 `json:"event,omitempty"`
}

type invokeIn struct {
	Target     string  `json:"target" jsonschema:"the id of the executable artifact to invoke"`
	Method     string  `json:"method,omitempty" jsonschema:"the method to call"`
	ArgsText   *string `json:"args_text,omitempty" jsonschema:"the arguments as text (often JSON)"`
	ArgsBase64 *string `json:"args_base64,omitempty" jsonschema:"the arguments as standard base64, for bytes that are not text"`
	MaxLLMCost *int64  `json:"max_llm_cost,omitempty" jsonschema:"the most micro-dollars of your llm_budget the executable's LLM calls may cost in all; default 0: it may not call an LLM at your expense"`
	priced
}

type transferIn struct {
	To        string `json:"to" jsonschema:"the id of the principal who receives the scrip"`
	Amount    int64  `json:"amount" jsonschema:"how much scrip to move from your balance, 1 or more: exactly this much leaves your balance"`
	RequestID string `json:"request_id,omitempty" jsonschema:"an id of 1-128 letters, digits and - _ . : @ that makes the call idempotent: the same call sent again with the same request_id moves nothing twice. Made for you when absent, and returned"`
}

type transferQuotaIn struct {
	To        string `json:"to" jsonschema:"the id of the principal who receives the quota"`
	Resource  string `json:"resource" jsonschema:"which quota: cpu_rate, llm_rate, llm_budget, disk or memory"`
	Amount    int64  `json:"amount" jsonschema:"how much of your unused quota to give, 1 or more"`
	RequestID string `json:"request_id,omitempty" jsonschema:"an id of 1-128 letters, digits and - _ . : @ that makes the call idempotent. Made for you when absent, and returned"`
}

type explainIn struct {
	Kind          string            `json:"kind" jsonschema:"the action to judge: read, write, edit, delete, set_contract or invoke"`
	Target        string            `json:"target" jsonschema:"the artifact's id"`
	Type          string            `json:"type,omitempty" jsonschema:"write: the type of the artifact to create"`
	Contract      string            `json:"contract,omitempty" jsonschema:"write: the contract of the artifact to create; set_contract: the new contract"`
	Text          *string           `json:"text,omitempty" jsonschema:"write, edit: the content as text"`
	ContentBase64 *string           `json:"content_base64,omitempty" jsonschema:"write, edit: the content as standard base64"`
	Metadata      map[string]string `json:"metadata,omitempty" jsonschema:"write, edit: metadata to set"`
	Unset         []string          `json:"unset,omitempty" jsonschema:"edit: metadata keys to remove"`
	Method        string            `json:"method,omitempty" jsonschema:"invoke: the method"`
	ArgsText      *string           `json:"args_text,omitempty" jsonschema:"invoke: the arguments as text"`
	ArgsBase64    *string           `json:"args_base64,omitempty" jsonschema:"invoke: the arguments as standard base64"`
	MaxCost       *int64            `json:"max_cost,omitempty" jsonschema:"the max_cost the action would carry (default: the server's default), to see whether its price fits"`
}

type principalIn struct {
	Principal string `json:"principal,omitempty" jsonschema:"whose figures to show (they are public); default: yours. Naming someone else shows their figures and acts as nobody"`
}

type eventsIn struct {
	Since  uint64 `json:"since,omitempty" jsonschema:"show events with a sequence number above this (0: from the start); pass the answer's next to continue"`
	Limit  int    `json:"limit,omitempty" jsonschema:"at most this many events (1-1000; default 100)"`
	Kind   string `json:"kind,omitempty" jsonschema:"only events of this action kind (e.g. transfer, read, invoke)"`
	Target string `json:"target,omitempty" jsonschema:"only events acting on this artifact or right"`
}

type listIn struct {
	Prefix string `json:"prefix,omitempty" jsonschema:"only artifacts whose id starts with this (default: all)"`
	Cursor string `json:"cursor,omitempty" jsonschema:"the next_cursor of the previous page, to continue"`
	Limit  int    `json:"limit,omitempty" jsonschema:"at most this many artifacts (1-1000; default 100)"`
}

type noArgs struct{}

// ActionOutput is the answer of a tool that acted.
type ActionOutput struct {
	OK        bool   `json:"ok"`
	Kind      string `json:"kind"`
	RequestID string `json:"request_id"`
	// MaxCost is the limit the action carried (contract-judged kinds).
	MaxCost *int64 `json:"max_cost,omitempty"`
	// Replayed: the request_id was used before; this is the first call's
	// result and nothing ran now.
	Replayed bool            `json:"replayed,omitempty"`
	Decision *api.Decision   `json:"decision,omitempty"`
	Charges  []kernel.Charge `json:"charges,omitempty"`
	Revision uint64          `json:"revision,omitempty"`
	Event    uint64          `json:"event,omitempty"`

	Artifact *kernel.ArtifactInfo `json:"artifact,omitempty"`
	// Text is the content read when it is valid UTF-8, ContentBase64 when
	// it is not.
	Text          *string `json:"text,omitempty"`
	ContentBase64 []byte  `json:"content_base64,omitempty"`
	// OutputText / OutputBase64 and Logs answer an invoke.
	OutputText   *string  `json:"output_text,omitempty"`
	OutputBase64 []byte   `json:"output_base64,omitempty"`
	Logs         []string `json:"logs,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// addTool adds tool t whose handler h takes In. The input schema is In's,
// refused by CheckInputSchema if it names who acts or pays, and tuned by tune;
// arguments are checked against it (undeclared ones refused) before h
// runs, and any failure is a result with an ErrorBody.
func addTool[In any](s *Server, t *gomcp.Tool, tune func(*jsonschema.Schema), h func(ctx context.Context, c *client.Client, in In) (any, error)) error {
	schema, err := jsonschema.For[In](nil)
	if err != nil {
		return fmt.Errorf("mcp: tool %s: %w", t.Name, err)
	}
	if tune != nil {
		tune(schema)
	}
	if err := CheckInputSchema(t.Name, schema); err != nil {
		return err
	}
	resolved, err := schema.Resolve(nil)
	if err != nil {
		return fmt.Errorf("mcp: tool %s: %w", t.Name, err)
	}
	t.InputSchema = schema
	s.mcp.AddTool(t, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		in, err := decodeArgs[In](req.Params.Arguments, resolved)
		if err != nil {
			return errorResult(errorOf(err, "")), nil
		}
		c, err := s.clientFor(req.Extra)
		if err != nil {
			return errorResult(errorOf(err, "")), nil
		}
		out, err := h(ctx, c, in)
		if err != nil {
			return errorResult(errorOf(err, "")), nil
		}
		j, err := json.Marshal(out)
		if err != nil {
			return errorResult(errorOf(err, "")), nil
		}
		return &gomcp.CallToolResult{Content: []gomcp.Content{&gomcp.TextContent{Text: string(j)}}, StructuredContent: json.RawMessage(j)}, nil
	})
	s.tools = append(s.tools, t.Name)
	return nil
}

// decodeArgs checks raw against the tool's schema and decodes it strictly.
// An argument that names who acts is refused with its own message, before
// anything else.
func decodeArgs[In any](raw json.RawMessage, resolved *jsonschema.Resolved) (In, error) {
	var in In
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		raw = json.RawMessage("{}")
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return in, invalid("the arguments are not a JSON object: %v", err)
	}
	for name := range generic {
		for _, f := range forbiddenArgs {
			if strings.EqualFold(name, f) {
				return in, &toolError{body: newErrorBody(abi.InvalidArgument,
					fmt.Sprintf("argument %q refused: every call acts as this server's principal (the owner of its token), and no argument can name another caller or payer", name),
					"remove the "+name+" argument: you cannot act as, or charge, anyone else")}
			}
		}
	}
	if err := resolved.Validate(generic); err != nil {
		return in, invalid("the arguments do not fit the tool's input schema: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, invalid("the arguments do not fit the tool's input schema: %v", err)
	}
	return in, nil
}

func invalid(format string, args ...any) error {
	return &toolError{body: newErrorBody(abi.InvalidArgument, fmt.Sprintf(format, args...), "")}
}

// content returns the bytes of text or b64, the arguments named textName
// and b64Name (at most one may be given; nil when neither is).
func content(textName, b64Name string, text, b64 *string) ([]byte, error) {
	switch {
	case text != nil && b64 != nil:
		return nil, invalid("give %s or %s, not both", textName, b64Name)
	case text != nil:
		return []byte(*text), nil
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, invalid("%s is not standard base64: %v", b64Name, err)
		}
		return b, nil
	}
	return nil, nil
}

// maxCost returns the max_cost a call carries: its own, or the default,
// within the operator's ceiling.
func (s *Server) maxCost(mc *int64) (int64, error) {
	v := s.cfg.DefaultMaxCost
	if mc != nil {
		v = *mc
	}
	if v < 0 {
		return 0, invalid("max_cost %d: give 0 or more", v)
	}
	if c := s.cfg.MaxCostCeiling; c >= 0 && v > c {
		return 0, &toolError{body: newErrorBody(abi.CostLimitExceeded,
			fmt.Sprintf("max_cost %d is above %d, the most this MCP server's operator lets a call pay; nothing was sent", v, c),
			fmt.Sprintf("call with max_cost %d or less: a price above %d cannot be paid through this server", c, c))}
	}
	return v, nil
}

// act performs a as the client's principal with request_id rid (one is
// made when ""), and max_cost mc when the kind is contract-judged.
func (s *Server) act(ctx context.Context, c *client.Client, a kernel.Action, rid string, judged bool, mc *int64) (any, error) {
	if rid == "" {
		rid = s.cfg.RequestID()
	}
	a.RequestID = rid
	a.Caller = "" // the token's principal; the server binds it
	if judged {
		v, err := s.maxCost(mc)
		if err != nil {
			return nil, withRequestID(err, rid)
		}
		a.MaxCost = &v
	}
	res, err := c.Do(ctx, a)
	if err != nil {
		return nil, withRequestID(err, rid)
	}
	if !res.OK {
		return nil, &toolError{body: bodyOfResult(res, rid)}
	}
	out := ActionOutput{
		OK: true, Kind: string(a.Kind), RequestID: rid, MaxCost: a.MaxCost, Replayed: res.Replayed,
		Decision: res.Decision, Charges: res.Charges, Revision: res.Revision, Event: res.Event,
		Artifact: res.Artifact, Text: res.Text, OutputText: res.OutputText, Logs: res.Logs,
	}
	if res.Text == nil {
		out.ContentBase64 = res.Content
	}
	if res.OutputText == nil {
		out.OutputBase64 = res.Output
	}
	if res.Replayed {
		out.Note = "this request_id was used before: this is the first call's result, and nothing ran now"
		if a.Kind == kernel.KindRead {
			out.Note += " (a replayed read carries no content: read again without this request_id for it)"
		}
	}
	return out, nil
}

// withRequestID gives err's body the call's request_id.
func withRequestID(err error, rid string) error { return &toolError{body: errorOf(err, rid)} }

// self returns the token's principal.
func self(ctx context.Context, c *client.Client) (string, error) {
	id, err := c.Whoami(ctx)
	if err != nil {
		return "", err
	}
	if id.Admin {
		return "", &toolError{body: newErrorBody(abi.PermissionDenied, "this server's token is the admin token, which acts as no principal",
			"the operator must start the MCP server with a principal's token")}
	}
	return id.Principal, nil
}

// setEnum sets the enum of property name.
func setEnum(name string, values ...string) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		if p := s.Properties[name]; p != nil {
			for _, v := range values {
				p.Enum = append(p.Enum, v)
			}
		}
	}
}

// bounds sets the numeric bounds every schema shares: max_cost from 0,
// amount from 1, limit 1-1000.
func bounds(s *jsonschema.Schema) {
	for name, p := range s.Properties {
		switch name {
		case "max_cost":
			p.Minimum = jsonschema.Ptr(0.0)
		case "amount":
			p.Minimum = jsonschema.Ptr(1.0)
		case "limit":
			p.Minimum, p.Maximum = jsonschema.Ptr(1.0), jsonschema.Ptr(1000.0)
		}
	}
}

func all(fs ...func(*jsonschema.Schema)) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		for _, f := range fs {
			f(s)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// annotations for the tools' hints to clients.
var (
	readOnly    = &gomcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}
	charged     = &gomcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(false)}
	destructive = &gomcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(false)}
)

// addTools adds every tool.
func (s *Server) addTools() error {
	judgedKinds := []string{"read", "write", "edit", "delete", "set_contract", "invoke"}
	resources := make([]string, 0, 5)
	for _, r := range []kernel.Resource{kernel.CPURate, kernel.LLMRate, kernel.LLMBudget, kernel.Disk, kernel.Memory} {
		resources = append(resources, string(r))
	}
	kinds := make([]string, 0, 24)
	for _, k := range kernel.Kinds() {
		kinds = append(kinds, string(k))
	}
	adds := []func() error{
		func() error {
			return addTool(s, &gomcp.Tool{Name: "whoami", Title: "Who am I",
				Description: "Your principal id and scrip balance: every tool acts as this principal, and only as it.",
				Annotations: readOnly}, nil,
				func(ctx context.Context, c *client.Client, _ noArgs) (any, error) {
					id, err := self(ctx, c)
					if err != nil {
						return nil, err
					}
					v, err := c.Principal(ctx, id)
					if err != nil {
						return nil, err
					}
					return map[string]any{"principal": v.ID, "balance": v.Balance, "server": c.Server()}, nil
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "read", Title: "Read an artifact",
				Description: "Read an artifact's content and description as your principal. Its access contract judges the read and may charge a price (at most max_cost); the read is recorded in the audit trail. The content comes as text when it is UTF-8, else as content_base64.",
				Annotations: charged}, bounds,
				func(ctx context.Context, c *client.Client, in readIn) (any, error) {
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindRead, Target: in.Target}, in.RequestID, true, in.MaxCost)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "write", Title: "Write an artifact",
				Description: "Create an artifact (give type; created_by becomes you, for ever) or replace an existing one's content and merge metadata. Replacing is judged and may be priced by the artifact's contract (at most max_cost); creating uses your disk quota.",
				Annotations: destructive}, bounds,
				func(ctx context.Context, c *client.Client, in writeIn) (any, error) {
					b, err := content("text", "content_base64", in.Text, in.ContentBase64)
					if err != nil {
						return nil, err
					}
					if b == nil {
						return nil, invalid("write needs content: give text or content_base64 (use edit to change only metadata)")
					}
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindWrite, Target: in.Target, Type: in.Type, Contract: in.Contract, Content: b, Metadata: in.Metadata}, in.RequestID, true, in.MaxCost)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "edit", Title: "Edit an artifact",
				Description: "Change an existing artifact in place: new content (optional), metadata keys to set, keys to unset. Judged and possibly priced by its contract (at most max_cost).",
				Annotations: destructive}, bounds,
				func(ctx context.Context, c *client.Client, in editIn) (any, error) {
					b, err := content("text", "content_base64", in.Text, in.ContentBase64)
					if err != nil {
						return nil, err
					}
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindEdit, Target: in.Target, Content: b, Metadata: in.Metadata, Unset: in.Unset}, in.RequestID, true, in.MaxCost)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "delete", Title: "Delete an artifact",
				Description: "Delete an artifact, judged and possibly priced by its contract (at most max_cost). Its disk quota comes back to whoever it was charged to. A contract that still governs artifacts cannot be deleted.",
				Annotations: destructive}, bounds,
				func(ctx context.Context, c *client.Client, in deleteIn) (any, error) {
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindDelete, Target: in.Target}, in.RequestID, true, in.MaxCost)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "invoke", Title: "Invoke an executable",
				Description: "Run a method of an executable artifact as your principal. Its contract judges and prices the call; max_cost covers that price and every price and transfer the invocation makes as you. The executable can do only what you could, and may call an LLM as you only within max_llm_cost. All its writes are rolled back if it fails. Answers output_text (or output_base64) and logs.",
				Annotations: destructive}, bounds,
				func(ctx context.Context, c *client.Client, in invokeIn) (any, error) {
					b, err := content("args_text", "args_base64", in.ArgsText, in.ArgsBase64)
					if err != nil {
						return nil, err
					}
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindInvoke, Target: in.Target, Method: in.Method, Args: b, MaxLLMCost: in.MaxLLMCost}, in.RequestID, true, in.MaxCost)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "transfer", Title: "Transfer scrip",
				Description: "Move exactly amount scrip from your balance to another principal. Judged by the kernel, not by a contract: there is no price beyond the amount itself, so it takes no max_cost. Irreversible.",
				Annotations: destructive}, bounds,
				func(ctx context.Context, c *client.Client, in transferIn) (any, error) {
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindTransfer, To: in.To, Amount: in.Amount}, in.RequestID, false, nil)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "transfer_quota", Title: "Transfer quota",
				Description: "Give some of your unused quota of a resource to another principal (cpu_rate and llm_rate per window, llm_budget in micro-dollars, disk in bytes, memory in bytes per execution). Judged by the kernel; no price, so no max_cost.",
				Annotations: destructive}, all(bounds, setEnum("resource", resources...)),
				func(ctx context.Context, c *client.Client, in transferQuotaIn) (any, error) {
					return s.act(ctx, c, kernel.Action{Kind: kernel.KindTransferQuota, To: in.To, Resource: in.Resource, Amount: in.Amount}, in.RequestID, false, nil)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "rights", Title: "Your rights",
				Description: "The tokenized rights you hold (quota wrapped into transferable rights): id, resource, amount, minter and contract. Records nothing.",
				Annotations: readOnly}, nil,
				func(ctx context.Context, c *client.Client, _ noArgs) (any, error) {
					rs, err := c.Rights(ctx, "")
					if err != nil {
						return nil, err
					}
					return map[string]any{"rights": rs}, nil
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "explain", Title: "Explain an action",
				Description: "Judge an action without doing it: the contract's decision (allowed, cost, payer, payee, reason), what settlement would charge or why it would fail, and the spending limit it would meet. Nothing changes, no scrip moves and nothing is recorded, but the contract runs are charged to your cpu_rate. Use it to see a price before you agree to pay it.",
				Annotations: readOnly}, all(bounds, setEnum("kind", judgedKinds...)),
				func(ctx context.Context, c *client.Client, in explainIn) (any, error) {
					b, err := content("text", "content_base64", in.Text, in.ContentBase64)
					if err != nil {
						return nil, err
					}
					args, err := content("args_text", "args_base64", in.ArgsText, in.ArgsBase64)
					if err != nil {
						return nil, err
					}
					a := kernel.Action{Kind: kernel.Kind(in.Kind), Target: in.Target, Type: in.Type, Contract: in.Contract, Content: b,
						Metadata: in.Metadata, Unset: in.Unset, Method: in.Method, Args: args}
					v, err := s.maxCost(in.MaxCost)
					if err != nil {
						return nil, err
					}
					a.MaxCost = &v
					return c.Explain(ctx, a)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "quota", Title: "Quotas",
				Description: "Quota, usage, what is available now and when used capacity frees up (retry_after_ns), per resource: yours, or a named principal's (quotas are public). Records nothing.",
				Annotations: readOnly}, nil,
				func(ctx context.Context, c *client.Client, in principalIn) (any, error) {
					id := in.Principal
					if id == "" {
						var err error
						if id, err = self(ctx, c); err != nil {
							return nil, err
						}
					}
					qs, err := c.Quotas(ctx, id)
					if err != nil {
						return nil, err
					}
					return map[string]any{"principal": id, "quotas": qs}, nil
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "balance", Title: "Scrip balance",
				Description: "The scrip balance of your principal, or of a named one (balances are public). Records nothing.",
				Annotations: readOnly}, nil,
				func(ctx context.Context, c *client.Client, in principalIn) (any, error) {
					id := in.Principal
					if id == "" {
						var err error
						if id, err = self(ctx, c); err != nil {
							return nil, err
						}
					}
					v, err := c.Principal(ctx, id)
					if err != nil {
						return nil, err
					}
					return map[string]any{"principal": v.ID, "balance": v.Balance}, nil
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "events", Title: "Events since",
				Description: "The audit events you are a party to (as caller, recipient, payer, payee or holder), after sequence number since, oldest first. Pass the answer's next as since to continue; more says whether more are waiting now.",
				Annotations: readOnly}, all(bounds, setEnum("kind", kinds...)),
				func(ctx context.Context, c *client.Client, in eventsIn) (any, error) {
					r, err := c.Events(ctx, client.EventQuery{After: in.Since, Limit: in.Limit, Kind: in.Kind, Target: in.Target})
					if err != nil {
						return nil, err
					}
					return map[string]any{"events": r.Events, "next": r.Next, "more": r.NextCursor != ""}, nil
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "list_artifacts", Title: "List artifacts",
				Description: "A page of the artifacts you may read (ids and types, in id order), optionally under a prefix. Each is judged by its own contract as a read by you, charged to your cpu_rate; no scrip moves and nothing is recorded. A short or empty page with next_cursor means keep going. Each is also a resource, kernelhost://artifact/{id}.",
				Annotations: readOnly}, bounds,
				func(ctx context.Context, c *client.Client, in listIn) (any, error) {
					return c.ArtifactsPage(ctx, in.Prefix, in.Cursor, in.Limit)
				})
		},
		func() error {
			return addTool(s, &gomcp.Tool{Name: "llm_chat", Title: "Ask an LLM through the kernel's gateway",
				Description: "Send a chat completion to the server's metered LLM gateway as your principal. Before anything is sent it reserves your llm_rate (the prompt's bound plus max_tokens) and llm_budget (their price); a call that does not fit fails with QUOTA_EXCEEDED. You are charged what the provider reports. A sponsor pays instead only under its grant_llm_consent for you. Answers the reply's text, the tokens and micro-dollars charged, and the llm_call event.",
				Annotations: &gomcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)}}, nil,
				func(ctx context.Context, c *client.Client, in llmChatIn) (any, error) {
					body, err := json.Marshal(struct {
						Model     string       `json:"model"`
						Messages  []llmMessage `json:"messages"`
						MaxTokens *int64       `json:"max_tokens,omitempty"`
					}{in.Model, in.Messages, in.MaxTokens})
					if err != nil {
						return nil, err
					}
					a, err := c.LLMChat(ctx, body, in.Sponsor)
					if err != nil {
						return nil, err
					}
					out := llmChatOut{OK: true, InputTokens: a.InputTokens, OutputTokens: a.OutputTokens, Cost: a.Cost, Event: a.Event}
					var r struct {
						Choices []struct {
							Message struct {
								Content string `json:"content"`
							} `json:"message"`
							FinishReason string `json:"finish_reason"`
						} `json:"choices"`
					}
					if json.Unmarshal(a.Response, &r) == nil && len(r.Choices) > 0 {
						out.Text, out.FinishReason = r.Choices[0].Message.Content, r.Choices[0].FinishReason
					}
					return out, nil
				})
		},
	}
	for _, add := range adds {
		if err := add(); err != nil {
			return err
		}
	}
	return nil
}
