package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/ui"
)

// TestDashboardMounted: the server answers the dashboard's files under
// /ui/ (no token: they are static and carry no data; the page asks the
// API for everything with the token it was given), with the dashboard's
// CSP; a name it does not hold is 404 there, and nothing of the API
// changes: /ui/ is no API route (Routes, and so the OpenAPI document,
// leave it out), and every other path is answered as before.
func TestDashboardMounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	get := func(path string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := e.srv.Client().Transport.RoundTrip(req) // no redirect followed
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	for _, tc := range []struct {
		path, ctype string
		status      int
	}{
		{"/ui/", "text/html; charset=utf-8", http.StatusOK},
		{"/ui/app.js", "text/javascript; charset=utf-8", http.StatusOK},
		{"/ui/style.css", "text/css; charset=utf-8", http.StatusOK},
		{"/ui/missing.js", "text/plain; charset=utf-8", http.StatusNotFound},
		{"/ui", "", http.StatusMovedPermanently},
	} {
		resp, body := get(tc.path)
		require.Equal(t, tc.status, resp.StatusCode, tc.path)
		require.Equal(t, ui.CSP, resp.Header.Get("Content-Security-Policy"), tc.path)
		if tc.ctype != "" {
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"), tc.path)
		}
		if tc.path == "/ui/" {
			require.Contains(t, body, `<script type="module" src="app.js">`)
		}
	}
	// The API is unchanged around it.
	resp, body := get("/uix")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, body, `"error_code":"NOT_FOUND"`)
	resp, _ = get("/v1/principals")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the API still needs a token")
	for _, r := range e.s.Routes() {
		require.False(t, strings.HasPrefix(r.Pattern, "/ui"), "the dashboard is not an API route: %s", r.Pattern)
	}
}
