package ui_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/ui"
)

// TestHandler: the dashboard serves exactly its embedded files, with their
// media types, the CSP and revalidation by ETag; anything else is 404 and
// only GET and HEAD are answered.
func TestHandler(t *testing.T) {
	h := ui.New()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/ui/", 200, "text/html; charset=utf-8"},
		{"GET", "/ui/index.html", 200, "text/html; charset=utf-8"},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/ui/style.css", 200, "text/css; charset=utf-8"},
		{"HEAD", "/ui/api.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/ui", 301, ""},
		{"GET", "/ui/nope.js", 404, "text/plain; charset=utf-8"},
		{"GET", "/ui/static/app.js", 404, "text/plain; charset=utf-8"},
		{"GET", "/ui/../ui/app.js", 404, "text/plain; charset=utf-8"},
		{"GET", "/ui//app.js", 404, "text/plain; charset=utf-8"},
		{"GET", "/ui/ui.go", 404, "text/plain; charset=utf-8"},
		{"POST", "/ui/", 405, "text/plain; charset=utf-8"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, "http://x/", nil)
			req.URL.Path = tc.path // unclean on purpose: the handler must not clean it
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code)
			require.Equal(t, ui.CSP, rec.Header().Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
			if tc.ctype != "" {
				require.Equal(t, tc.ctype, rec.Header().Get("Content-Type"))
			}
			switch tc.status {
			case 200:
				require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
				require.NotEmpty(t, rec.Header().Get("ETag"))
				if tc.method == "HEAD" {
					require.Zero(t, rec.Body.Len())
				} else {
					require.NotZero(t, rec.Body.Len())
				}
			case 301:
				require.Equal(t, "/ui/", rec.Header().Get("Location"))
			}
		})
	}

	// An unchanged file costs a 304.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/app.js", nil))
	etag := rec.Header().Get("ETag")
	req := httptest.NewRequest("GET", "/ui/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotModified, rec.Code)
	require.Zero(t, rec.Body.Len())

	require.ElementsMatch(t, []string{"index.html", "app.js", "api.js", "charts.js", "vlist.js", "style.css"}, h.Names())
}

// TestNoExternalReferences: nothing in the dashboard names another origin
// (a font, a script, a CDN, an image): the CSP would block it, and an
// operator's dashboard must work offline. The SVG namespace is a name, not
// a request.
func TestNoExternalReferences(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := filepath.WalkDir("static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, m := range url.FindAllString(string(b), -1) {
			require.True(t, strings.HasPrefix(m, "http://www.w3.org"), "%s names %s", p, m)
		}
		// No inline script or style: the CSP refuses them.
		if strings.HasSuffix(p, ".html") {
			require.NotRegexp(t, `<script(?:[^>]*)>[^<]`, string(b), p)
			require.NotContains(t, string(b), "<style", p)
			require.NotContains(t, string(b), " style=", p)
			require.NotRegexp(t, ` on[a-z]+=`, string(b), p)
		}
		return nil
	})
	require.NoError(t, err)
}
