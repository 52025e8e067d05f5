package guest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
)

// invokeRun copies req into the handler's buffer as a host would, invokes it
// and decodes the result.
func invokeRun(t *testing.T, h *handler, req []byte) abi.InvokeResult {
	t.Helper()
	copy(h.alloc(uint32(len(req))), req)
	b, ok := h.region(0, uint64(len(req)))
	require.True(t, ok)
	r, err := abi.DecodeInvokeResult(h.invokeReq(b, ok))
	require.NoError(t, err)
	return r
}

func TestHandlerInvoke(t *testing.T) {
	valid := encodeReq(t, abi.Request{Action: abi.ActionInvoke, Caller: "alice", TargetID: "tool", Method: "echo", Args: []byte(`{"x":1}`)})
	echo := func(req *abi.RequestView) ([]byte, error) {
		return []byte(string(req.Caller()) + " " + string(req.Method()) + " " + string(req.Args())), nil
	}
	tests := []struct {
		name   string
		invoke Invoker
		req    []byte
		want   abi.InvokeResult
	}{
		{"output", echo, valid, abi.InvokeResult{OK: true, Output: []byte(`alice echo {"x":1}`)}},
		{"empty output", func(*abi.RequestView) ([]byte, error) { return nil, nil }, valid, abi.InvokeResult{OK: true}},
		{"error", func(*abi.RequestView) ([]byte, error) { return []byte("ignored"), errors.New("boom") }, valid, abi.InvokeResult{Output: []byte("boom")}},
		{"kernel error", func(*abi.RequestView) ([]byte, error) {
			return nil, &Error{Code: "QUOTA_EXCEEDED", Message: "too much"}
		}, valid, abi.InvokeResult{Output: []byte("QUOTA_EXCEEDED: too much")}},
		{"no invoker", nil, valid, abi.InvokeResult{Output: []byte(ErrMsgNoInvoker)}},
		{"malformed", echo, valid[:len(valid)-1], abi.InvokeResult{Output: []byte(ReasonMalformed)}},
		{"empty request", echo, nil, abi.InvokeResult{Output: []byte(ReasonMalformed)}},
		{"output too large", func(*abi.RequestView) ([]byte, error) {
			return make([]byte, abi.MaxOutputLen+1), nil
		}, valid, abi.InvokeResult{Output: []byte(ErrMsgOutputTooLarge)}},
		{"output at the limit", func(*abi.RequestView) ([]byte, error) {
			return make([]byte, abi.MaxOutputLen), nil
		}, valid, abi.InvokeResult{OK: true, Output: make([]byte, abi.MaxOutputLen)}},
		{"long error truncated", func(*abi.RequestView) ([]byte, error) {
			return nil, errors.New(strings.Repeat("e", abi.MaxOutputLen+5))
		}, valid, abi.InvokeResult{Output: []byte(strings.Repeat("e", abi.MaxOutputLen))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler()
			h.invoke = tc.invoke
			require.Equal(t, tc.want, invokeRun(t, h, tc.req))
		})
	}
	t.Run("outside the region", func(t *testing.T) {
		r, err := abi.DecodeInvokeResult(newHandler().invokeReq(nil, false))
		require.NoError(t, err)
		require.Equal(t, abi.InvokeResult{Output: []byte(ReasonMalformed)}, r)
	})
}

// TestHandlerBoth: one module may be a contract and an executable; the two
// exports share the request buffer and keep separate output buffers.
func TestHandlerBoth(t *testing.T) {
	h := newHandler()
	h.decide = freeware
	h.invoke = func(*abi.RequestView) ([]byte, error) { return []byte("ran"), nil }
	d := run(t, h, encodeReq(t, abi.Request{Action: abi.ActionRead, Caller: "bob"}))
	require.Equal(t, abi.Decision{Allowed: true}, d)
	r := invokeRun(t, h, encodeReq(t, abi.Request{Action: abi.ActionInvoke, Caller: "bob"}))
	require.Equal(t, abi.InvokeResult{OK: true, Output: []byte("ran")}, r)
}

