package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

var ctx = context.Background()

// env is a server over a kerneltest world with principals alice and bob
// (100 scrip each) and their tokens.
type env struct {
	w                 *kerneltest.World
	srv               *httptest.Server
	s                 *server.Server
	admin, alice, bob string
	auth              *auth.Store
}

func newEnv(t *testing.T, mutate func(*server.Config)) *env {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 100)
	a, admin, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	alice, err := a.Issue("alice")
	require.NoError(t, err)
	bob, err := a.Issue("bob")
	require.NoError(t, err)
	cfg := server.Config{Kernel: w.K, Auth: a}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := server.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{w: w, srv: srv, s: s, admin: admin, alice: alice, bob: bob, auth: a}
}

// call sends a request and decodes the JSON answer into out (when not nil).
func (e *env) call(t *testing.T, method, path, token, body string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "body: %s", b)
	}
	return resp
}

// requireError checks a JSON error answer.
func requireError(t *testing.T, resp *http.Response, e api.Error, status int, code abi.Code) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "message: %s", e.Message)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.False(t, e.OK)
	require.Equal(t, code.String(), e.ErrorCode)
	require.Equal(t, string(code.Category()), e.Category)
	require.Equal(t, code.Retriable(), e.Retriable)
	require.NotEmpty(t, e.Message)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	action := `{"kind":"write","target":"n","type":"text","text":"x"}`
	for _, tc := range []struct {
		name, header string
	}{
		{"missing", ""},
		{"wrong", "Bearer kh_0000"},
		{"not bearer", "Basic " + e.alice},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/actions", strings.NewReader(action))
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := e.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var ae api.Error
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&ae))
			requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		})
	}
	_, err := e.w.K.Principal(ctx, "alice")
	require.NoError(t, err)
	ids, err := e.w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.NotContains(t, ids, "n", "nothing was written")

	// The admin token acts as no principal.
	var ae api.Error
	resp := e.call(t, http.MethodPost, "/v1/actions", e.admin, action, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	// A principal's token is not the admin's.
	resp = e.call(t, http.MethodPost, "/v1/mint", e.alice, `{"id":"alice","amount":5}`, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
}

// TestCallerIsTheToken: alice's token acting on bob's artifact is judged as
// alice, and no body field can make it bob.
func TestCallerIsTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"write","target":"bob/secret","type":"text","text":"mine","contract":"private"}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	require.True(t, r.OK)
	resp = e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"write","target":"bob/pub","type":"text","text":"hello"}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)

	// alice reads bob's private artifact: denied, as alice.
	resp = e.call(t, http.MethodGet, "/v1/artifacts/bob/secret", e.alice, "", &r)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "PERMISSION_DENIED", r.ErrorCode)
	require.Nil(t, r.Content)
	require.Nil(t, r.Artifact)
	// alice overwrites bob's freeware artifact: denied, as alice.
	resp = e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"write","target":"bob/pub","text":"pwned"}`, &r)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "PERMISSION_DENIED", r.ErrorCode)
	evs, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	require.Equal(t, "alice", last.Caller)
	require.Equal(t, kernel.KindWrite, last.Kind)

	// A caller in the body is refused outright.
	var ae api.Error
	resp = e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"read","target":"bob/secret","caller":"bob"}`, &ae)
	requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
	require.Contains(t, ae.Message, "caller")
	resp = e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"write","target":"x","type":"text","created_by":"bob"}`, &ae)
	requireError(t, resp, ae, http.StatusBadRequest, abi.ImmutableField)

	// bob reads his own, as raw bytes too.
	resp = e.call(t, http.MethodGet, "/v1/artifacts/bob/secret", e.bob, "", &r)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "mine", *r.Text)
	require.Equal(t, "bob", r.Artifact.CreatedBy)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/artifacts/bob/secret?format=raw", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.bob)
	raw, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer raw.Body.Close()
	b, err := io.ReadAll(raw.Body)
	require.NoError(t, err)
	require.Equal(t, "mine", string(b))
	require.Equal(t, "application/octet-stream", raw.Header.Get("Content-Type"))
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *server.Config) { c.MaxBodyBytes = 1024 })
	big := `{"kind":"write","target":"big","type":"text","text":"` + strings.Repeat("x", 2000) + `"}`
	var ae api.Error
	resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, big, &ae)
	requireError(t, resp, ae, http.StatusRequestEntityTooLarge, abi.InvalidArgument)
	require.Contains(t, ae.Message, "1024")
	ids, err := e.w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.NotContains(t, ids, "big")
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var ae api.Error
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		code                            abi.Code
	}{
		{"unknown path", http.MethodGet, "/v2/nothing", e.alice, "", 404, abi.NotFound},
		{"wrong method", http.MethodDelete, "/v1/actions", e.alice, "", 405, abi.InvalidArgument},
		{"not JSON", http.MethodPost, "/v1/actions", e.alice, "{", 400, abi.InvalidArgument},
		{"unknown field", http.MethodPost, "/v1/actions", e.alice, `{"kind":"read","target":"x","bogus":1}`, 400, abi.InvalidArgument},
		{"trailing data", http.MethodPost, "/v1/actions", e.alice, `{"kind":"read","target":"x"} {}`, 400, abi.InvalidArgument},
		{"unknown kind", http.MethodPost, "/v1/actions", e.alice, `{"kind":"fly","target":"x"}`, 400, abi.InvalidArgument},
		{"missing artifact", http.MethodGet, "/v1/artifacts/nope", e.alice, "", 404, abi.NotFound},
		{"negative transfer", http.MethodPost, "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","amount":-5}`, 400, abi.InvalidArgument},
		{"unknown principal", http.MethodGet, "/v1/principals/nobody", e.alice, "", 404, abi.NotFound},
		{"bad since", http.MethodGet, "/v1/events?since=-1", e.alice, "", 400, abi.InvalidArgument},
		{"bad limit", http.MethodGet, "/v1/events?limit=0", e.alice, "", 400, abi.InvalidArgument},
		{"explain transfer", http.MethodPost, "/v1/explain", e.alice, `{"kind":"transfer","to":"bob","amount":1}`, 400, abi.InvalidArgument},
		{"mint unknown field", http.MethodPost, "/v1/mint", e.admin, `{"id":"alice","amount":1,"x":2}`, 400, abi.InvalidArgument},
		{"mint negative", http.MethodPost, "/v1/mint", e.admin, `{"id":"alice","amount":-1}`, 400, abi.InvalidArgument},
		{"create existing", http.MethodPost, "/v1/principals", e.admin, `{"id":"alice"}`, 409, abi.AlreadyExists},
		{"create bad id", http.MethodPost, "/v1/principals", e.admin, `{"id":"no spaces"}`, 400, abi.InvalidArgument},
		{"insufficient funds", http.MethodPost, "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","amount":1000}`, 402, abi.InsufficientFunds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ae = api.Error{}
			resp := e.call(t, tc.method, tc.path, tc.token, tc.body, &ae)
			requireError(t, resp, ae, tc.status, tc.code)
		})
	}
	p, err := e.w.K.Principal(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, uint64(100), p.Balance, "no failed request changed a balance")
}

func TestEventsSince(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var r api.Result
	for _, id := range []string{"a", "b", "c"} {
		resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"write","target":"`+id+`","type":"text","text":"x"}`, &r)
		require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	}
	var all server.EventsResponse
	resp := e.call(t, http.MethodGet, "/v1/events", e.alice, "", &all)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, len(all.Events), 3)
	last3 := all.Events[len(all.Events)-3:]
	since := last3[0].Seq
	var page server.EventsResponse
	e.call(t, http.MethodGet, "/v1/events?since="+u(since)+"&limit=1", e.alice, "", &page)
	require.Len(t, page.Events, 1)
	require.Equal(t, last3[1].Seq, page.Events[0].Seq)
	require.Equal(t, "b", page.Events[0].Target)
	require.Equal(t, page.Events[0].Seq, page.Next)
	e.call(t, http.MethodGet, "/v1/events?since="+u(page.Next), e.alice, "", &page)
	require.Len(t, page.Events, 1)
	require.Equal(t, "c", page.Events[0].Target)
	e.call(t, http.MethodGet, "/v1/events?since="+u(page.Next), e.alice, "", &page)
	require.Empty(t, page.Events)
	require.NotNil(t, page.Events, "an empty page is [], not null")
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func TestAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var cr server.CreatePrincipalResponse
	resp := e.call(t, http.MethodPost, "/v1/principals", e.admin, `{"id":"carol","balance":7}`, &cr)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, strings.HasPrefix(cr.Token, auth.TokenPrefix))
	require.Equal(t, uint64(7), cr.Principal.Balance)

	// carol's token works at once.
	var r api.Result
	resp = e.call(t, http.MethodPost, "/v1/actions", cr.Token, `{"kind":"transfer","to":"bob","amount":2}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	require.Equal(t, []kernel.Charge{{Payer: "carol", Payee: "bob", Amount: 2, Reason: "transfer"}}, r.Charges)

	var m map[string]any
	resp = e.call(t, http.MethodPost, "/v1/mint", e.admin, `{"id":"carol","amount":10}`, &m)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var pv server.PrincipalView
	resp = e.call(t, http.MethodGet, "/v1/principals/carol", e.alice, "", &pv)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, pv.OK, "a success says ok like every other answer")
	require.Equal(t, uint64(15), pv.Balance)
	require.Len(t, pv.Quotas, len(kernel.Resources))

	var list map[string][]kernel.Principal
	e.call(t, http.MethodGet, "/v1/principals", e.admin, "", &list)
	ids := []string{}
	for _, p := range list["principals"] {
		ids = append(ids, p.ID)
	}
	require.Subset(t, ids, []string{"alice", "bob", "carol", "genesis"})
}

func TestQuotas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var qr server.QuotasResponse
	resp := e.call(t, http.MethodGet, "/v1/quotas", e.alice, "", &qr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "alice", qr.Principal)
	require.Len(t, qr.Quotas, len(kernel.Resources))

	var m map[string]any
	resp = e.call(t, http.MethodPut, "/v1/principals/bob/quotas/llm_rate", e.admin, `{"quota":100}`, &m)
	require.Equal(t, http.StatusOK, resp.StatusCode, m)
	var ae api.Error
	resp = e.call(t, http.MethodPut, "/v1/principals/bob/quotas/llm_rate", e.bob, `{"quota":1000000}`, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	resp = e.call(t, http.MethodPut, "/v1/principals/bob/quotas/bogus", e.admin, `{"quota":1}`, &ae)
	requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)

	var r api.Result
	use := `{"kind":"consume_quota","resource":"llm_rate","amount":80}`
	resp = e.call(t, http.MethodPost, "/v1/actions", e.bob, use, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	resp = e.call(t, http.MethodPost, "/v1/actions", e.bob, use, &r)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "QUOTA_EXCEEDED", r.ErrorCode)
	require.True(t, r.Retriable)
	require.Equal(t, "llm_rate", r.Resource)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))

	resp = e.call(t, http.MethodPost, "/v1/quotas/transfer", e.alice, `{"to":"bob","resource":"llm_rate","amount":100}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	resp = e.call(t, http.MethodPost, "/v1/actions", e.bob, use, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)

	resp = e.call(t, http.MethodGet, "/v1/principals/bob/quotas", e.alice, "", &qr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, q := range qr.Quotas {
		if q.Resource == kernel.LLMRate {
			require.Equal(t, int64(200), q.Quota)
			require.Equal(t, int64(160), q.Used)
		}
	}
}

// TestQuotaTransferRequestID: POST /v1/quotas/transfer takes a request_id
// like every action: the retry of an answered (or unanswered) transfer is
// the first result, marked replayed, and the quota moves once; the same id
// for another transfer is refused and moves nothing.
func TestQuotaTransferRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	quota := func(id string) int64 {
		var qr server.QuotasResponse
		resp := e.call(t, http.MethodGet, "/v1/principals/"+id+"/quotas", e.admin, "", &qr)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for _, q := range qr.Quotas {
			if q.Resource == kernel.LLMRate {
				return q.Quota
			}
		}
		t.Fatalf("%s has no llm_rate quota", id)
		return 0
	}
	alice, bob := quota("alice"), quota("bob")
	body := `{"to":"bob","resource":"llm_rate","amount":40,"request_id":"qt-1"}`
	var first, again api.Result
	resp := e.call(t, http.MethodPost, "/v1/quotas/transfer", e.alice, body, &first)
	require.Equal(t, http.StatusOK, resp.StatusCode, first.Message)
	require.False(t, first.Replayed)
	resp = e.call(t, http.MethodPost, "/v1/quotas/transfer", e.alice, body, &again)
	require.Equal(t, http.StatusOK, resp.StatusCode, again.Message)
	require.True(t, again.Replayed, "the retry is the first result")
	require.Equal(t, first.Event, again.Event)
	require.Equal(t, alice-40, quota("alice"), "moved once")
	require.Equal(t, bob+40, quota("bob"))

	var ae api.Result
	resp = e.call(t, http.MethodPost, "/v1/quotas/transfer", e.alice, `{"to":"bob","resource":"llm_rate","amount":1,"request_id":"qt-1"}`, &ae)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "INVALID_ARGUMENT", ae.ErrorCode)
	require.Equal(t, alice-40, quota("alice"), "a reused id moves nothing")
}

