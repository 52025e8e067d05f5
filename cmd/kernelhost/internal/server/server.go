// Package server is kernelhost's HTTP API: JSON under /v1, bearer-token
// authentication, /healthz and /metrics. See docs/http.md.
//
// The caller of every action is the principal whose token authenticated the
// request; it is never read from the request body (kernel.DecodeAction
// rejects a "caller" field). The admin token acts as no principal: it may
// only create principals, mint scrip and set quotas.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/ui"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Defaults of Config.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxBodyBytes   = kernel.MaxActionJSON
	// MaxEventsPerPage caps GET /v1/events?limit=.
	MaxEventsPerPage = 1000
	// DefaultPage and MaxPage are the default and largest limit of the
	// other list routes (principals, rights).
	DefaultPage = 100
	MaxPage     = kernel.MaxPage

	DefaultFollowPoll           = 200 * time.Millisecond
	DefaultFollowHeartbeat      = 15 * time.Second
	DefaultFollowMaxDuration    = 30 * time.Minute
	DefaultFollowWriteTimeout   = 30 * time.Second
	DefaultMaxFollowers         = 256
	DefaultMaxFollowersPerToken = 4
)

// Pools reports the host's instance pools; *host.Host implements it.
type Pools interface{ Stats() host.Stats }

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Required.

	// Kernel runs the actions. The server does not close it.
	Kernel *kernel.Kernel
	// Auth authenticates bearer tokens and issues new principals' tokens.
	Auth *auth.Store

	// Usually changed.

	// Pools, when set, feeds the pool gauges of /metrics.
	Pools Pools
	// Logger receives one line per request. Nil discards.
	Logger *slog.Logger
	// RequestTimeout bounds the kernel work of one request. Default 30s.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a JSON request body. Default kernel.MaxActionJSON.
	MaxBodyBytes int64
	// MaxUploadBytes bounds the body of a raw upload (PUT
	// /v1/artifacts/{id}). Default the kernel's largest content
	// (kernel.ContentLimit(""), its MaxModuleBytes by default) plus
	// UploadMargin, so that every module the kernel accepts goes up.
	MaxUploadBytes int64
	// Now measures latencies. Default time.Now.
	Now func() time.Time

	// Rarely changed: live follows of GET /v1/events (events.go).

	// FollowPoll is how often a follow looks for new events. Default 200ms.
	FollowPoll time.Duration
	// FollowHeartbeat is the longest a follow stays silent: it then sends
	// an SSE comment, which also finds a client that has gone. Default 15s.
	FollowHeartbeat time.Duration
	// FollowMaxDuration ends a follow after this long; the client resumes
	// with Last-Event-ID (EventSource does so by itself). Default 30 min.
	FollowMaxDuration time.Duration
	// FollowWriteTimeout drops a follower that does not take a write
	// within it. Default 30s.
	FollowWriteTimeout time.Duration
	// MaxFollowers bounds the follows open at once (503 UNAVAILABLE
	// beyond), MaxFollowersPerToken those of one token. Defaults 256 and 4.
	MaxFollowers, MaxFollowersPerToken int

	// LLM, when set, is the gateway behind POST /v1/llm/chat (llm.go);
	// without it that route answers UNAVAILABLE.
	LLM *llm.Gateway
	// Store, when set, is the world's store, which GET /v1/snapshot
	// streams to the admin (snapshot.go); without it that route answers
	// UNAVAILABLE.
	Store store.Store

	// Failed authentication, per client address (authlimit.go): at most
	// AuthFailures failures, refilled over AuthFailureWindow, then 429
	// QUOTA_EXCEEDED with Retry-After for tokens the address has not
	// proven; the table holds MaxAuthAddresses addresses. Defaults 20,
	// 1 min, 10,000.
	AuthFailures      int
	AuthFailureWindow time.Duration
	MaxAuthAddresses  int
}