func TestRegisterInvoke(t *testing.T) {
	old := std.invoke
	t.Cleanup(func() { std.invoke = old })
	RegisterInvoke(func(*abi.RequestView) ([]byte, error) { return nil, nil })
	require.NotNil(t, std.invoke)
	RegisterInvoke(nil)
	require.Nil(t, std.invoke)
}

// fakeKernel serves kernelFuncs the way module "kernel" does: the latest
// response is kept for result.
type fakeKernel struct {
	respond  func(req []byte) []byte // nil: not invoking (-1)
	last     []byte
	requests []string
	logs     []string
	results  int
}

func (f *fakeKernel) call(req, out []byte) int32 {
	if f.respond == nil {
		return -1
	}
	f.requests = append(f.requests, string(req))
	f.last = f.respond(req)
	copy(out, f.last)
	return int32(len(f.last))
}

func (f *fakeKernel) result(out []byte) int32 {
	if f.respond == nil {
		return -1
	}
	f.results++
	copy(out, f.last)
	return int32(len(f.last))
}

func (f *fakeKernel) log(msg []byte) { f.logs = append(f.logs, string(msg)) }

func fixed(resp string) func([]byte) []byte {
	return func([]byte) []byte { return []byte(resp) }
}

func TestCall(t *testing.T) {
	long := `{"ok":true,"content":"` + strings.Repeat("QUFB", firstResponseCap) + `"}`
	tests := []struct {
		name    string
		k       kernelFuncs
		want    string
		results int
		err     error
	}{
		{"short", &fakeKernel{respond: fixed(`{"ok":true}`)}, `{"ok":true}`, 0, nil},
		{"empty", &fakeKernel{respond: fixed(``)}, ``, 0, nil},
		{"exactly the first buffer", &fakeKernel{respond: fixed(strings.Repeat("x", firstResponseCap))}, strings.Repeat("x", firstResponseCap), 0, nil},
		{"too small buffer: fetched with result", &fakeKernel{respond: fixed(long)}, long, 1, nil},
		{"not invoking", &fakeKernel{}, "", 0, ErrNotInvoking},
		{"no kernel", nil, "", 0, ErrNoKernel},
		{"too large", sizeKernel(MaxResponseLen + 1), "", 0, ErrResponseTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(tc.k, []byte(`{"query":"balance","principal":"a"}`))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			require.Equal(t, tc.results, tc.k.(*fakeKernel).results)
			require.Equal(t, []string{`{"query":"balance","principal":"a"}`}, tc.k.(*fakeKernel).requests)
		})
	}
	t.Run("length changes between call and result", func(t *testing.T) {
		_, err := call(growingKernel{}, nil)
		require.ErrorContains(t, err, "changed length")
	})
}

// sizeKernel claims a response of n bytes.
type sizeKernel int32

func (s sizeKernel) call(_, _ []byte) int32 { return int32(s) }
func (s sizeKernel) result([]byte) int32    { return int32(s) }
func (sizeKernel) log([]byte)               {}

// growingKernel's response grows each time it is asked.
type growingKernel struct{}

func (growingKernel) call(_, out []byte) int32 { return int32(len(out) + 1) }
func (growingKernel) result(out []byte) int32  { return int32(len(out) + 1) }
func (growingKernel) log([]byte)               {}

