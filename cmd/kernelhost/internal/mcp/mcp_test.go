package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/mcp"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

var ctx = context.Background()

// env is a real kernel (kerneltest's world: the kernel on an in-memory
// store, contracts as Go functions) behind a real HTTP server, with
// principals alice (100 scrip), bob (100) and mallory (100) and their
// tokens. bob/doc is governed by "priced", which charges 7 for a read,
// paid to bob; alice/diary is alice's, under "private"; "echo" is an
// executable anyone may invoke.
type env struct {
	w      *kerneltest.World
	srv    *httptest.Server
	tokens map[string]string
	admin  string
}

const readPrice = 7

func newEnv(t *testing.T) *env {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	for _, p := range []string{"alice", "bob", "mallory"} {
		w.Principal(t, p, 100)
	}
	a, admin, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	e := &env{w: w, tokens: map[string]string{}, admin: admin}
	for _, p := range []string{"alice", "bob", "mallory"} {
		tok, err := a.Issue(p)
		require.NoError(t, err)
		e.tokens[p] = tok
	}
	s, err := server.New(server.Config{Kernel: w.K, Auth: a})
	require.NoError(t, err)
	e.srv = httptest.NewServer(s)
	t.Cleanup(e.srv.Close)

	w.Deploy(t, "bob", "priced", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: readPrice, Payee: kerneltest.Controller(req), Reason: "priced: paid read"}, nil
		}
		return kerneltest.Private(req)
	})
	e.do(t, kernel.Action{Kind: kernel.KindWrite, Caller: "bob", Target: "bob/doc", Type: "text", Contract: "priced", Content: []byte("the report")})
	e.do(t, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/diary", Type: "text", Contract: "private", Content: []byte("alice's secret")})
	w.DeployExecutable(t, "bob", "echo", "freeware", func(req *abi.Request, _ abi.HostCalls) (abi.InvokeResult, error) {
		return abi.InvokeResult{OK: true, Output: append([]byte(req.Method+":"), req.Args...)}, nil
	})
	return e
}

func (e *env) do(t *testing.T, a kernel.Action) kernel.Result {
	t.Helper()
	r := e.w.Do(a)
	require.True(t, r.OK, "%s %s: %s", a.Kind, a.Target, r.Message)
	return r
}

func (e *env) balance(t *testing.T, p string) uint64 {
	t.Helper()
	v, err := e.w.K.Principal(ctx, p)
	require.NoError(t, err)
	return v.Balance
}

// connect returns an MCP client session, over the SDK's in-memory
// transport, to an MCP server acting with p's token.
func (e *env) connect(t *testing.T, p string, mutate func(*mcp.Config)) *gomcp.ClientSession {
	t.Helper()
	c, err := client.New(e.srv.URL, e.tokens[p], nil)
	require.NoError(t, err)
	cfg := mcp.Config{Client: c, MaxCostCeiling: -1}
	if mutate != nil {
		mutate(&cfg)
	}
	return connectServer(t, cfg)
}

func connectServer(t *testing.T, cfg mcp.Config) *gomcp.ClientSession {
	t.Helper()
	s, err := mcp.New(cfg)
	require.NoError(t, err)
	st, ct := gomcp.NewInMemoryTransports()
	ss, err := s.MCP().Connect(ctx, st, nil)
	require.NoError(t, err)
	cs, err := gomcp.NewClient(&gomcp.Implementation{Name: "test-agent", Version: "v0"}, nil).Connect(ctx, ct, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close(); _ = ss.Wait() })
	return cs
}

// call calls tool name with args and returns the JSON body of its result,
// decoded, and whether it is an error.
func call(t *testing.T, cs *gomcp.ClientSession, name string, args map[string]any) (map[string]any, bool) {
	t.Helper()
	res, err := cs.CallTool(ctx, &gomcp.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err, "a tool failure is a result, never a protocol error")
	require.Len(t, res.Content, 1)
	text := res.Content[0].(*gomcp.TextContent).Text
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(text), &body), "the result is JSON: %s", text)
	sc, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	require.JSONEq(t, text, string(sc), "structured content and text say the same")
	return body, res.IsError
}

// ok calls a tool that must succeed.
func ok(t *testing.T, cs *gomcp.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	body, isErr := call(t, cs, name, args)
	require.False(t, isErr, "%s: %v", name, body)
	return body
}

