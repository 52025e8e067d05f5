package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

// listAll follows next_cursor through GET /v1/artifacts?prefix= with
// limit, returning every id listed and the raw bodies.
func (e *env) listAll(t *testing.T, token, prefix string, limit int) ([]string, string) {
	t.Helper()
	var ids []string
	var raw strings.Builder
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "paging must end")
		q := url.Values{"prefix": {prefix}, "limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		status, b := e.raw(t, http.MethodGet, "/v1/artifacts?"+q.Encode(), token, "")
		require.Equal(t, http.StatusOK, status, "%s", b)
		raw.Write(b)
		var page server.ArtifactsResponse
		require.NoError(t, json.Unmarshal(b, &page))
		require.LessOrEqual(t, len(page.Artifacts), limit)
		require.Equal(t, prefix, page.Prefix)
		for _, a := range page.Artifacts {
			ids = append(ids, a.ID)
		}
		if page.NextCursor == "" {
			return ids, raw.String()
		}
		cursor = page.NextCursor
	}
}

// TestListArtifactsHTTP: GET /v1/artifacts?prefix= lists only what the
// token's principal may read (alice's private diary is not listed for
// bob), ids and types only, a page at a time; the admin token lists
// everything; each check is charged to the caller's cpu_rate and nothing
// is recorded; a caller without cpu_rate gets 429 with Retry-After; a bad
// prefix or cursor is 400.
func TestListArtifactsHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var r api.Result
	for _, body := range []string{
		`{"kind":"write","target":"alice/diary","type":"text","text":"SECRET-TEXT","contract":"private","metadata":{"mood":"SECRET-META"}}`,
		`{"kind":"write","target":"alice/notes","type":"text","text":"hello"}`,
		`{"kind":"write","target":"alice/todo","type":"text","text":"x"}`,
		`{"kind":"write","target":"alice/zz","type":"data","text":"x","contract":"private"}`,
		`{"kind":"write","target":"other","type":"text","text":"x"}`,
	} {
		resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, body, &r)
		require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	}
	evs, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	before := e.w.Balance(t, "bob")
	cpuBefore, err := e.w.K.QuotaStatus(ctx, "bob", kernel.CPURate)
	require.NoError(t, err)

	for _, limit := range []int{1, 2, 100} {
		ids, raw := e.listAll(t, e.bob, "alice/", limit)
		require.Equal(t, []string{"alice/notes", "alice/todo"}, ids, "limit %d", limit)
		require.NotContains(t, raw, "SECRET")
		require.NotContains(t, raw, "alice/diary", "bob's listing never names the diary")
		require.NotContains(t, raw, "mood")

		ids, raw = e.listAll(t, e.alice, "alice/", limit)
		require.Equal(t, []string{"alice/diary", "alice/notes", "alice/todo", "alice/zz"}, ids)
		require.NotContains(t, raw, "SECRET", "a listing never shows content or metadata, even the caller's own")

		ids, _ = e.listAll(t, e.admin, "alice/", limit)
		require.Equal(t, []string{"alice/diary", "alice/notes", "alice/todo", "alice/zz"}, ids, "the admin token sees every artifact")
	}
	var page server.ArtifactsResponse
	status, b := e.raw(t, http.MethodGet, "/v1/artifacts?prefix=alice/", e.bob, "")
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, json.Unmarshal(b, &page))
	require.Equal(t, []kernel.ListedArtifact{{ID: "alice/notes", Type: "text", Contract: "freeware", Revision: 1}, {ID: "alice/todo", Type: "text", Contract: "freeware", Revision: 1}}, page.Artifacts)
	require.Equal(t, 4, page.Examined)
	require.Equal(t, int64(4), page.CPUCharged, "one 1µs check per artifact examined")

	// Paid in cpu_rate only: no scrip, no event.
	cpuAfter, err := e.w.K.QuotaStatus(ctx, "bob", kernel.CPURate)
	require.NoError(t, err)
	// Each of bob's four listings examined the 4 artifacts once, whatever
	// its pages: a page goes on after the last artifact examined.
	require.Equal(t, int64(4*4), cpuAfter.Used-cpuBefore.Used)
	require.Equal(t, before, e.w.Balance(t, "bob"))
	after, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, after, len(evs), "listing records nothing")

	// Out of cpu_rate: 429 with Retry-After, before any check.
	require.NoError(t, e.w.K.SetQuota(ctx, "bob", kernel.CPURate, cpuAfter.Used))
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/artifacts?prefix=alice/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.bob)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", b)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.NoError(t, json.Unmarshal(b, &r))
	require.Equal(t, "QUOTA_EXCEEDED", r.ErrorCode)
	require.Equal(t, "cpu_rate", r.Resource)
	// Two µs left: a short page that says why, and goes on from there.
	require.NoError(t, e.w.K.SetQuota(ctx, "bob", kernel.CPURate, cpuAfter.Used+2))
	status, b = e.raw(t, http.MethodGet, "/v1/artifacts?prefix=alice/", e.bob, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	page = server.ArtifactsResponse{}
	require.NoError(t, json.Unmarshal(b, &page))
	require.Equal(t, 2, page.Examined)
	require.Equal(t, []kernel.ListedArtifact{{ID: "alice/notes", Type: "text", Contract: "freeware", Revision: 1}}, page.Artifacts, "alice/diary and alice/notes were examined")
	require.NotEmpty(t, page.NextCursor)
	require.NotNil(t, page.QuotaExceeded)
	require.Equal(t, "QUOTA_EXCEEDED", page.QuotaExceeded.ErrorCode)

	// Bad input.
	for _, q := range []string{"prefix=a%20b", "prefix=a%00", "cursor=bm9wZQ%3D%3D%3D", "limit=0", "limit=1001", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("a//b"))} {
		resp, b := e.send(t, false, http.MethodGet, "/v1/artifacts?"+q, e.alice, "")
		requireJSONError(t, resp, b, http.StatusBadRequest, abi.InvalidArgument)
	}
	resp, b = e.send(t, false, http.MethodGet, "/v1/artifacts", "", "")
	requireJSONError(t, resp, b, http.StatusUnauthorized, abi.Unauthenticated)
	resp, b = e.send(t, false, http.MethodPost, "/v1/artifacts", e.alice, "")
	requireJSONError(t, resp, b, http.StatusMethodNotAllowed, abi.InvalidArgument)
}

