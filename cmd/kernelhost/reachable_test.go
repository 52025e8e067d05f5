package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// actionReach says where each kernel action kind is reached. Every kind
// is an action body of POST /v1/actions (the HTTP API's one action route;
// route names the others that perform the kind too), and cli is the
// command that performs it. A kind the kernel adds must be added here,
// with both, or TestEveryActionReachable fails.
var actionReach = map[kernel.Kind]struct{ cli, route string }{
	kernel.KindRead:             {"artifact get", "GET /v1/artifacts/{id...}"},
	kernel.KindWrite:            {"artifact put", "PUT /v1/artifacts/{id...}"},
	kernel.KindEdit:             {"artifact edit", ""},
	kernel.KindDelete:           {"artifact rm", ""},
	kernel.KindSetContract:      {"artifact set-contract", ""},
	kernel.KindInvoke:           {"artifact invoke", ""},
	kernel.KindTransfer:         {"scrip transfer", ""},
	kernel.KindSetSpendingLimit: {"scrip limit", ""},
	kernel.KindGrantConsent:     {"consent grant", ""},
	kernel.KindRevokeConsent:    {"consent revoke", ""},
	kernel.KindGrantLLMConsent:  {"consent grant-llm", ""},
	kernel.KindRevokeLLMConsent: {"consent revoke-llm", ""},
	kernel.KindGrantStanding:    {"standing grant", ""},
	kernel.KindRevokeStanding:   {"standing revoke", ""},
	kernel.KindTransferQuota:    {"quota transfer", "POST /v1/quotas/transfer"},
	kernel.KindConsumeQuota:     {"quota consume", ""},
	kernel.KindMintRight:        {"right mint", ""},
	kernel.KindTransferRight:    {"right transfer", ""},
	kernel.KindSplitRight:       {"right split", ""},
	kernel.KindMergeRights:      {"right merge", ""},
	kernel.KindRedeemRight:      {"right redeem", ""},
}

// queryReach says where each query of the kernel (and each operation of
// the embedding program: principals, scrip, quotas) is reached: its HTTP
// route and its CLI command.
var queryReach = []struct{ query, route, cli string }{
	{"Principal, Quotas", "GET /v1/principals/{id}", "principal show"},
	{"PrincipalsPage", "GET /v1/principals", "principal list"},
	{"CreatePrincipal", "POST /v1/principals", "principal create"},
	{"Mint", "POST /v1/mint", "scrip mint"},
	{"Quotas", "GET /v1/principals/{id}/quotas", "quota show"},
	{"SetQuota", "PUT /v1/principals/{id}/quotas/{resource}", "quota set"},
	{"ListArtifacts, ArtifactsPage", "GET /v1/artifacts", "artifact ls"},
	{"Explain", "POST /v1/explain", "contract check"},
	{"RightsPage", "GET /v1/rights", "right ls"},
	{"EventsFor, Events", "GET /v1/events", "events tail"},
	{"EventsFor (one event)", "GET /v1/events/{seq}", "events show"},
	{"Audit", "GET /v1/totals", "totals"},
	{"Consent", "GET /v1/principals/{id}/consents/{contract...}", "consent show"},
	{"ConsentsPage", "GET /v1/principals/{id}/consents", "consent ls"},
	{"LLMConsent", "GET /v1/principals/{id}/llm_consents/{principal}", "consent show-llm"},
	{"StandingsPage, Standings", "GET /v1/principals/{id}/standings", "standing ls"},
}

// command returns the command at path ("artifact get") in root's tree, or
// nil.
func command(root *cobra.Command, path string) *cobra.Command {
	c, rest, err := root.Find(strings.Fields(path))
	if err != nil || len(rest) > 0 || c == root || c.CommandPath() != root.Name()+" "+path {
		return nil
	}
	return c
}

// routesOf returns the server's routes as "METHOD pattern".
func routesOf(s *server.Server) []string {
	var out []string
	for _, r := range s.Routes() {
		for _, m := range r.Methods {
			out = append(out, m+" "+r.Pattern)
		}
	}
	return out
}

// TestEveryActionReachable: every action kind of the kernel (kernel.Kinds)
// has an HTTP route that accepts it and a CLI command that performs it,
// with the mapping in actionReach: POST /v1/actions takes the kind (the
// kernel judges it: never 404, 405 or "unknown action kind", which a made-up
// kind gets), any other route named for it is registered, and its command
// exists, runs, and takes --as. No mapping names a kind the kernel does not
// know. Likewise every query in queryReach has its route and its command.
func TestEveryActionReachable(t *testing.T) {
	t.Parallel()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	a, _, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	tok, err := a.Issue("alice")
	require.NoError(t, err)
	s, err := server.New(server.Config{Kernel: w.K, Auth: a})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	routes := routesOf(s)
	root := newRootCmd(io.Discard, io.Discard)

	post := func(kind string) (int, api.Result) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/actions", strings.NewReader(`{"kind":"`+kind+`"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var r api.Result
		require.NoError(t, json.Unmarshal(b, &r), "%s", b)
		return resp.StatusCode, r
	}
	// The assertion below has teeth: a kind the kernel does not know is
	// refused as such.
	_, r := post("no_such_kind")
	require.Contains(t, r.Message, "unknown action kind")

	kinds := kernel.Kinds()
	require.NotEmpty(t, kinds)
	for _, k := range kinds {
		reach, ok := actionReach[k]
		require.True(t, ok, "action kind %s is not in actionReach: give it its CLI command (and any route besides POST /v1/actions)", k)

		status, r := post(string(k))
		require.NotEqual(t, http.StatusNotFound, status, "%s: %s", k, r.Message)
		require.NotEqual(t, http.StatusMethodNotAllowed, status, "%s: %s", k, r.Message)
		require.NotContains(t, r.Message, "unknown action kind", "POST /v1/actions takes %s", k)
		if reach.route != "" {
			require.Contains(t, routes, reach.route, "%s: route", k)
		}

		c := command(root, reach.cli)
		require.NotNil(t, c, "action kind %s has no CLI command %q", k, reach.cli)
		require.True(t, c.Runnable(), "%s", c.CommandPath())
		require.NotNil(t, c.Flags().Lookup("as"), "%s takes --as: it acts as a principal", c.CommandPath())
	}
	for k := range actionReach {
		require.True(t, slices.Contains(kinds, k), "actionReach names %q, which is no kernel action kind", k)
	}

	for _, q := range queryReach {
		require.Contains(t, routes, q.route, "query %s: route", q.query)
		c := command(root, q.cli)
		require.NotNil(t, c, "query %s has no CLI command %q", q.query, q.cli)
		require.True(t, c.Runnable(), "%s", c.CommandPath())
	}
}