// fails calls a tool that must fail with code, and checks the error body.
func fails(t *testing.T, cs *gomcp.ClientSession, name string, args map[string]any, code abi.Code) map[string]any {
	t.Helper()
	body, isErr := call(t, cs, name, args)
	require.True(t, isErr, "%s must fail with %s: %v", name, code, body)
	require.Equal(t, false, body["ok"])
	require.Equal(t, code.String(), body["error_code"], "%v", body)
	require.Equal(t, string(code.Category()), body["category"])
	require.Contains(t, body, "retriable")
	require.Contains(t, body, "retry_after_ns")
	require.NotEmpty(t, body["message"])
	require.NotEmpty(t, body["hint"])
	return body
}

// allTools is every tool, in the order the server adds them.
var allTools = []string{"whoami", "read", "write", "edit", "delete", "invoke", "transfer", "transfer_quota", "rights", "explain", "quota", "balance", "events", "list_artifacts", "llm_chat"}

// judged are the tools that take max_cost.
var judged = []string{"read", "write", "edit", "delete", "invoke", "explain"}

// TestMCPToolSchemas: every tool has a description and an object input
// schema that refuses undeclared properties and names no caller; the tools
// whose action a contract prices take max_cost, the acting ones
// request_id.
func TestMCPToolSchemas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.connect(t, "alice", nil)
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
		require.NotEmpty(t, tool.Description, tool.Name)
		b, err := json.Marshal(tool.InputSchema)
		require.NoError(t, err)
		var schema struct {
			Type                 string                     `json:"type"`
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		}
		require.NoError(t, json.Unmarshal(b, &schema), "%s", b)
		require.Equal(t, "object", schema.Type, tool.Name)
		require.NotNil(t, schema.AdditionalProperties, "%s: %s", tool.Name, b)
		require.False(t, *schema.AdditionalProperties, "%s refuses undeclared arguments", tool.Name)
		for prop := range schema.Properties {
			require.NotContains(t, []string{"caller", "as", "caller_id", "payer", "from", "created_by", "token"}, prop, "%s names who acts", tool.Name)
		}
		_, hasMax := schema.Properties["max_cost"]
		require.Equal(t, slices.Contains(judged, tool.Name), hasMax, "%s and max_cost", tool.Name)
		if slices.Contains([]string{"read", "write", "edit", "delete", "invoke", "transfer", "transfer_quota"}, tool.Name) {
			require.Contains(t, schema.Properties, "request_id", tool.Name)
		}
	}
	slices.Sort(names)
	want := slices.Clone(allTools)
	slices.Sort(want)
	require.Equal(t, want, names)
}