// Server is the HTTP API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	metrics *metrics
	routes  []Route // what routes() registered, for Routes
	follow  followers
	authLim *authLimiter // failed authentications per address (authlimit.go)
	ui      *ui.Handler  // the dashboard's static files under /ui/ (not an API route)
}

// Route is one registered endpoint: a ServeMux pattern and the methods it
// answers (HEAD too where it answers GET).
type Route struct {
	Pattern string
	Methods []string
}

// Routes returns every endpoint the server registered, in registration
// order. The OpenAPI document (GET /v1/openapi.json) describes exactly
// these (TestOpenAPICoversRoutes).
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// handle registers m at pattern and remembers the route.
func (s *Server) handle(pattern string, m methods) {
	ms := make([]string, 0, len(m))
	for k := range m {
		ms = append(ms, k)
	}
	slices.Sort(ms)
	s.routes = append(s.routes, Route{Pattern: pattern, Methods: ms})
	s.mux.Handle(pattern, m)
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Kernel == nil || cfg.Auth == nil {
		return nil, errors.New("server: Config.Kernel and Config.Auth are required")
	}
	if cfg.RequestTimeout < 0 || cfg.MaxBodyBytes < 0 || cfg.MaxUploadBytes < 0 || cfg.FollowPoll < 0 || cfg.FollowHeartbeat < 0 ||
		cfg.FollowMaxDuration < 0 || cfg.FollowWriteTimeout < 0 || cfg.MaxFollowers < 0 || cfg.MaxFollowersPerToken < 0 ||
		cfg.AuthFailures < 0 || cfg.AuthFailureWindow < 0 || cfg.MaxAuthAddresses < 0 {
		return nil, errors.New("server: negative limit in Config")
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = int64(cfg.Kernel.ContentLimit("")) + UploadMargin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.FollowPoll, DefaultFollowPoll)
	setDefault(&cfg.FollowHeartbeat, DefaultFollowHeartbeat)
	setDefault(&cfg.FollowMaxDuration, DefaultFollowMaxDuration)
	setDefault(&cfg.FollowWriteTimeout, DefaultFollowWriteTimeout)
	setDefault(&cfg.MaxFollowers, DefaultMaxFollowers)
	setDefault(&cfg.MaxFollowersPerToken, DefaultMaxFollowersPerToken)
	setDefault(&cfg.AuthFailures, DefaultAuthFailures)
	setDefault(&cfg.AuthFailureWindow, DefaultAuthFailureWindow)
	setDefault(&cfg.MaxAuthAddresses, DefaultMaxAuthAddresses)
	s := &Server{cfg: cfg, mux: http.NewServeMux(), metrics: newMetrics(), ui: ui.New()}
	s.follow.init()
	s.authLim = newAuthLimiter(cfg.Now, cfg.AuthFailures, cfg.AuthFailureWindow, cfg.MaxAuthAddresses)
	s.register()
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// methods dispatches by HTTP method, answering others with a JSON 405.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	if r.Method == http.MethodHead {
		if h, ok := m[http.MethodGet]; ok {
			h(w, r)
			return
		}
	}
	allow := make([]string, 0, len(m))
	for k := range m {
		allow = append(allow, k)
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, api.NewError(abi.InvalidArgument, fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))))
}

