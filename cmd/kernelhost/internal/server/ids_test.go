package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// send sends a request with path exactly as given (no cleaning) through a
// client that follows redirects when follow is set, and returns the answer
// with its body.
func (e *env) send(t *testing.T, follow bool, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := *e.srv.Client()
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// requireJSONError checks that an answer is a JSON error of code with
// status, and no redirect.
func requireJSONError(t *testing.T, resp *http.Response, body []byte, status int, code abi.Code) {
	t.Helper()
	require.Empty(t, resp.Header.Get("Location"), "the server never redirects")
	var ae api.Error
	require.NoError(t, json.Unmarshal(body, &ae), "every error body is JSON: %s", body)
	requireError(t, resp, ae, status, code)
}

// TestIDsHaveOneMeaning, over HTTP: a path with "." or ".." segments, empty
// segments or a trailing slash is 400 INVALID_ARGUMENT in JSON, never a
// redirect to the cleaned path. Today's attack: GET /v1/artifacts/a/../b
// answered 307 to /v1/artifacts/b, so a client that follows redirects read,
// and paid for, b. Ids in bodies follow the kernel's rule, and unknown
// endpoints and methods answer JSON too.
// Reference: issue 14, item 5.
func TestIDsHaveOneMeaning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// b is bob's and costs 5 to read, paid to bob.
	e.w.Deploy(t, "bob", "bob/pay", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 5, Payee: "bob"}, nil
		}
		return abi.Decision{Allowed: req.Caller == "bob"}, nil
	})
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"write","target":"b","type":"text","text":"bob's","contract":"bob/pay"}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	evs, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)

	for _, path := range []string{
		"/v1/artifacts/a/../b",
		"/v1/artifacts/a/%2e%2e/b",
		"/v1/artifacts/a/%2E%2E/b",
		"/v1/artifacts/./b",
		"/v1/artifacts//b",
		"/v1/artifacts/b/",
		"/v1/artifacts/b/.",
		"/v1/artifacts/b/?format=raw",
		"/v1/artifacts/x/..%2fb",
		"/v1/x/../artifacts/b",
		"//v1/artifacts/b",
		"/v1/principals/alice/",
		"/v1/principals/x/../alice",
		"/v1/actions/",
		"/v1/./actions",
	} {
		for _, follow := range []bool{false, true} {
			resp, body := e.send(t, follow, http.MethodGet, path, e.alice, "")
			requireJSONError(t, resp, body, http.StatusBadRequest, abi.InvalidArgument)
			require.NotContains(t, string(body), "bob's", path)
		}
	}
	// A POST to an unclean path is refused the same way, not redirected.
	resp, body := e.send(t, true, http.MethodPost, "/v1/x/../actions", e.alice, `{"kind":"read","target":"b"}`)
	requireJSONError(t, resp, body, http.StatusBadRequest, abi.InvalidArgument)

	require.Equal(t, uint64(100), e.w.Balance(t, "alice"), "alice paid for nothing")
	require.Equal(t, uint64(100), e.w.Balance(t, "bob"))
	after, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, after, len(evs), "no read of b happened")

	// The clean path still reads b, for its price.
	resp, body = e.send(t, false, http.MethodGet, "/v1/artifacts/b", e.alice, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "bob's")
	require.Equal(t, uint64(95), e.w.Balance(t, "alice"))

	// Paths the mux would redirect to add a slash, and unknown paths and
	// methods: JSON, never a redirect or an HTML or text body.
	for _, tc := range []struct {
		method, path string
		status       int
		code         abi.Code
	}{
		{http.MethodGet, "/v1/principals/alice/consents/", http.StatusBadRequest, abi.InvalidArgument},
		{http.MethodGet, "/v1/principals/alice/nothing/x", http.StatusNotFound, abi.NotFound},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, abi.NotFound},
		{http.MethodGet, "/v1/principals/alice/nothing", http.StatusNotFound, abi.NotFound},
		{http.MethodPut, "/v1/actions", http.StatusMethodNotAllowed, abi.InvalidArgument},
		{http.MethodDelete, "/v1/artifacts/b", http.StatusMethodNotAllowed, abi.InvalidArgument},
	} {
		resp, body := e.send(t, false, tc.method, tc.path, e.alice, "")
		requireJSONError(t, resp, body, tc.status, tc.code)
	}

	// Ids in bodies: the kernel's rule, over every route that takes one.
	for _, id := range []string{"../b", "a/../b", "a//b", "b/", "./b", ".."} {
		for _, tc := range []struct{ path, token, body string }{
			{"/v1/actions", e.alice, `{"kind":"read","target":` + quoteJSON(id) + `}`},
			{"/v1/actions", e.alice, `{"kind":"write","target":` + quoteJSON(id) + `,"type":"text","text":"x"}`},
			{"/v1/actions", e.alice, `{"kind":"transfer","to":` + quoteJSON(id) + `,"amount":1}`},
			{"/v1/explain", e.alice, `{"kind":"read","target":` + quoteJSON(id) + `}`},
			{"/v1/quotas/transfer", e.alice, `{"to":` + quoteJSON(id) + `,"resource":"llm_rate","amount":1}`},
			{"/v1/principals", e.admin, `{"id":` + quoteJSON(id) + `}`},
		} {
			resp, body := e.send(t, false, http.MethodPost, tc.path, tc.token, tc.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s %s: %s", tc.path, tc.body, body)
			require.Contains(t, string(body), `"error_code":"INVALID_ARGUMENT"`)
		}
	}
	ids, err := e.w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	for _, id := range ids {
		require.NotContains(t, id, "..")
	}
	require.Equal(t, uint64(95), e.w.Balance(t, "alice"))
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestStrictActionFields, over HTTP: POST /v1/actions and /v1/explain
// refuse a field the action's kind does not use and a duplicate key with
// 400 INVALID_ARGUMENT, as do the other JSON bodies for duplicate keys, and
// nothing changes.
// Reference: issue 14, item 5.
func TestStrictActionFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.w.Principal(t, "mallory", 0)
	evs, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	for _, tc := range []struct{ name, path, token, body string }{
		{"target on transfer", "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","amount":1,"target":"` + strings.Repeat("x", 1<<16) + `"}`},
		{"metadata on transfer", "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","amount":1,"metadata":{"memo":"hi"}}`},
		{"to on consume_quota", "/v1/actions", e.alice, `{"kind":"consume_quota","resource":"llm_rate","amount":1,"to":"bob"}`},
		{"content on read", "/v1/actions", e.alice, `{"kind":"read","target":"x","text":"hi"}`},
		{"To beside to", "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","To":"mallory","amount":1}`},
		{"to twice", "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","to":"mallory","amount":1}`},
		{"metadata key twice", "/v1/actions", e.alice, `{"kind":"write","target":"n","type":"text","text":"x","metadata":{"controller":"alice","controller":"mallory"}}`},
		{"explain extra field", "/v1/explain", e.alice, `{"kind":"read","target":"x","amount":3}`},
		{"explain duplicate", "/v1/explain", e.alice, `{"kind":"read","target":"x","target":"y"}`},
		{"quota transfer duplicate", "/v1/quotas/transfer", e.alice, `{"to":"bob","resource":"llm_rate","amount":1,"to":"mallory"}`},
		{"mint duplicate", "/v1/mint", e.admin, `{"id":"alice","amount":1,"amount":1000000}`},
		{"create duplicate", "/v1/principals", e.admin, `{"id":"carol","balance":1,"balance":1000}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.send(t, false, http.MethodPost, tc.path, tc.token, tc.body)
			requireJSONError(t, resp, body, http.StatusBadRequest, abi.InvalidArgument)
			require.Less(t, len(body), 1024, "the answer does not echo the field")
		})
	}
	after, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, after, len(evs), "nothing was done")
	require.Equal(t, uint64(100), e.w.Balance(t, "alice"))
	require.Equal(t, uint64(0), e.w.Balance(t, "mallory"))
	_, err = e.w.K.Principal(ctx, "carol")
	require.ErrorIs(t, err, kernel.ErrNotFound)
	ids, err := e.w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.NotContains(t, ids, "n")

	// The fields each kind uses still work.
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"transfer","to":"bob","amount":1}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	require.Equal(t, uint64(99), e.w.Balance(t, "alice"))
}

// TestQuotaExceededRetriableOnlyIfWaitingHelps, over HTTP: a QUOTA_EXCEEDED
// that waiting cures is 429 with retriable true and Retry-After; one that
// no wait cures (more than the whole quota, llm_budget, disk, memory) is
// 403 with retriable false and no Retry-After. Today consume_quota of
// 100000 against a quota of 290 answered 429 with Retry-After: 60.
// Reference: issue 14, item 5.
func TestQuotaExceededRetriableOnlyIfWaitingHelps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.LLMRate, 290))
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.LLMBudget, 1000))
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, `{"kind":"write","target":"doc","type":"text","text":"x"}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)

	post := func(body string) (*http.Response, api.Result) {
		var r api.Result
		resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, body, &r)
		return resp, r
	}
	final := func(resp *http.Response, r api.Result, res kernel.Resource) {
		t.Helper()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, r.Message)
		require.Equal(t, "QUOTA_EXCEEDED", r.ErrorCode)
		require.Equal(t, string(res), r.Resource)
		require.False(t, r.Retriable)
		require.Empty(t, resp.Header.Get("Retry-After"))
		require.Zero(t, r.RetryAfterSeconds)
	}
	retriable := func(resp *http.Response, r api.Result, res kernel.Resource) {
		t.Helper()
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, r.Message)
		require.Equal(t, "QUOTA_EXCEEDED", r.ErrorCode)
		require.Equal(t, string(res), r.Resource)
		require.True(t, r.Retriable)
		require.Equal(t, "60", resp.Header.Get("Retry-After"))
		require.Equal(t, 60.0, r.RetryAfterSeconds)
	}

	resp, r = post(`{"kind":"consume_quota","resource":"llm_rate","amount":100000}`) // the case
	final(resp, r, kernel.LLMRate)
	resp, r = post(`{"kind":"consume_quota","resource":"llm_rate","amount":200}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	resp, r = post(`{"kind":"consume_quota","resource":"llm_rate","amount":200}`)
	retriable(resp, r, kernel.LLMRate)
	resp, r = post(`{"kind":"consume_quota","resource":"llm_budget","amount":5000}`)
	final(resp, r, kernel.LLMBudget)
	var tr api.Result
	resp = e.call(t, http.MethodPost, "/v1/quotas/transfer", e.alice, `{"to":"bob","resource":"llm_rate","amount":291}`, &tr)
	final(resp, tr, kernel.LLMRate)

	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.Disk, 0))
	resp, r = post(`{"kind":"write","target":"big","type":"text","text":"too big"}`)
	final(resp, r, kernel.Disk)

	// A raw read says the same as a JSON one, Retry-After included.
	cpu, err := e.w.K.Quota(ctx, "alice", kernel.CPURate)
	require.NoError(t, err)
	require.True(t, e.w.K.ConsumeQuota(ctx, "alice", kernel.CPURate, cpu).OK)
	for _, path := range []string{"/v1/artifacts/doc", "/v1/artifacts/doc?format=raw"} {
		resp, body := e.send(t, false, http.MethodGet, path, e.alice, "")
		r = api.Result{}
		require.NoError(t, json.Unmarshal(body, &r), "%s", body)
		retriable(resp, r, kernel.CPURate)
	}
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.CPURate, 0))
	for _, path := range []string{"/v1/artifacts/doc", "/v1/artifacts/doc?format=raw"} {
		resp, body := e.send(t, false, http.MethodGet, path, e.alice, "")
		r = api.Result{}
		require.NoError(t, json.Unmarshal(body, &r), "%s", body)
		final(resp, r, kernel.CPURate)
	}
}

// TestGetArtifactQuery: GET /v1/artifacts/{id} honours max_cost (a price
// above it is COST_LIMIT_EXCEEDED and nothing is charged) and refuses any
// parameter it does not take: before, ?max_cost=3 was ignored and a read
// priced 5 was charged 5.
func TestGetArtifactQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.w.Deploy(t, "bob", "bob/pay", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 5, Payee: "bob"}, nil
		}
		return abi.Decision{Allowed: req.Caller == "bob"}, nil
	})
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"write","target":"b","type":"text","text":"bob's","contract":"bob/pay"}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)

	var ae api.Error
	resp = e.call(t, http.MethodGet, "/v1/artifacts/b?max_cost=3", e.alice, "", &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.CostLimitExceeded)
	require.Equal(t, uint64(100), e.w.Balance(t, "alice"), "nothing charged")
	for _, q := range []string{"?max_cost=-1", "?max_cost=x", "?max_cost=3&max_cost=9", "?maxcost=3", "?format=xml", "?sudo=1"} {
		ae = api.Error{}
		resp = e.call(t, http.MethodGet, "/v1/artifacts/b"+q, e.alice, "", &ae)
		requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
	}
	require.Equal(t, uint64(100), e.w.Balance(t, "alice"))

	r = api.Result{}
	resp = e.call(t, http.MethodGet, "/v1/artifacts/b?max_cost=5&request_id=r1", e.alice, "", &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	resp = e.call(t, http.MethodGet, "/v1/artifacts/b?max_cost=5&request_id=r1", e.alice, "", &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	require.True(t, r.Replayed)
	require.Equal(t, uint64(95), e.w.Balance(t, "alice"), "paid once")
}
