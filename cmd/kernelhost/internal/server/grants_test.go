package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestGrantRoutes: a principal's consent, LLM consent and standing grants are shown to
// its own token and the admin token, paged; another principal's token gets
// 403 and learns nothing; a missing consent is 404, an unknown principal
// 404 for the admin.
func TestGrantRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.w.Deploy(t, "alice", "alice/pay", "private", func(*abi.Request) (abi.Decision, error) { return abi.Decision{Allowed: true}, nil })
	e.w.Deploy(t, "alice", "alice/pay2", "private", func(*abi.Request) (abi.Decision, error) { return abi.Decision{Allowed: true}, nil })
	e.w.DeployExecutable(t, "alice", "alice/exe", "allow-all", nil)
	var r api.Result
	for _, body := range []string{
		`{"kind":"grant_consent","contract":"alice/pay","per_call_cap":5,"total_cap":50}`,
		`{"kind":"grant_consent","contract":"alice/pay2","per_call_cap":1,"total_cap":2}`,
		`{"kind":"grant_standing","target":"alice/exe"}`,
		`{"kind":"grant_llm_consent","to":"bob","per_call_cap":2000,"total_cap":9000,"amount":500}`,
	} {
		resp := e.call(t, http.MethodPost, "/v1/actions", e.alice, body, &r)
		require.Equal(t, http.StatusOK, resp.StatusCode, r.Message)
	}

	for _, tok := range []string{e.alice, e.admin} {
		var page server.ConsentsResponse
		resp := e.call(t, http.MethodGet, "/v1/principals/alice/consents?limit=1", tok, "", &page)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, page.Consents, 1)
		require.Equal(t, "alice/pay", page.Consents[0].Contract)
		require.Equal(t, uint64(5), page.Consents[0].PerCallCap)
		require.NotEmpty(t, page.NextCursor)
		cursor := page.NextCursor
		page = server.ConsentsResponse{}
		resp = e.call(t, http.MethodGet, "/v1/principals/alice/consents?limit=1&cursor="+cursor, tok, "", &page)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []string{"alice/pay2"}, []string{page.Consents[0].Contract})
		require.Empty(t, page.NextCursor)

		var one server.ConsentResponse
		resp = e.call(t, http.MethodGet, "/v1/principals/alice/consents/alice/pay", tok, "", &one)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.True(t, one.OK)
		want, err := e.w.K.Consent(ctx, "alice", "alice/pay")
		require.NoError(t, err)
		require.Equal(t, want, one.Consent)

		var lc server.LLMConsentResponse
		resp = e.call(t, http.MethodGet, "/v1/principals/alice/llm_consents/bob", tok, "", &lc)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, kernel.LLMConsent{Sponsor: "alice", Principal: "bob", PerCallCap: 2000, TotalCap: 9000, TokenCap: 500}, lc.Consent)

		var ss server.StandingsResponse
		resp = e.call(t, http.MethodGet, "/v1/principals/alice/standings", tok, "", &ss)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []kernel.Standing{{Principal: "alice", Executable: "alice/exe", Terms: ss.Standings[0].Terms, Valid: true}}, ss.Standings)
	}

	for _, path := range []string{"/v1/principals/alice/consents", "/v1/principals/alice/consents/alice/pay", "/v1/principals/alice/standings", "/v1/principals/alice/llm_consents/bob"} {
		resp, b := e.send(t, false, http.MethodGet, path, e.bob, "")
		requireJSONError(t, resp, b, http.StatusForbidden, abi.PermissionDenied)
		require.NotContains(t, string(b), "terms")
	}
	resp, b := e.send(t, false, http.MethodGet, "/v1/principals/alice/consents/freeware", e.alice, "")
	requireJSONError(t, resp, b, http.StatusNotFound, abi.NotFound)
	resp, b = e.send(t, false, http.MethodGet, "/v1/principals/nobody/standings", e.admin, "")
	requireJSONError(t, resp, b, http.StatusNotFound, abi.NotFound)
	resp, b = e.send(t, false, http.MethodGet, "/v1/principals/nobody/consents/x", e.admin, "")
	requireJSONError(t, resp, b, http.StatusNotFound, abi.NotFound)
	resp, b = e.send(t, false, http.MethodGet, "/v1/principals/bob/llm_consents/alice", e.bob, "")
	requireJSONError(t, resp, b, http.StatusNotFound, abi.NotFound)
	var empty server.StandingsResponse
	resp = e.call(t, http.MethodGet, "/v1/principals/bob/standings", e.bob, "", &empty)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := json.Marshal(empty)
	require.NoError(t, err)
	require.Contains(t, string(b), `"standings":[]`)
}