// TestMCPTools covers each tool once, as alice, over the SDK's client.
func TestMCPTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.do(t, kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "alice/r1", Resource: string(kernel.LLMRate), Amount: 10})
	cs := e.connect(t, "alice", nil)

	me := ok(t, cs, "whoami", nil)
	require.Equal(t, "alice", me["principal"])
	require.EqualValues(t, 100, me["balance"])

	w := ok(t, cs, "write", map[string]any{"target": "notes/pub", "type": "text", "text": "hello", "metadata": map[string]any{"topic": "greetings"}})
	require.Equal(t, true, w["ok"])
	require.Equal(t, "write", w["kind"])
	require.True(t, strings.HasPrefix(w["request_id"].(string), "mcp-"), "a request_id is made: %v", w)
	require.EqualValues(t, 0, w["max_cost"], "the default max_cost is 0")
	bin := ok(t, cs, "write", map[string]any{"target": "notes/bin", "type": "data", "content_base64": "AP8="})
	require.NotZero(t, bin["revision"])

	r := ok(t, cs, "read", map[string]any{"target": "notes/pub"})
	require.Equal(t, "hello", r["text"])
	require.Equal(t, "alice", r["artifact"].(map[string]any)["created_by"])
	r = ok(t, cs, "read", map[string]any{"target": "notes/bin"})
	require.Equal(t, "AP8=", r["content_base64"])
	require.NotContains(t, r, "text")

	ok(t, cs, "edit", map[string]any{"target": "notes/pub", "text": "hello again", "metadata": map[string]any{"mood": "glad"}, "unset": []string{"topic"}})
	r = ok(t, cs, "read", map[string]any{"target": "notes/pub"})
	require.Equal(t, "hello again", r["text"])
	require.Equal(t, map[string]any{"mood": "glad"}, r["artifact"].(map[string]any)["metadata"])

	ex := ok(t, cs, "explain", map[string]any{"kind": "read", "target": "bob/doc"})
	require.EqualValues(t, readPrice, ex["decision"].(map[string]any)["cost"])
	require.Equal(t, "alice", ex["caller"])
	require.Equal(t, abi.CostLimitExceeded.String(), ex["outcome"].(map[string]any)["error_code"], "at the default max_cost 0 the price does not fit")
	paid := ok(t, cs, "read", map[string]any{"target": "bob/doc", "max_cost": readPrice})
	require.Equal(t, "the report", paid["text"])
	require.Equal(t, []any{map[string]any{"payer": "alice", "payee": "bob", "amount": float64(readPrice), "reason": "contract"}}, paid["charges"])
	require.Equal(t, uint64(100-readPrice), e.balance(t, "alice"))

	inv := ok(t, cs, "invoke", map[string]any{"target": "echo", "method": "hi", "args_text": "there"})
	require.Equal(t, "hi:there", inv["output_text"])

	ok(t, cs, "transfer", map[string]any{"to": "bob", "amount": 5})
	require.Equal(t, uint64(100+readPrice+5), e.balance(t, "bob"))
	bal := ok(t, cs, "balance", map[string]any{"principal": "bob"})
	require.Equal(t, "bob", bal["principal"])
	require.EqualValues(t, 100+readPrice+5, bal["balance"])
	bal = ok(t, cs, "balance", nil)
	require.Equal(t, "alice", bal["principal"])
	require.EqualValues(t, 100-readPrice-5, bal["balance"])

	before, err := e.w.K.Quotas(ctx, "bob")
	require.NoError(t, err)
	ok(t, cs, "transfer_quota", map[string]any{"to": "bob", "resource": "disk", "amount": 1000})
	after, err := e.w.K.Quotas(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, quotaOf(before, kernel.Disk)+1000, quotaOf(after, kernel.Disk))
	q := ok(t, cs, "quota", nil)
	require.Equal(t, "alice", q["principal"])
	require.NotEmpty(t, q["quotas"])
	q = ok(t, cs, "quota", map[string]any{"principal": "bob"})
	require.Equal(t, "bob", q["principal"])

	rs := ok(t, cs, "rights", nil)
	require.Len(t, rs["rights"], 1)
	require.Equal(t, "alice/r1", rs["rights"].([]any)[0].(map[string]any)["id"])

	ev := ok(t, cs, "events", map[string]any{"since": 0, "kind": "transfer"})
	require.Len(t, ev["events"], 1)
	tr := ev["events"].([]any)[0].(map[string]any)
	require.Equal(t, "alice", tr["caller"])
	require.Equal(t, "bob", tr["to"])
	require.Equal(t, false, ev["more"])
	next := ev["next"].(float64)
	ev = ok(t, cs, "events", map[string]any{"since": next})
	require.Empty(t, ev["events"], "nothing after next")

	ls := ok(t, cs, "list_artifacts", map[string]any{"prefix": "notes/"})
	require.Equal(t, []any{map[string]any{"id": "notes/bin", "type": "data", "access_contract": "freeware", "revision": float64(1)},
		map[string]any{"id": "notes/pub", "type": "text", "access_contract": "freeware", "revision": float64(2)}}, ls["artifacts"])

	ok(t, cs, "delete", map[string]any{"target": "notes/bin"})
	fails(t, cs, "read", map[string]any{"target": "notes/bin"}, abi.NotFound)

	// Resources: the artifacts alice may read, each read through the read
	// action.
	var uris []string
	for res, err := range cs.Resources(ctx, nil) {
		require.NoError(t, err)
		uris = append(uris, res.URI)
	}
	require.Contains(t, uris, "kernelhost://artifact/notes/pub")
	require.Contains(t, uris, "kernelhost://artifact/alice/diary")
	rr, err := cs.ReadResource(ctx, &gomcp.ReadResourceParams{URI: "kernelhost://artifact/alice/diary"})
	require.NoError(t, err)
	require.Equal(t, "alice's secret", rr.Contents[0].Text)
	require.Equal(t, "text/plain", rr.Contents[0].MIMEType)
	_, err = cs.ReadResource(ctx, &gomcp.ReadResourceParams{URI: "kernelhost://artifact/bob/doc"})
	require.ErrorContains(t, err, abi.CostLimitExceeded.String(), "a resource read pays at most the default max_cost")
	_, err = cs.ReadResource(ctx, &gomcp.ReadResourceParams{URI: "kernelhost://artifact/nothing"})
	require.ErrorContains(t, err, abi.NotFound.String())
	require.Equal(t, uint64(100-readPrice-5), e.balance(t, "alice"), "nothing more was charged")
}