func TestExplain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"write","target":"bob/secret","type":"text","text":"s","contract":"private","metadata":{"k":"hidden"}}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	before, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)

	var ex api.Explanation
	resp = e.call(t, http.MethodPost, "/v1/explain", e.alice, `{"kind":"read","target":"bob/secret"}`, &ex)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "alice", ex.Caller)
	require.False(t, ex.TargetReadable)
	require.Equal(t, "PERMISSION_DENIED", ex.Outcome.ErrorCode)
	require.Equal(t, "alice", ex.Request.Caller)
	require.Empty(t, ex.Request.Metadata)
	require.Contains(t, ex.Redacted, "metadata")

	resp = e.call(t, http.MethodPost, "/v1/explain", e.bob, `{"kind":"read","target":"bob/secret"}`, &ex)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, ex.Outcome.OK)
	require.Equal(t, map[string]string{"k": "hidden"}, ex.Request.Metadata)
	require.Nil(t, ex.Outcome.Content)

	after, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	require.Equal(t, len(before), len(after), "explain records nothing")
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var h map[string]bool
	resp := e.call(t, http.MethodGet, "/healthz", "", "", &h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, h["ok"])

	var r api.Result
	e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"write","target":"n","type":"text","text":"x"}`, &r)
	e.call(t, http.MethodGet, "/v1/artifacts/n", e.bob, "", &r)
	e.call(t, http.MethodGet, "/v1/artifacts/missing", e.bob, "", &r)

	resp = e.call(t, http.MethodGet, "/metrics", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/metrics", nil)
	require.NoError(t, err)
	mr, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer mr.Body.Close()
	b, err := io.ReadAll(mr.Body)
	require.NoError(t, err)
	text := string(b)
	require.Contains(t, mr.Header.Get("Content-Type"), "text/plain")
	for _, want := range []string{
		`kernelhost_actions_total{kind="write",code="OK"} 1`,
		`kernelhost_actions_total{kind="read",code="OK"} 1`,
		`kernelhost_actions_total{kind="read",code="NOT_FOUND"} 1`,
		"# TYPE kernelhost_action_duration_seconds histogram",
		`kernelhost_action_duration_seconds_bucket{le="+Inf"} 3`,
		"kernelhost_action_duration_seconds_count 3",
		`kernelhost_http_requests_total{code="200"}`,
	} {
		require.Contains(t, text, want)
	}
}
