package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

// openAPIDoc is the part of an OpenAPI document the test reads.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// TestOpenAPICoversRoutes: GET /v1/openapi.json (no token) answers the
// OpenAPI 3 document; every route the server registers is in it with each
// of its methods, every path and method in it is a registered route, and a
// request to each documented operation reaches its handler (no "no
// endpoint" 404, no 405). Every $ref resolves.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	resp, err := e.srv.Client().Get(e.srv.URL + "/v1/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc openAPIDoc
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), doc.OpenAPI)

	// The routes as OpenAPI paths: {id...} is {id}.
	registered := map[string][]string{}
	for _, r := range e.s.Routes() {
		p := strings.ReplaceAll(r.Pattern, "...}", "}")
		for _, m := range r.Methods {
			registered[p] = append(registered[p], strings.ToLower(m))
		}
	}
	require.NotEmpty(t, registered)
	documented := map[string][]string{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			documented[p] = append(documented[p], m)
		}
	}
	for _, m := range []map[string][]string{registered, documented} {
		for p := range m {
			slices.Sort(m[p])
		}
	}
	for p, ms := range registered {
		require.Contains(t, documented, p, "route %s is not in openapi.json", p)
		require.Equal(t, ms, documented[p], "methods of %s", p)
	}
	for p, ms := range documented {
		require.Contains(t, registered, p, "openapi.json documents %s, which is no route", p)
		require.Equal(t, registered[p], ms, "methods of %s", p)
	}

	// Each documented operation reaches a handler.
	param := regexp.MustCompile(`\{[a-z]+\}`)
	samples := map[string]string{"{id}": "alice", "{seq}": "1", "{resource}": "llm_rate"}
	for p, ms := range documented {
		path := param.ReplaceAllStringFunc(p, func(s string) string { return samples[s] })
		for _, m := range ms {
			status, b := e.raw(t, strings.ToUpper(m), path, e.admin, "{}")
			require.NotEqual(t, http.StatusMethodNotAllowed, status, "%s %s: %s", m, path, b)
			if status == http.StatusNotFound {
				var ae api.Error
				require.NoError(t, json.Unmarshal(b, &ae))
				require.NotContains(t, ae.Message, "no endpoint", "%s %s", m, path)
			}
		}
	}

	// Routes sees every route: nothing registers past handle.
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	direct := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		direct += strings.Count(string(b), "mux.Handle(")
	}
	require.Equal(t, 1, direct, "register routes with s.handle, so that Routes and this test see them")

	// Every $ref names a component that exists.
	raw := server.OpenAPI()
	var all map[string]any
	require.NoError(t, json.Unmarshal(raw, &all))
	comps := all["components"].(map[string]any)
	for _, m := range regexp.MustCompile(`"\$ref": *"#/components/([a-zA-Z]+)/([a-zA-Z]+)"`).FindAllStringSubmatch(string(raw), -1) {
		kind, ok := comps[m[1]].(map[string]any)
		require.True(t, ok, m[0])
		require.Contains(t, kind, m[2], m[0])
	}
}