func quotaOf(qs []kernel.QuotaStatus, r kernel.Resource) int64 {
	for _, q := range qs {
		if q.Resource == r {
			return q.Quota
		}
	}
	return -1
}

// TestMCPRequestID: a call sent again with its request_id is not applied
// twice; a call without one gets one of its own each time.
func TestMCPRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.connect(t, "alice", nil)
	args := map[string]any{"to": "bob", "amount": 10, "request_id": "pay-bob-1"}
	first := ok(t, cs, "transfer", args)
	require.Equal(t, "pay-bob-1", first["request_id"])
	again := ok(t, cs, "transfer", args)
	require.Equal(t, true, again["replayed"], "%v", again)
	require.Equal(t, first["event"], again["event"])
	require.Equal(t, uint64(90), e.balance(t, "alice"), "moved once")

	a := ok(t, cs, "transfer", map[string]any{"to": "bob", "amount": 1})
	b := ok(t, cs, "transfer", map[string]any{"to": "bob", "amount": 1})
	require.NotEqual(t, a["request_id"], b["request_id"])
	require.Equal(t, uint64(88), e.balance(t, "alice"), "two calls without request_id are two transfers")
}

// TestMCPErrors: failures are results with a body that says what to do.
func TestMCPErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.connect(t, "alice", nil)

	// The price above max_cost: nothing charged, the hint says to raise it.
	b := fails(t, cs, "read", map[string]any{"target": "bob/doc"}, abi.CostLimitExceeded)
	require.Equal(t, false, b["retriable"])
	require.Contains(t, b["hint"], "max_cost")
	require.Contains(t, b["message"], "7")
	require.Equal(t, uint64(100), e.balance(t, "alice"))
	b = fails(t, cs, "read", map[string]any{"target": "bob/doc", "max_cost": readPrice - 1}, abi.CostLimitExceeded)
	require.Contains(t, b["request_id"], "mcp-")

	// The operator's ceiling: refused before anything is sent.
	capped := e.connect(t, "alice", func(c *mcp.Config) { c.MaxCostCeiling = 5 })
	b = fails(t, capped, "read", map[string]any{"target": "bob/doc", "max_cost": readPrice}, abi.CostLimitExceeded)
	require.Contains(t, b["hint"], "5 or less")
	require.Equal(t, uint64(100), e.balance(t, "alice"))

	// The contract refuses: its reason is in the body.
	b = fails(t, e.connect(t, "bob", nil), "read", map[string]any{"target": "alice/diary"}, abi.PermissionDenied)
	require.Contains(t, b["hint"], "private: only the controller")
	require.NotContains(t, b["message"], "alice's secret")

	fails(t, cs, "transfer", map[string]any{"to": "bob", "amount": 1000}, abi.InsufficientFunds)
	fails(t, cs, "read", map[string]any{"target": "no/such"}, abi.NotFound)
	fails(t, cs, "write", map[string]any{"target": "bob/doc", "type": "text", "text": "x", "max_cost": readPrice}, abi.PermissionDenied)
	fails(t, cs, "invoke", map[string]any{"target": "bob/doc"}, abi.InvalidArgument)

	// Arguments: undeclared, missing, mistyped, contradictory, out of range.
	for name, args := range map[string]map[string]any{
		"undeclared":   {"target": "notes/x", "colour": "red"},
		"missing":      {"type": "text", "text": "x"},
		"mistyped":     {"target": 5, "text": "x"},
		"both":         {"target": "notes/x", "type": "text", "text": "x", "content_base64": "eA=="},
		"bad base64":   {"target": "notes/x", "type": "text", "content_base64": "!!"},
		"negative max": {"target": "notes/x", "type": "text", "text": "x", "max_cost": -1},
		"bad id":       {"target": "a/../b", "type": "text", "text": "x"},
	} {
		b := fails(t, cs, "write", args, abi.InvalidArgument)
		require.Contains(t, b["hint"], "arguments", name)
	}
	fails(t, cs, "transfer_quota", map[string]any{"to": "bob", "resource": "gold", "amount": 1}, abi.InvalidArgument)
	fails(t, cs, "explain", map[string]any{"kind": "transfer", "target": "x"}, abi.InvalidArgument)

	// Quota used up: retriable, with the wait.
	require.NoError(t, e.w.K.SetQuota(ctx, "bob", kernel.CPURate, 1))
	bob := e.connect(t, "bob", nil) // whose deploys used more than 1 µs in this window
	b = fails(t, bob, "read", map[string]any{"target": "bob/doc"}, abi.QuotaExceeded)
	require.Equal(t, true, b["retriable"], "%v", b)
	require.Positive(t, b["retry_after_ns"])
	require.Equal(t, "cpu_rate", b["resource"])
	require.Contains(t, b["hint"], "wait")

	// A token the server does not know, a server that is gone.
	c, err := client.New(e.srv.URL, "kh_"+strings.Repeat("0", 64), nil)
	require.NoError(t, err)
	b = fails(t, connectServer(t, mcp.Config{Client: c}), "whoami", nil, abi.Unauthenticated)
	require.Equal(t, false, b["retriable"])
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	c, err = client.New(gone.URL, e.tokens["alice"], nil)
	require.NoError(t, err)
	b = fails(t, connectServer(t, mcp.Config{Client: c}), "transfer", map[string]any{"to": "bob", "amount": 1, "request_id": "r-1"}, abi.Unavailable)
	require.Equal(t, true, b["retriable"])
	require.Equal(t, "r-1", b["request_id"])
	require.Contains(t, b["hint"], `same request_id "r-1"`)
}

