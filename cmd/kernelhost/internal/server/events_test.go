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
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// partiesEnv is newEnv plus mallory (and her token), after alice, bob and
// mallory acted: alice's private diary and private right "secret" (337
// llm_rate), a transfer to bob, bob's note, and mallory's attacks (a read of
// the diary, a redeem of the right) and her transfer to bob.
func partiesEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t, nil)
	e.w.Principal(t, "mallory", 100)
	mallory, err := e.auth.Issue("mallory")
	require.NoError(t, err)
	for _, tc := range []struct {
		token, body string
		status      int
	}{
		{e.alice, `{"kind":"write","target":"diary","type":"text","contract":"private","text":"dear diary"}`, http.StatusOK},
		{e.alice, `{"kind":"mint_right","target":"secret","resource":"llm_rate","amount":337,"contract":"private"}`, http.StatusOK},
		{e.alice, `{"kind":"transfer","to":"bob","amount":5}`, http.StatusOK},
		{e.bob, `{"kind":"write","target":"note","type":"text","text":"hi"}`, http.StatusOK},
		{mallory, `{"kind":"read","target":"diary"}`, http.StatusForbidden},
		{mallory, `{"kind":"redeem_right","target":"secret"}`, http.StatusForbidden},
		{mallory, `{"kind":"transfer","to":"bob","amount":1}`, http.StatusOK},
	} {
		var r api.Result
		resp := e.call(t, http.MethodPost, "/v1/actions", tc.token, tc.body, &r)
		require.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.body, r.Message)
	}
	return e, mallory
}

// raw sends a request and returns the status and the body.
func (e *env) raw(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// eventsOf reads every event token may see by paging GET /v1/events with
// limit, following Next until it stops moving, and returns them with the
// raw bodies.
func (e *env) eventsOf(t *testing.T, token string, limit int) ([]kernel.Event, string) {
	t.Helper()
	var out []kernel.Event
	raw := ""
	since := uint64(0)
	for calls := 0; ; calls++ {
		require.Less(t, calls, 1000, "paging must end")
		status, b := e.raw(t, http.MethodGet, "/v1/events?since="+u(since)+"&limit="+u(uint64(limit)), token, "")
		require.Equal(t, http.StatusOK, status, "%s", b)
		var page server.EventsResponse
		require.NoError(t, json.Unmarshal(b, &page))
		require.LessOrEqual(t, len(page.Events), limit)
		require.GreaterOrEqual(t, page.Next, since)
		raw += string(b)
		out = append(out, page.Events...)
		if page.Next == since {
			return out, raw
		}
		since = page.Next
	}
}

func summary(evs []kernel.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Caller+":"+string(ev.Kind)+":"+ev.Target+ev.To+":"+ev.Code)
	}
	return out
}

// TestEventsVisibleToParties: GET /v1/events shows a principal's token only
// the events its principal is a party to, mallory's attempt to read
// everyone's events included; the admin token sees all; paging by Next
// neither skips nor repeats. Reference: issue 14, item 4.
func TestEventsVisibleToParties(t *testing.T) {
	t.Parallel()
	e, mallory := partiesEnv(t)
	all, err := e.w.K.Events(ctx, 0, 0)
	require.NoError(t, err)

	for _, tc := range []struct {
		name, token, principal string
		want                   []string
	}{
		{"alice", e.alice, "alice", []string{
			"alice:write:diary:OK", "alice:mint_right:secret:OK", "alice:transfer:bob:OK",
			"mallory:redeem_right:secret:PERMISSION_DENIED", // a probe of alice's right
		}},
		{"bob", e.bob, "bob", []string{
			"alice:transfer:bob:OK", "bob:write:note:OK", "mallory:transfer:bob:OK",
		}},
		// The attack: mallory reads the events and gets her own only, not
		// alice's diary, right or transfer, nor bob's note.
		{"mallory", mallory, "mallory", []string{
			"mallory:read:diary:PERMISSION_DENIED", "mallory:redeem_right:secret:PERMISSION_DENIED",
			"mallory:transfer:bob:OK",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 100} {
				evs, _ := e.eventsOf(t, tc.token, limit)
				require.Equal(t, tc.want, summary(evs), "limit %d", limit)
				for _, ev := range evs {
					require.True(t, ev.Involves(tc.principal))
				}
			}
		})
	}

	// mallory's page says nothing stored in alice's right, nor who holds it;
	// alice's page names her as the holder mallory probed.
	evs, raw := e.eventsOf(t, mallory, 100)
	for _, s := range []string{"337", "llm_rate", "alice", "dear diary"} {
		require.NotContains(t, raw, s)
	}
	require.Empty(t, evs[1].Holder)
	evs, _ = e.eventsOf(t, e.alice, 100)
	require.Equal(t, "alice", evs[3].Holder)

	// The admin token sees every event, as recorded.
	evs, _ = e.eventsOf(t, e.admin, 1)
	require.Equal(t, all, evs)

	// No token, no events.
	var ae api.Error
	resp := e.call(t, http.MethodGet, "/v1/events", "", "", &ae)
	requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
}

// TestRightDetailsPrivate: mallory probing alice's private right over HTTP
// (every right primitive, a read) learns nothing stored in it: not from the
// answers, not from the events she can read. Reference: issue 14, item 4.
func TestRightDetailsPrivate(t *testing.T) {
	t.Parallel()
	e, mallory := partiesEnv(t)
	secrets := []string{"337", "llm_rate", "alice"}
	for _, tc := range []struct {
		method, path, body string
		status             int
		minter             bool // the answer names created_by, the minter: a fact of every artifact
	}{
		{http.MethodPost, "/v1/actions", `{"kind":"redeem_right","target":"secret"}`, http.StatusForbidden, false},
		{http.MethodPost, "/v1/actions", `{"kind":"transfer_right","target":"secret","to":"bob"}`, http.StatusForbidden, false},
		{http.MethodPost, "/v1/actions", `{"kind":"split_right","target":"secret","amounts":[300,37]}`, http.StatusForbidden, false},
		{http.MethodPost, "/v1/actions", `{"kind":"merge_rights","target":"secret","ids":["nothing"]}`, http.StatusForbidden, false},
		{http.MethodGet, "/v1/artifacts/secret", "", http.StatusForbidden, false},
		{http.MethodGet, "/v1/artifacts/secret?format=raw", "", http.StatusForbidden, false},
		{http.MethodPost, "/v1/explain", `{"kind":"read","target":"secret"}`, http.StatusOK, true},
	} {
		status, b := e.raw(t, tc.method, tc.path, mallory, tc.body)
		require.Equal(t, tc.status, status, "%s %s: %s", tc.path, tc.body, b)
		for _, s := range secrets {
			if s == "alice" && tc.minter {
				continue
			}
			require.NotContains(t, string(b), s, "%s %s: %s", tc.path, tc.body, b)
		}
	}
	_, raw := e.eventsOf(t, mallory, 100)
	for _, s := range secrets {
		require.NotContains(t, raw, s, "mallory's events: %s", raw)
	}
	q, err := e.w.K.Quota(ctx, "mallory", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(1000), q, "nothing was redeemed")
}