// register registers every route. Each goes through handle, so that
// Routes (and the test that holds the OpenAPI document to them) sees it.
func (s *Server) register() {
	s.handle("/healthz", methods{http.MethodGet: s.healthz})
	s.handle("/metrics", methods{http.MethodGet: s.metricsHandler})
	s.handle("/v1/openapi.json", methods{http.MethodGet: s.openAPI})
	s.handle("/v1/actions", methods{http.MethodPost: s.principal(s.postAction)})
	s.handle("/v1/explain", methods{http.MethodPost: s.principal(s.postExplain)})
	s.artifactRoutes()
	s.handle("/v1/principals", methods{
		http.MethodGet:  s.anyone(s.listPrincipals),
		http.MethodPost: s.admin(s.createPrincipal),
	})
	s.handle("/v1/principals/{id}", methods{http.MethodGet: s.anyone(s.getPrincipal)})
	s.handle("/v1/mint", methods{http.MethodPost: s.admin(s.mint)})
	s.handle("/v1/totals", methods{http.MethodGet: s.admin(s.totals)})
	s.handle("/v1/snapshot", methods{http.MethodGet: s.admin(s.snapshot)})
	s.eventRoutes()
	s.quotaRoutes()
	s.rightRoutes()
	s.grantRoutes()
	s.llmRoutes()
	s.tokenRoutes() // tokens.go
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, api.NewError(abi.NotFound, fmt.Sprintf("no endpoint %s: see docs/http.md", r.URL.Path)))
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (a follow
// flushes and sets write deadlines through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// canonicalPath reports whether p is a path as path.Clean writes it: no
// "." or ".." segments, no empty segments, no trailing slash (but "/").
// Only such paths are served: net/http's ServeMux would redirect any other
// to its cleaned form, so that a client following the redirect acts on
// another resource than the one it named ("/v1/artifacts/a/../b" is b).
func canonicalPath(p string) bool {
	return p == "/" || strings.HasPrefix(p, "/") && path.Clean(p) == p
}

// jsonOnly stands between the mux and the client: the server never
// redirects and every error body is JSON. ServeMux answers a path that
// lacks a subtree's trailing slash ("/v1/artifacts") with a redirect and an
// HTML body, and its own errors in plain text; jsonOnly replaces such an
// answer with the JSON error of its status (a redirect becomes 404).
type jsonOnly struct {
	http.ResponseWriter
	path     string
	replaced bool // the answer was replaced: drop what the handler writes
}

func (j *jsonOnly) WriteHeader(code int) {
	if j.replaced {
		return
	}
	h := j.Header()
	redirect := code >= 300 && code < 400
	if redirect || code >= 400 && !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		j.replaced = true
		h.Del("Location")
		h.Del("Content-Length")
		var e api.Error
		switch {
		case redirect || code == http.StatusNotFound:
			code, e = http.StatusNotFound, api.NewError(abi.NotFound, fmt.Sprintf("no endpoint %s: see docs/http.md", j.path))
		case code >= 500:
			e = api.NewError(abi.Internal, http.StatusText(code))
		default:
			e = api.NewError(abi.InvalidArgument, http.StatusText(code))
		}
		writeError(j.ResponseWriter, code, e)
		return
	}
	j.ResponseWriter.WriteHeader(code)
}

func (j *jsonOnly) Write(b []byte) (int, error) {
	if j.replaced {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (j *jsonOnly) Unwrap() http.ResponseWriter { return j.ResponseWriter }

// ServeHTTP serves one request under the request timeout, logging it and
// turning a panic into a JSON 500. A path that is not canonical is 400
// INVALID_ARGUMENT: it is never cleaned or redirected. A live follow of
// the events runs without the request timeout, bounded by its own limits
// (Config.Follow*); an LLM call under the gateway's own timeout.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	ctx, cancel := r.Context(), context.CancelFunc(func() {})
	if !isFollow(r) && !isLLM(r) {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
	}
	defer cancel()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.cfg.Logger.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, api.NewError(abi.Internal, "internal error"))
			}
		}
		s.metrics.request(sw.status)
		// Enabled first: the arguments would be boxed (allocated) on every
		// request even when the level drops the line (the default).
		if s.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
			s.cfg.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"duration", s.cfg.Now().Sub(start), "remote", r.RemoteAddr)
		}
	}()
	if ui.Owns(r.URL.Path) {
		// The dashboard's static files (docs/dashboard.md): no token, no
		// kernel work; ui.Handler serves only its own files by exact name.
		s.ui.ServeHTTP(sw, r)
		return
	}
	if !canonicalPath(r.URL.Path) {
		writeError(sw, http.StatusBadRequest, api.NewError(abi.InvalidArgument,
			fmt.Sprintf("path %.200q is not canonical: no empty, . or .. segments and no trailing /; ids follow the same rule", r.URL.Path)))
		return
	}
	ctx, ok := s.authLim.admit(ctx, sw, r) // authlimit.go: 429 past the address's failed authentications
	if !ok {
		return
	}
	s.mux.ServeHTTP(&jsonOnly{ResponseWriter: sw, path: r.URL.Path}, r.WithContext(ctx))
}