// put sends a raw upload.
func (e *env) put(t *testing.T, path, token, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, e.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// TestRawUpload: PUT /v1/artifacts/{id} writes the raw body as the
// artifact's content, as the token's principal, with the write's other
// fields as query parameters, strictly: a module of 4 MiB, which no JSON
// action can carry (base64 makes it 5.3 MiB, 413), goes up and reads back
// byte for byte. Bodies are bounded by the kernel's content limit plus
// server.UploadMargin (413 beyond; the kernel's own INVALID_ARGUMENT, naming
// its limit, up to there). A wrong Content-Type is 415, an unknown or
// repeated parameter 400, and none of them writes anything.
func TestRawUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.Disk, 40<<20))
	module := make([]byte, 4<<20)
	for i := range module {
		module[i] = byte(i * 7)
	}
	copy(module, "fake:")
	e.w.Eval.Register(module, func(*abi.Request) (abi.Decision, error) { return abi.Decision{Allowed: true}, nil })

	// The same module as a JSON action is too large.
	js, err := json.Marshal(map[string]any{"kind": "write", "target": "alice/big", "type": "contract", "content": module})
	require.NoError(t, err)
	resp, b := e.send(t, false, http.MethodPost, "/v1/actions", e.alice, string(js))
	requireJSONError(t, resp, b, http.StatusRequestEntityTooLarge, abi.InvalidArgument)

	resp, b = e.put(t, "/v1/artifacts/alice/big?type=contract&contract=private&metadata="+url.QueryEscape(`{"price":"3"}`)+"&max_cost=0&request_id=up-1", e.alice, "application/wasm", module)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var r api.Result
	require.NoError(t, json.Unmarshal(b, &r))
	require.True(t, r.OK, r.Message)
	require.NotZero(t, r.Event)
	info := readInfo(t, e, "alice/big")
	require.Equal(t, kernel.TypeContract, info.Type)
	require.Equal(t, "private", info.Contract)
	require.Equal(t, "alice", info.CreatedBy, "the caller is the token's principal")
	require.Equal(t, map[string]string{"price": "3"}, info.Metadata)
	require.Equal(t, uint64(len(module)), info.Size)
	got := readRaw(t, e, "alice/big")
	require.True(t, bytes.Equal(module, got), "the module reads back byte for byte")

	// The same request_id again is the first write's result, not a second write.
	resp, b = e.put(t, "/v1/artifacts/alice/big?type=contract&contract=private&metadata="+url.QueryEscape(`{"price":"3"}`)+"&max_cost=0&request_id=up-1", e.alice, "application/wasm", module)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var again api.Result
	require.NoError(t, json.Unmarshal(b, &again))
	require.Equal(t, r.Event, again.Event)

	// Replacing content; text/plain for a text artifact.
	resp, b = e.put(t, "/v1/artifacts/alice/notes?type=text", e.alice, "text/plain; charset=utf-8", []byte("first"))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	resp, b = e.put(t, "/v1/artifacts/alice/notes", e.alice, "application/octet-stream", []byte("second"))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Equal(t, "second", string(readRaw(t, e, "alice/notes")))
	// Judged like any write: bob may not replace alice's private module.
	resp, b = e.put(t, "/v1/artifacts/alice/big", e.bob, "application/wasm", module)
	requireJSONError(t, resp, b, http.StatusForbidden, abi.PermissionDenied)

	// Bounds: up to limit+margin the kernel says its limit; beyond, 413.
	limit := e.w.K.ContentLimit("")
	resp, b = e.put(t, "/v1/artifacts/alice/huge?type=contract", e.alice, "application/wasm", make([]byte, limit+1))
	requireJSONError(t, resp, b, http.StatusBadRequest, abi.InvalidArgument)
	require.Contains(t, string(b), fmt.Sprint(limit))
	resp, b = e.put(t, "/v1/artifacts/alice/huge?type=contract", e.alice, "application/wasm", make([]byte, limit+server.UploadMargin+1))
	requireJSONError(t, resp, b, http.StatusRequestEntityTooLarge, abi.InvalidArgument)

	// Refusals write nothing.
	for _, tc := range []struct {
		path, ctype string
		status      int
	}{
		{"/v1/artifacts/alice/x?type=data", "", http.StatusUnsupportedMediaType},
		{"/v1/artifacts/alice/x?type=data", "application/json", http.StatusUnsupportedMediaType},
		{"/v1/artifacts/alice/x?type=data", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"/v1/artifacts/alice/x?type=data&contrat=private", "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&type=text", "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data;contract=private", "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&caller=bob", "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&max_cost=-1", "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&metadata=" + url.QueryEscape(`{"a":"1","a":"2"}`), "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&metadata=" + url.QueryEscape(`{"a":1}`), "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&metadata=" + url.QueryEscape(`{"a":"1"} {}`), "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=data&metadata=null", "application/octet-stream", http.StatusBadRequest},
		{"/v1/artifacts/alice/x?type=Bad%20Type", "application/octet-stream", http.StatusBadRequest},
	} {
		resp, b := e.put(t, tc.path, e.alice, tc.ctype, []byte("x"))
		requireJSONError(t, resp, b, tc.status, abi.InvalidArgument)
	}
	ids, err := e.w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.NotContains(t, ids, "alice/x")
	require.NotContains(t, ids, "alice/huge")
	resp, b = e.put(t, "/v1/artifacts/alice/x?type=data", e.admin, "application/octet-stream", []byte("x"))
	requireJSONError(t, resp, b, http.StatusForbidden, abi.PermissionDenied)
}