// TestMCPToolsActAsTokenPrincipal: mallory's token cannot move alice's
// scrip, read alice's private artifact, or name another caller through any
// argument of any tool.
func TestMCPToolsActAsTokenPrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.connect(t, "mallory", nil)

	// A tool whose input schema names who acts or pays is refused, at any
	// depth and in any case, and so is one that takes undeclared arguments.
	type asIn struct {
		To string `json:"to"`
		As string `json:"as,omitempty"`
	}
	type nestedIn struct {
		Opts struct {
			Caller string `json:"Caller"`
		} `json:"opts"`
	}
	type payerIn struct {
		Payer string `json:"payer"`
	}
	for name, schema := range map[string]*jsonschema.Schema{
		"as":     mustSchema[asIn](t),
		"nested": mustSchema[nestedIn](t),
		"payer":  mustSchema[payerIn](t),
		"open":   mustSchema[map[string]string](t),
	} {
		require.Error(t, mcp.CheckInputSchema(name, schema), name)
	}
	require.NoError(t, mcp.CheckInputSchema("to", mustSchema[struct {
		To string `json:"to"`
	}](t)))

	// No argument of any tool names who acts or pays: each is refused, and
	// nothing changes.
	events, err := e.w.K.Events(ctx, 0, 1<<20)
	require.NoError(t, err)
	for _, tool := range allTools {
		for _, arg := range []string{"caller", "as", "Caller", "caller_id", "payer", "from", "created_by"} {
			args := map[string]any{arg: "alice", "to": "mallory", "amount": 50, "target": "alice/diary"}
			b := fails(t, cs, tool, args, abi.InvalidArgument)
			require.Contains(t, b["message"], arg, "%s/%s", tool, arg)
		}
	}
	after, err := e.w.K.Events(ctx, 0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, len(events), len(after), "no refused call reached the kernel")
	require.Equal(t, uint64(100), e.balance(t, "alice"))
	require.Equal(t, uint64(100), e.balance(t, "mallory"))

	// A transfer moves mallory's scrip, never alice's.
	ok(t, cs, "transfer", map[string]any{"to": "bob", "amount": 10})
	require.Equal(t, uint64(100), e.balance(t, "alice"))
	require.Equal(t, uint64(90), e.balance(t, "mallory"))
	ev, err := e.w.K.Events(ctx, 0, 1<<20)
	require.NoError(t, err)
	last := ev[len(ev)-1]
	require.Equal(t, kernel.KindTransfer, last.Kind)
	require.Equal(t, "mallory", last.Caller, "the kernel saw mallory")
	// Naming alice where a principal is asked for only reads public
	// figures; it acts as nobody.
	require.Equal(t, "alice", ok(t, cs, "balance", map[string]any{"principal": "alice"})["principal"])
	require.Equal(t, "mallory", ok(t, cs, "whoami", nil)["principal"])

	// alice's private artifact: refused through the tool, the resource and
	// explain, and not listed.
	b := fails(t, cs, "read", map[string]any{"target": "alice/diary", "max_cost": 100}, abi.PermissionDenied)
	raw, err := json.Marshal(b)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "alice's secret")
	_, err = cs.ReadResource(ctx, &gomcp.ReadResourceParams{URI: "kernelhost://artifact/alice/diary"})
	require.ErrorContains(t, err, abi.PermissionDenied.String())
	require.NotContains(t, err.Error(), "alice's secret")
	ex := ok(t, cs, "explain", map[string]any{"kind": "read", "target": "alice/diary"})
	require.Equal(t, "mallory", ex["caller"])
	require.Equal(t, false, ex["decision"].(map[string]any)["allowed"])
	for res, err := range cs.Resources(ctx, nil) {
		require.NoError(t, err)
		require.NotEqual(t, "kernelhost://artifact/alice/diary", res.URI)
	}
	ls := ok(t, cs, "list_artifacts", map[string]any{"prefix": "alice/"})
	require.Empty(t, ls["artifacts"])
	// Nor can mallory overwrite or delete it, whatever she agrees to pay.
	fails(t, cs, "write", map[string]any{"target": "alice/diary", "text": "pwned", "max_cost": 100}, abi.PermissionDenied)
	fails(t, cs, "delete", map[string]any{"target": "alice/diary", "max_cost": 100}, abi.PermissionDenied)
	fails(t, cs, "edit", map[string]any{"target": "alice/diary", "metadata": map[string]any{"controller": "mallory"}, "max_cost": 100}, abi.PermissionDenied)
	require.Equal(t, "alice's secret", string(e.do(t, kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "alice/diary"}).Content))
	require.Equal(t, uint64(100), e.balance(t, "alice"))

	// alice's rights and events are not mallory's to see.
	e.do(t, kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "alice/r1", Resource: string(kernel.LLMRate), Amount: 10})
	require.Empty(t, ok(t, cs, "rights", nil)["rights"])
	for _, ev := range ok(t, cs, "events", nil)["events"].([]any) {
		m := ev.(map[string]any)
		require.True(t, m["caller"] == "mallory" || m["to"] == "mallory", "mallory sees only her own events: %v", m)
	}
}