// writeJSON writes v as the JSON body of an answer with status: compact,
// one line, encoded whole into a pooled buffer and written once with its
// Content-Length (see encode.go).
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	if err := encodeJSON(buf, v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = encodeJSON(buf, api.NewError(abi.Internal, "encode response: "+err.Error()))
	}
	writeBody(w, status, buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, e api.Error) {
	if status == http.StatusUnauthorized && e.ErrorCode != abi.Unauthenticated.String() {
		// identity's refusals past authentication (a token's scope) are
		// written by callers that answer every refusal 401: give their own.
		c, _ := abi.ParseCode(e.ErrorCode)
		status = api.Status(c, e.Retriable)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kernelhost"`)
	}
	writeJSON(w, status, e)
}

// writeErr writes err with the status of its code.
func writeErr(w http.ResponseWriter, err error) {
	e := api.ErrorOf(err)
	c, _ := abi.ParseCode(e.ErrorCode)
	writeError(w, api.Status(c, e.Retriable), e)
}

// writeResult writes a result that is not a raw read: with the status of
// its code and, for a QUOTA_EXCEEDED that waiting cures, Retry-After in
// whole seconds (none for one that no wait cures).
func writeResult(w http.ResponseWriter, res kernel.Result) {
	if res.Code == abi.QuotaExceeded && res.Retriable && res.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(res.RetryAfter.Seconds())), 10))
	}
	writeJSON(w, api.ResultStatus(res), api.ResultOf(res))
}

// identity authenticates r's bearer token.
func (s *Server) identity(r *http.Request) (auth.Identity, *api.Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		e := api.NewError(abi.Unauthenticated, "missing bearer token: send 'Authorization: Bearer <token>'")
		return auth.Identity{}, &e
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		e := api.NewError(abi.Unauthenticated, "malformed Authorization header: send 'Authorization: Bearer <token>'")
		return auth.Identity{}, &e
	}
	id, ok, err := s.cfg.Auth.Lookup(strings.TrimSpace(tok))
	if err != nil {
		// The tokens could not be read: no verdict on this token, so it
		// neither fails authentication nor counts against the address.
		s.cfg.Logger.Error("read tokens", "err", err)
		e := api.NewError(abi.Unavailable, "the tokens could not be read: retry")
		return auth.Identity{}, &e
	}
	noteAuth(r, ok) // authlimit.go
	if !ok {
		e := api.NewError(abi.Unauthenticated, "unknown or revoked token")
		return auth.Identity{}, &e
	}
	if e := s.authorize(r, id); e != nil { // tokens.go: expiry, the route's scope
		return auth.Identity{}, e
	}
	return id, nil
}

// principal admits requests authenticated as a principal and passes it on.
func (s *Server) principal(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, e := s.identity(r)
		if e != nil {
			writeError(w, http.StatusUnauthorized, *e)
			return
		}
		if id.Admin {
			writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied, "the admin token acts as no principal: use a principal's token for actions"))
			return
		}
		h(w, withIdentity(r, id), id.Principal) // tokens.go: act reads it
	}
}

// admin admits requests authenticated with the admin token.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, e := s.identity(r)
		if e != nil {
			writeError(w, http.StatusUnauthorized, *e)
			return
		}
		if !id.Admin {
			writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied, "this endpoint needs the admin token"))
			return
		}
		h(w, r)
	}
}