func TestDo(t *testing.T) {
	tests := []struct {
		name    string
		as      string
		action  any
		resp    string
		wantReq string
		want    Result
		err     string
	}{
		{
			name:    "ok",
			action:  map[string]any{"kind": "transfer", "to": "bob", "amount": 5},
			resp:    `{"ok":true,"retriable":false,"charges":[{"payer":"alice","payee":"bob","amount":5,"reason":"transfer"}],"event":9}`,
			wantReq: `{"action":{"amount":5,"kind":"transfer","to":"bob"}}`,
			want:    Result{OK: true, Charges: []Charge{{Payer: "alice", Payee: "bob", Amount: 5, Reason: "transfer"}}, Event: 9},
		},
		{
			name:    "as a principal with standing",
			as:      "escrow",
			action:  json.RawMessage(`{"kind":"read","target":"x"}`),
			resp:    `{"ok":true,"retriable":false,"content":"aGk=","artifact":{"id":"x","type":"data","created_by":"a","access_contract":"c","size":2,"revision":1,"sha256":"00"}}`,
			wantReq: `{"action":{"kind":"read","target":"x"},"as":"escrow"}`,
			want: Result{OK: true, Content: []byte("hi"),
				Artifact: &Artifact{ID: "x", Type: "data", CreatedBy: "a", Contract: "c", Size: 2, Revision: 1, Hash: "00"}},
		},
		{
			// The kernel spells the decision as the HTTP API does (SPEC
			// section 8); Decision's untagged fields take those names.
			name:    "decision in the kernel's spelling",
			action:  map[string]any{"kind": "read", "target": "priced"},
			resp:    `{"ok":true,"retriable":false,"decision":{"allowed":true,"cost":10,"payer":"sponsor","payee":"alice","reason":"paid read"},"event":4}`,
			wantReq: `{"action":{"kind":"read","target":"priced"}}`,
			want:    Result{OK: true, Decision: &Decision{Allowed: true, Cost: 10, Payer: "sponsor", Payee: "alice", Reason: "paid read"}, Event: 4},
		},
		{
			name:    "kernel failure",
			action:  map[string]any{"kind": "transfer_quota", "to": "bob", "resource": "llm_rate", "amount": 5000},
			resp:    `{"ok":false,"error_code":"QUOTA_EXCEEDED","error_category":"resource","retriable":true,"message":"no","resource":"llm_rate","available":3}`,
			wantReq: `{"action":{"amount":5000,"kind":"transfer_quota","resource":"llm_rate","to":"bob"}}`,
			want:    Result{ErrorCode: "QUOTA_EXCEEDED", Category: "resource", Retriable: true, Message: "no", Resource: "llm_rate", Available: 3},
			err:     "QUOTA_EXCEEDED: no",
		},
		{
			name:   "bad response",
			action: map[string]any{"kind": "read"},
			resp:   `not json`,
			err:    "decode kernel result",
		},
		{
			name:   "unencodable action",
			action: func() {},
			err:    "encode action",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKernel{respond: fixed(tc.resp)}
			got, err := do(k, tc.action, tc.as)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			if tc.wantReq != "" {
				require.Equal(t, []string{tc.wantReq}, k.requests)
				tc.want.Raw = json.RawMessage(tc.resp)
				require.Equal(t, tc.want, got)
			}
			var kerr *Error
			if errors.As(err, &kerr) {
				require.Equal(t, tc.want.ErrorCode, kerr.Code)
				require.Equal(t, tc.want.Retriable, kerr.Retriable)
			}
		})
	}
	t.Run("no kernel", func(t *testing.T) {
		_, err := Do(map[string]any{"kind": "read"})
		require.ErrorIs(t, err, ErrNoKernel)
		_, err = DoAs("escrow", map[string]any{"kind": "read"})
		require.ErrorIs(t, err, ErrNoKernel)
	})
}