func readInfo(t *testing.T, e *env, id string) kernel.ArtifactInfo {
	t.Helper()
	var r api.Result
	resp := e.call(t, http.MethodGet, "/v1/artifacts/"+id, e.alice, "", &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	require.NotNil(t, r.Artifact)
	return *r.Artifact
}

func readRaw(t *testing.T, e *env, id string) []byte {
	t.Helper()
	status, b := e.raw(t, http.MethodGet, "/v1/artifacts/"+id+"?format=raw", e.alice, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	return b
}

// TestUploadExampleExecutable: the example executable
// (examples/go-executable/counter.wasm, 3.4 MB: 4.6 MB as base64 in JSON,
// which the server refuses) goes up over HTTP as raw bytes to a kernel on
// the real wasm host, and then runs when invoked over HTTP.
func TestUploadExampleExecutable(t *testing.T) {
	t.Parallel()
	wasm, err := os.ReadFile("../../../../examples/go-executable/counter.wasm")
	require.NoError(t, err)
	require.Greater(t, len(wasm), 3_400_000)
	k := testworld.HostWorld(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice", Balance: 10}}})
	require.NoError(t, k.SetQuota(context.Background(), "alice", kernel.Disk, 8<<20))
	a, _, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	alice, err := a.Issue("alice")
	require.NoError(t, err)
	s, err := server.New(server.Config{Kernel: k, Auth: a})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	e := &env{srv: srv, s: s, alice: alice}

	js, err := json.Marshal(map[string]any{"kind": "write", "target": "counter", "type": "executable", "content": wasm})
	require.NoError(t, err)
	resp, b := e.send(t, false, http.MethodPost, "/v1/actions", alice, string(js))
	requireJSONError(t, resp, b, http.StatusRequestEntityTooLarge, abi.InvalidArgument)

	resp, b = e.put(t, "/v1/artifacts/counter?type=executable&contract="+genesis.Freeware, alice, "application/wasm", wasm)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.True(t, bytes.Equal(wasm, readRaw(t, e, "counter")))

	var r api.Result
	resp = e.call(t, http.MethodPost, "/v1/actions", alice, `{"kind":"invoke","target":"counter","method":"increment","args_text":"{\"counter\":\"alice/visits\"}"}`, &r)
	require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	require.NotNil(t, r.OutputText)
	require.JSONEq(t, `{"counter":"alice/visits","value":1}`, *r.OutputText)
}