// anyone admits any authenticated request.
func (s *Server) anyone(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, e := s.identity(r); e != nil {
			writeError(w, http.StatusUnauthorized, *e)
			return
		}
		h(w, r)
	}
}

// readBody reads r's body within MaxBodyBytes, writing the error response
// itself when it fails.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, api.NewError(abi.InvalidArgument,
				fmt.Sprintf("request body exceeds %d bytes: send smaller content", s.cfg.MaxBodyBytes)))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "read request body: "+err.Error()))
		return nil, false
	}
	return b, true
}

// decodeJSON decodes a small admin body strictly into v: no unknown field,
// no key twice, and names exactly as v's json tags spell them (encoding/json
// would also take "ID" for "id", the last of the two winning).
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := s.readBody(w, r)
	if !ok {
		return false
	}
	if err := kernel.CheckDuplicateKeys(b); err != nil {
		writeErr(w, err)
		return false
	}
	if err := exactNames(b, v); err != nil {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, err.Error()))
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "malformed JSON body: "+err.Error()))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "trailing data after the JSON body"))
		return false
	}
	return true
}

// exactNames fails if b is an object with a key that is no json tag name of
// struct *v. Other shapes are left to the decoder.
func exactNames(b []byte, v any) error {
	var probe map[string]json.RawMessage
	if json.Unmarshal(b, &probe) != nil {
		return nil
	}
	t := reflect.TypeOf(v).Elem()
	names := make(map[string]bool, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	for k := range probe {
		if !names[k] {
			return fmt.Errorf("unknown field %.64q in the JSON body", k)
		}
	}
	return nil
}

// do runs a as caller under the request's token (act: its scopes and
// caps), recording metrics, and writes the result.
func (s *Server) do(w http.ResponseWriter, r *http.Request, a kernel.Action) {
	if res, ok := s.act(w, r, a); ok {
		writeResult(w, res)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.cfg.Kernel.Totals(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	var pools *host.Stats
	if s.cfg.Pools != nil {
		st := s.cfg.Pools.Stats()
		pools = &st
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if err := s.metrics.write(w, pools, s.cfg.Kernel.CommitStats()); err != nil {
		s.cfg.Logger.Warn("write metrics", "err", err)
	}
	if err := writeLLMMetrics(w, s.cfg.LLM); err != nil {
		s.cfg.Logger.Warn("write metrics", "err", err)
	}
}

func (s *Server) postAction(w http.ResponseWriter, r *http.Request, caller string) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	a, err := kernel.DecodeAction(body)
	if err != nil {
		writeErr(w, err)
		return
	}
	a.Caller = caller // bound by authentication, never by the body
	s.do(w, r, a)
}

func (s *Server) postExplain(w http.ResponseWriter, r *http.Request, caller string) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	a, err := kernel.DecodeAction(body)
	if err != nil {
		writeErr(w, err)
		return
	}
	a.Caller = caller
	id, _ := identityOf(r)
	hold, ok := s.reserveCPU(w, id) // tokens.go: a cap on cpu_rate
	if !ok {
		return
	}
	start := s.cfg.Now()
	ex, err := s.cfg.Kernel.Explain(r.Context(), a)
	s.settleCPU(id, hold, ex.CPU)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ExplanationOf(ex, caller, s.cfg.Now().Sub(start)))
}

// getArtifact answers GET /v1/artifacts/{id}: a read. Its query takes
// format=raw, max_cost and request_id, each at most once, and nothing else:
// a parameter it ignored would be a price cap the caller believes in and
// the kernel never sees.
func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request, caller string) {
	a := kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: r.PathValue("id")}
	q, qerr := url.ParseQuery(r.URL.RawQuery)
	if qerr != nil {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "malformed query: "+qerr.Error()))
		return
	}
	for k, vs := range q {
		if len(vs) != 1 {
			writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, fmt.Sprintf("query parameter %q given %d times", k, len(vs))))
			return
		}
		switch v := vs[0]; k {
		case "format":
			if v != "raw" && v != "json" {
				writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "format is raw or json"))
				return
			}
		case "max_cost":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "max_cost must be a non-negative integer"))
				return
			}
			a.MaxCost = &n
		case "request_id":
			a.RequestID = v
		default:
			writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, fmt.Sprintf("unknown query parameter %.64q: the read takes format, max_cost and request_id", k)))
			return
		}
	}
	if q.Get("format") != "raw" {
		s.do(w, r, a)
		return
	}
	res, ok := s.act(w, r, a)
	if !ok {
		return
	}
	if !res.OK {
		writeResult(w, res)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Kernelhost-Revision", strconv.FormatUint(res.Revision, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Content)
}