// TestMCPStreamableHTTP: over HTTP each request acts with its own bearer
// token, and a request without one is refused.
func TestMCPStreamableHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, err := mcp.New(mcp.Config{Server: e.srv.URL, MaxCostCeiling: -1})
	require.NoError(t, err)
	h, err := s.HTTPHandler()
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	session := func(token string) *gomcp.ClientSession {
		hc := &http.Client{Transport: bearerTransport{token: token}}
		cs, err := gomcp.NewClient(&gomcp.Implementation{Name: "test-agent", Version: "v0"}, nil).
			Connect(ctx, &gomcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	alice, mallory := session(e.tokens["alice"]), session(e.tokens["mallory"])
	require.Equal(t, "alice", ok(t, alice, "whoami", nil)["principal"])
	require.Equal(t, "mallory", ok(t, mallory, "whoami", nil)["principal"])
	ok(t, mallory, "transfer", map[string]any{"to": "bob", "amount": 3})
	require.Equal(t, uint64(97), e.balance(t, "mallory"))
	require.Equal(t, uint64(100), e.balance(t, "alice"))
	fails(t, mallory, "read", map[string]any{"target": "alice/diary"}, abi.PermissionDenied)
	require.Equal(t, "alice's secret", ok(t, alice, "read", map[string]any{"target": "alice/diary"})["text"])

	// No token: 401 before MCP sees anything.
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")

	// A server with a token of its own has no HTTP handler.
	c, err := client.New(e.srv.URL, e.tokens["alice"], nil)
	require.NoError(t, err)
	withToken, err := mcp.New(mcp.Config{Client: c})
	require.NoError(t, err)
	_, err = withToken.HTTPHandler()
	require.Error(t, err)
}

func mustSchema[T any](t *testing.T) *jsonschema.Schema {
	t.Helper()
	s, err := jsonschema.For[T](nil)
	require.NoError(t, err)
	return s
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
