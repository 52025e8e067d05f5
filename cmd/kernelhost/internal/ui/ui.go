// Package ui is kernelhost's web dashboard: static HTML, CSS and ES modules
// written by hand (no build step), embedded in the binary and served by
// 'kernelhost serve' under /ui/. The dashboard is a client of the public
// HTTP API like any other: it holds the token it was given in the
// browser's sessionStorage and sends it as a bearer token; the server gives
// these files no privilege. See docs/dashboard.md.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every file: scripts, styles,
// images and connections only from the server itself (nothing external:
// no CDN, font or analytics request can leave the page), no inline script
// or style, no framing (clickjacking), no forms posting elsewhere, no
// <base> rewriting relative URLs.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes maps the extensions of the embedded files to their media
// types, so that nothing depends on the host's mime tables; a file of
// another extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the dashboard: the files under static/ at Prefix+name
// (Prefix itself is index.html), GET and HEAD only. It serves exactly the
// embedded files, looked up by name in a table built once: no directory
// listing, no path cleaning, nothing outside the table (a "..", an empty
// segment or an unknown name is 404). Every answer carries the CSP, nosniff
// and no-referrer; files are revalidated with their ETag (a sha256 of the
// content), so a new binary's dashboard is picked up at once and an
// unchanged one costs a 304.
type Handler struct {
	assets map[string]asset
}

// New returns the dashboard's handler.
func New() *Handler {
	h := &Handler{assets: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.assets[strings.TrimPrefix(p, "static/")] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: embedded files: " + err.Error()) // the embed is fixed at build time
	}
	return h
}

// Owns reports whether the dashboard answers path p (Prefix and below, and
// Prefix without its slash, which redirects to it).
func Owns(p string) bool { return p == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(p, Prefix) }

// Names returns the names of the files served, for tests.
func (h *Handler) Names() []string {
	out := make([]string, 0, len(h.assets))
	for n := range h.assets {
		out = append(out, n)
	}
	return out
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the dashboard is static", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		hd.Set("Location", Prefix)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("no such dashboard file\n"))
		return
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(a.body)
	}
}