// PrincipalsResponse is the answer to GET /v1/principals: one page, and
// the cursor of the next when there is one.
type PrincipalsResponse struct {
	Principals []kernel.Principal `json:"principals"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// listPrincipals answers GET /v1/principals?limit=&cursor=: a page of the
// principals in id order (kernel.PrincipalsPage), never all at once.
func (s *Server) listPrincipals(w http.ResponseWriter, r *http.Request) {
	pg, e := parsePage(r, 1)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	ps, more, err := s.cfg.Kernel.PrincipalsPage(r.Context(), pg.after[0], pg.limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := PrincipalsResponse{Principals: ps}
	if resp.Principals == nil {
		resp.Principals = []kernel.Principal{}
	}
	if more {
		resp.NextCursor = encodeCursor(ps[len(ps)-1].ID)
	}
	writeJSON(w, http.StatusOK, resp)
}

// PrincipalView is the body of GET /v1/principals/{id}. OK is always true:
// like every other answer, a success says so (errors carry ok false).
type PrincipalView struct {
	OK bool `json:"ok"`
	kernel.Principal
	Quotas []kernel.QuotaStatus `json:"quotas,omitempty"`
}

func (s *Server) getPrincipal(w http.ResponseWriter, r *http.Request) {
	v, err := s.principalView(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// CreatePrincipalRequest is the body of POST /v1/principals.
type CreatePrincipalRequest struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

// CreatePrincipalResponse is the answer to POST /v1/principals. Token is
// shown this once.
type CreatePrincipalResponse struct {
	OK        bool             `json:"ok"`
	Principal kernel.Principal `json:"principal"`
	Token     string           `json:"token"`
}

func (s *Server) createPrincipal(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if jsonList(body) { // principals_bulk.go: a list, in one transaction
		s.createPrincipals(w, r, body)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	var req CreatePrincipalRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	if req.Balance < 0 {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "balance must not be negative"))
		return
	}
	// The principal and its token in one transaction (principals_bulk.go).
	toks, ok := s.createWithTokens(w, r, []kernel.NewPrincipal{{ID: req.ID, Balance: uint64(req.Balance)}})
	if !ok {
		return
	}
	tok := toks[0]
	p, err := s.cfg.Kernel.Principal(r.Context(), req.ID)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.cfg.Logger.Info("principal created", "principal", req.ID, "balance", req.Balance)
	writeJSON(w, http.StatusCreated, CreatePrincipalResponse{OK: true, Principal: p, Token: tok})
}

// MintRequest is the body of POST /v1/mint.
type MintRequest struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
}

func (s *Server) mint(w http.ResponseWriter, r *http.Request) {
	var req MintRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	if err := s.cfg.Kernel.Mint(r.Context(), req.ID, req.Amount); err != nil {
		writeErr(w, err)
		return
	}
	p, err := s.cfg.Kernel.Principal(r.Context(), req.ID)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.cfg.Logger.Info("minted", "principal", req.ID, "amount", req.Amount)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "principal": p})
}