func TestQueries(t *testing.T) {
	quotaResp := `{"ok":true,"quotas":[{"resource":"llm_rate","quota":1000,"used":300,"available":700,"retry_after_ns":5}]}`
	tests := []struct {
		name     string
		run      func(k kernelFuncs) (any, error)
		resp     string
		wantReq  string
		want     any
		err      string
		wantCode string
	}{
		{
			name:    "balance",
			run:     func(k kernelFuncs) (any, error) { return balance(k, "alice") },
			resp:    `{"ok":true,"balance":42}`,
			wantReq: `{"query":"balance","principal":"alice"}`,
			want:    uint64(42),
		},
		{
			name:    "zero balance",
			run:     func(k kernelFuncs) (any, error) { return balance(k, "alice") },
			resp:    `{"ok":true,"balance":0}`,
			wantReq: `{"query":"balance","principal":"alice"}`,
			want:    uint64(0),
		},
		{
			name: "balance missing",
			run:  func(k kernelFuncs) (any, error) { return balance(k, "alice") },
			resp: `{"ok":true}`,
			err:  "no balance",
		},
		{
			name:     "unknown principal",
			run:      func(k kernelFuncs) (any, error) { return balance(k, "nobody") },
			resp:     `{"ok":false,"error_code":"NOT_FOUND","message":"principal \"nobody\" does not exist"}`,
			err:      "NOT_FOUND",
			wantCode: "NOT_FOUND",
		},
		{
			name:    "quota",
			run:     func(k kernelFuncs) (any, error) { return quota(k, "alice", "llm_rate") },
			resp:    quotaResp,
			wantReq: `{"query":"quota","principal":"alice","resource":"llm_rate"}`,
			want:    QuotaStatus{Resource: "llm_rate", Quota: 1000, Used: 300, Available: 700, RetryAfterNanos: 5},
		},
		{
			name:     "quota needs a resource",
			run:      func(k kernelFuncs) (any, error) { return quota(k, "alice", "") },
			resp:     quotaResp,
			err:      "needs a resource",
			wantCode: "INVALID_ARGUMENT",
		},
		{
			name: "quota answers two",
			run:  func(k kernelFuncs) (any, error) { return quota(k, "alice", "llm_rate") },
			resp: `{"ok":true,"quotas":[{"resource":"a"},{"resource":"b"}]}`,
			err:  "2 quotas",
		},
		{
			name: "garbage",
			run:  func(k kernelFuncs) (any, error) { return quota(k, "alice", "llm_rate") },
			resp: `[`,
			err:  "decode kernel answer",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKernel{respond: fixed(tc.resp)}
			got, err := tc.run(k)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				var kerr *Error
				require.Equal(t, tc.wantCode != "", errors.As(err, &kerr))
				if kerr != nil {
					require.Equal(t, tc.wantCode, kerr.Code)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, []string{tc.wantReq}, k.requests)
		})
	}
	t.Run("no kernel", func(t *testing.T) {
		_, err := Balance("a")
		require.ErrorIs(t, err, ErrNoKernel)
		_, err = Quota("a", "disk")
		require.ErrorIs(t, err, ErrNoKernel)
	})
}

func TestLog(t *testing.T) {
	Log("nobody listens") // no kernel: does nothing
	f := &fakeKernel{}
	old := kernelHost
	kernelHost = f
	t.Cleanup(func() { kernelHost = old })
	Log("hello")
	require.Equal(t, []string{"hello"}, f.logs)
	_, err := Call([]byte(`{}`))
	require.ErrorIs(t, err, ErrNotInvoking)
}

func TestError(t *testing.T) {
	require.Equal(t, "NOT_FOUND", (&Error{Code: "NOT_FOUND"}).Error())
	require.Equal(t, "NOT_FOUND: gone", (&Error{Code: "NOT_FOUND", Message: "gone"}).Error())
	ok := Result{OK: true}
	require.NoError(t, ok.Err())
}

// TestLLMChat: LLMChat sends {"llm": request} and decodes the answer; a
// refusal is an *Error with the kernel's code, and the answer comes too.
func TestLLMChat(t *testing.T) {
	k := &fakeKernel{respond: fixed(`{"ok":true,"response":{"choices":[]},"input_tokens":3,"output_tokens":4,"cost_microdollars":11,"event":9}`)}
	a, err := llmChat(k, map[string]any{"model": "m"})
	require.NoError(t, err)
	require.Equal(t, []string{`{"llm":{"model":"m"}}`}, k.requests)
	require.JSONEq(t, `{"choices":[]}`, string(a.Response))
	require.Equal(t, LLMAnswer{OK: true, Response: a.Response, InputTokens: 3, OutputTokens: 4, Cost: 11, Event: 9}, a)

	k = &fakeKernel{respond: fixed(`{"ok":false,"error_code":"PERMISSION_DENIED","message":"set max_llm_cost"}`)}
	a, err = llmChat(k, map[string]any{"model": "m"})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "PERMISSION_DENIED", e.Code)
	require.Equal(t, "set max_llm_cost", a.Message)

	_, err = llmChat(&fakeKernel{}, map[string]any{"model": "m"})
	require.ErrorIs(t, err, ErrNotInvoking)
	_, err = llmChat(nil, map[string]any{"model": "m"})
	require.ErrorIs(t, err, ErrNoKernel)
	_, err = llmChat(&fakeKernel{respond: fixed(`{"ok":true}`)}, func() {})
	require.ErrorContains(t, err, "encode LLM request")
}
