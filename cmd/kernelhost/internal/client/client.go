// Package client is a client of kernelhost's HTTP API (docs/http.md), for
// the CLI's --server mode: every request carries one bearer token, and the
// caller of every action is the principal of that token, bound by the
// server. The client never sends a caller: an action goes out as
// kernel.EncodeAction writes it, which has no caller field.
//
// Answers decode into the shapes the server writes (package api's Result,
// Explanation and Error, package server's responses), so that the CLI
// prints the same JSON in both modes.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// Limits of one exchange.
const (
	// MaxAnswerBytes bounds an answer body the client reads: a read's
	// content (kernel.MaxActionJSON, base64 and repeated as text) and a
	// page of a list fit with room to spare; a larger answer is not
	// kernelhost's.
	MaxAnswerBytes = 4*kernel.MaxActionJSON + 1<<20
	// DefaultTimeout bounds one request (not a follow) unless the
	// context ends it first: the server bounds its own work by
	// --request-timeout (30s by default); this only keeps a stuck server
	// or network from hanging the CLI.
	DefaultTimeout = 5 * time.Minute
)

// Client talks to one kernelhost server with one token. It is safe for
// concurrent use.
type Client struct {
	base  *url.URL // scheme, host and an optional path prefix, without a trailing slash
	token string
	hc    *http.Client
	// Timeout bounds each request but follows; zero means DefaultTimeout.
	Timeout time.Duration
}

// ParseServer checks a --server URL: http or https, a host, no user
// information (a password in it would travel in the clear and land in
// shell history; tokens go in the Authorization header), no query or
// fragment. A path is kept as a prefix (a server behind a reverse proxy
// under /kh). It returns the URL without a trailing slash.
func ParseServer(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("--server %q is not a URL: use http://HOST:PORT or https://HOST", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("--server %q: use an http:// or https:// URL (e.g. http://127.0.0.1:8080)", s)
	case u.Host == "":
		return nil, fmt.Errorf("--server %q names no host: use http://HOST:PORT", s)
	case u.User != nil:
		return nil, fmt.Errorf("--server: a URL with user information is refused (it would be sent and logged): give the token with KERNELHOST_TOKEN or a context")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("--server %q: give the server's base URL, without a query or fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Loopback reports whether u's host is a loopback address or localhost:
// where a token sent over plain http never leaves the machine.
func Loopback(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// New returns a client of the server at base (see ParseServer) with token.
// hc nil means a client of its own. Redirects are never followed: a
// kernelhost server never redirects (docs/http.md), and following one
// would send the request, the token included, where the user did not say.
func New(base, token string, hc *http.Client) (*Client, error) {
	u, err := ParseServer(base)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("no token: set KERNELHOST_TOKEN, or use a context with a token (see 'kernelhost --help')")
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("the token holds white space: give it exactly as printed (kh_ and 64 hex digits)")
	}
	var c http.Client
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: u, token: token, hc: &c}, nil
}

// Server returns the server's base URL.
func (c *Client) Server() string { return c.base.String() }

// Error is a failure answered by the server (or an answer that is not
// kernelhost's), with the HTTP status. Code makes api.CodeOf see its
// stable code.
type Error struct {
	Status int
	// API is the error as the server sent it (or as the client made it
	// up for an answer that was none).
	API api.Error
	// RetryAfter is the answer's Retry-After, when it had one.
	RetryAfter time.Duration
}

// Error returns "CODE: message".
func (e *Error) Error() string { return e.API.ErrorCode + ": " + e.API.Message }

// Code returns the error's stable code (INTERNAL for one it does not know).
func (e *Error) Code() abi.Code {
	if c, ok := abi.ParseCode(e.API.ErrorCode); ok {
		return c
	}
	return abi.Internal
}

// url returns the URL of path (which starts with /v1/ or /) with query q.
// path is not escaped: ids go in as they are (a right's id holds '/', which
// the server's {id...} routes take as it is), and the URL escapes what a
// path cannot hold.
func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// request sends one request and returns the answer's status, headers and
// body (at most MaxAnswerBytes), or the transport's error.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body []byte, contentType string) (int, http.Header, []byte, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
	if err != nil {
		return 0, nil, nil, err
	}
	c.header(req)
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, c.transportError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return 0, nil, nil, c.transportError(err)
	}
	if len(b) > MaxAnswerBytes {
		return 0, nil, nil, &Error{Status: resp.StatusCode, API: api.NewError(abi.Internal,
			fmt.Sprintf("%s answered more than %d bytes to %s %s: is it a kernelhost server?", c.base.Host, MaxAnswerBytes, method, path))}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return 0, nil, nil, &Error{Status: resp.StatusCode, API: api.NewError(abi.Internal,
			fmt.Sprintf("%s answered %s %s with a redirect (%d to %q), which kernelhost servers never send: check --server",
				c.base.Host, method, path, resp.StatusCode, resp.Header.Get("Location")))}
	}
	return resp.StatusCode, resp.Header, b, nil
}

func (c *Client) header(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kernelhost-cli")
}

// transportError says that the server could not be reached, naming it.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is named once, below
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &Error{Status: 0, API: api.NewError(abi.Unavailable, fmt.Sprintf("cannot reach the server at %s: %v", c.base.Redacted(), err))}
}

// answerError turns a failed answer into an *Error: its JSON error body
// when it has one, else a description of what came.
func answerError(status int, h http.Header, b []byte, what string) error {
	e := &Error{Status: status}
	if err := json.Unmarshal(b, &e.API); err != nil || e.API.ErrorCode == "" {
		code := abi.Internal
		switch {
		case status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
			code = abi.Unavailable
		case status == http.StatusUnauthorized:
			code = abi.Unauthenticated
		}
		snippet := strings.TrimSpace(string(b))
		if len(snippet) > 120 {
			snippet = snippet[:120] + "…"
		}
		e.API = api.NewError(code, fmt.Sprintf("%s: the server answered %d (%s) without a kernelhost error: %q", what, status, h.Get("Content-Type"), snippet))
	}
	if s := h.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// call sends a JSON request (body nil: none) and decodes a 2xx answer
// into out; any other answer is an *Error.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	status, h, b, err := c.request(ctx, method, path, q, body, "")
	if err != nil {
		return err
	}
	what := method + " " + path
	if status < 200 || status >= 300 {
		return answerError(status, h, b, what)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &Error{Status: status, API: api.NewError(abi.Internal, fmt.Sprintf("%s: the answer is not what a kernelhost server sends: %v", what, err))}
	}
	return nil
}

// Do performs action a as the token's principal (POST /v1/actions) and
// returns its result, failed or not. The error is for what is not a
// result: the server unreachable, or an answer that is no result.
func (c *Client) Do(ctx context.Context, a kernel.Action) (api.Result, error) {
	a.Caller = "" // never sent: EncodeAction leaves it out anyway
	body, err := kernel.EncodeAction(a)
	if err != nil {
		return api.Result{}, err
	}
	status, h, b, err := c.request(ctx, http.MethodPost, "/v1/actions", nil, body, "")
	if err != nil {
		return api.Result{}, err
	}
	var res api.Result
	if json.Unmarshal(b, &res) != nil || (!res.OK && res.ErrorCode == "") || (res.OK != (status/100 == 2)) {
		return api.Result{}, answerError(status, h, b, "POST /v1/actions")
	}
	return res, nil
}

// Explain judges a without effect (POST /v1/explain).
func (c *Client) Explain(ctx context.Context, a kernel.Action) (api.Explanation, error) {
	a.Caller = ""
	body, err := kernel.EncodeAction(a)
	if err != nil {
		return api.Explanation{}, err
	}
	var ex api.Explanation
	status, h, b, err := c.request(ctx, http.MethodPost, "/v1/explain", nil, body, "")
	if err != nil {
		return api.Explanation{}, err
	}
	if status != http.StatusOK {
		return api.Explanation{}, answerError(status, h, b, "POST /v1/explain")
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		return api.Explanation{}, &Error{Status: status, API: api.NewError(abi.Internal, "POST /v1/explain: the answer is no explanation: "+err.Error())}
	}
	return ex, nil
}

// Identity is whom a token stands for.
type Identity struct {
	Principal string // "" for the admin token
	Admin     bool
}

// adminRefusal is the start of the server's answer to the admin token on
// a principal's route.
const adminRefusal = "the admin token acts as no principal"

// Whoami returns the token's identity: GET /v1/quotas answers a
// principal's token with its own quotas, naming it, and refuses the admin
// token (which acts as no principal) with 403.
func (c *Client) Whoami(ctx context.Context) (Identity, error) {
	var q server.QuotasResponse
	err := c.call(ctx, http.MethodGet, "/v1/quotas", nil, nil, &q)
	var e *Error
	switch {
	case err == nil && q.Principal != "":
		return Identity{Principal: q.Principal}, nil
	case err == nil:
		return Identity{}, &Error{Status: http.StatusOK, API: api.NewError(abi.Internal, "GET /v1/quotas named no principal: is it a kernelhost server?")}
	case errors.As(err, &e) && e.Status == http.StatusForbidden && strings.HasPrefix(e.API.Message, adminRefusal):
		return Identity{Admin: true}, nil
	}
	return Identity{}, err
}

// Principal returns principal id with its quotas.
func (c *Client) Principal(ctx context.Context, id string) (server.PrincipalView, error) {
	var v server.PrincipalView
	err := c.call(ctx, http.MethodGet, "/v1/principals/"+id, nil, nil, &v)
	return v, err
}

// page returns the query of a page: limit, and cursor unless "".
func page(cursor string, limit int) url.Values {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

// Principals returns every principal, following the cursors of
// GET /v1/principals.
func (c *Client) Principals(ctx context.Context) ([]kernel.Principal, error) {
	out := []kernel.Principal{}
	cursor := ""
	for {
		var r server.PrincipalsResponse
		if err := c.call(ctx, http.MethodGet, "/v1/principals", page(cursor, server.MaxPage), nil, &r); err != nil {
			return nil, err
		}
		out = append(out, r.Principals...)
		if r.NextCursor == "" {
			return out, nil
		}
		cursor = r.NextCursor
	}
}

// CreatePrincipal creates principal id with balance (admin token) and
// returns it with its token, shown this once.
func (c *Client) CreatePrincipal(ctx context.Context, id string, balance int64) (server.CreatePrincipalResponse, error) {
	var r server.CreatePrincipalResponse
	err := c.call(ctx, http.MethodPost, "/v1/principals", nil, server.CreatePrincipalRequest{ID: id, Balance: balance}, &r)
	return r, err
}

// CreateToken creates a named token of principal id (its unrestricted
// token, or the admin token) and returns it with its secret, shown once.
func (c *Client) CreateToken(ctx context.Context, id string, req server.CreateTokenRequest) (server.CreateTokenResponse, error) {
	var r server.CreateTokenResponse
	err := c.call(ctx, http.MethodPost, "/v1/principals/"+url.PathEscape(id)+"/tokens", nil, req, &r)
	return r, err
}

// Tokens lists principal id's tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context, id string) ([]auth.Token, error) {
	var r server.TokensResponse
	err := c.call(ctx, http.MethodGet, "/v1/principals/"+url.PathEscape(id)+"/tokens", nil, nil, &r)
	return r.Tokens, err
}

// RevokeToken revokes principal id's token name.
func (c *Client) RevokeToken(ctx context.Context, id, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/principals/"+url.PathEscape(id)+"/tokens/"+url.PathEscape(name), nil, nil, nil)
}

// Mint mints amount scrip to principal id (admin token) and returns it.
func (c *Client) Mint(ctx context.Context, id string, amount int64) (kernel.Principal, error) {
	var r struct {
		Principal kernel.Principal `json:"principal"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/mint", nil, server.MintRequest{ID: id, Amount: amount}, &r)
	return r.Principal, err
}

// Quotas returns principal id's quotas.
func (c *Client) Quotas(ctx context.Context, id string) ([]kernel.QuotaStatus, error) {
	var r server.QuotasResponse
	err := c.call(ctx, http.MethodGet, "/v1/principals/"+id+"/quotas", nil, nil, &r)
	return r.Quotas, err
}

// SetQuota sets principal id's quota of res (admin token) and returns the
// new status.
func (c *Client) SetQuota(ctx context.Context, id string, res kernel.Resource, quota int64) (kernel.QuotaStatus, error) {
	var r struct {
		Quota kernel.QuotaStatus `json:"quota"`
	}
	err := c.call(ctx, http.MethodPut, "/v1/principals/"+id+"/quotas/"+string(res), nil, server.SetQuotaRequest{Quota: quota}, &r)
	return r.Quota, err
}

// Rights returns holder's rights (holder "": the token's own, or with the
// admin token every principal's), following the cursors of GET /v1/rights.
func (c *Client) Rights(ctx context.Context, holder string) ([]kernel.Right, error) {
	out := []kernel.Right{}
	cursor := ""
	for {
		q := page(cursor, server.MaxPage)
		if holder != "" {
			q.Set("holder", holder)
		}
		var r server.RightsResponse
		if err := c.call(ctx, http.MethodGet, "/v1/rights", q, nil, &r); err != nil {
			return nil, err
		}
		out = append(out, r.Rights...)
		if r.NextCursor == "" {
			return out, nil
		}
		cursor = r.NextCursor
	}
}

// Totals returns the world's totals (admin token).
func (c *Client) Totals(ctx context.Context) (server.TotalsResponse, error) {
	var r server.TotalsResponse
	err := c.call(ctx, http.MethodGet, "/v1/totals", nil, nil, &r)
	return r, err
}

// Consent returns payer's consent to contract.
func (c *Client) Consent(ctx context.Context, payer, contract string) (kernel.Grant, error) {
	var r server.ConsentResponse
	err := c.call(ctx, http.MethodGet, "/v1/principals/"+payer+"/consents/"+contract, nil, nil, &r)
	return r.Consent, err
}

// Consents returns every consent payer granted, following the cursors.
func (c *Client) Consents(ctx context.Context, payer string) ([]kernel.Grant, error) {
	out := []kernel.Grant{}
	cursor := ""
	for {
		var r server.ConsentsResponse
		if err := c.call(ctx, http.MethodGet, "/v1/principals/"+payer+"/consents", page(cursor, server.MaxPage), nil, &r); err != nil {
			return nil, err
		}
		out = append(out, r.Consents...)
		if r.NextCursor == "" {
			return out, nil
		}
		cursor = r.NextCursor
	}
}

// Standings returns every standing grant principal made, following the
// cursors.
func (c *Client) Standings(ctx context.Context, principal string) ([]kernel.Standing, error) {
	out := []kernel.Standing{}
	cursor := ""
	for {
		var r server.StandingsResponse
		if err := c.call(ctx, http.MethodGet, "/v1/principals/"+principal+"/standings", page(cursor, server.MaxPage), nil, &r); err != nil {
			return nil, err
		}
		out = append(out, r.Standings...)
		if r.NextCursor == "" {
			return out, nil
		}
		cursor = r.NextCursor
	}
}

// LLMConsent returns sponsor's consent to pay principal's LLM calls.
func (c *Client) LLMConsent(ctx context.Context, sponsor, principal string) (kernel.LLMConsent, error) {
	var r server.LLMConsentResponse
	err := c.call(ctx, http.MethodGet, "/v1/principals/"+sponsor+"/llm_consents/"+principal, nil, nil, &r)
	return r.Consent, err
}

// ArtifactsPage returns one page of the artifacts of prefix the token may
// see (GET /v1/artifacts): for a principal's token those its read checks
// allow (each charged to its cpu_rate), for the admin token all.
func (c *Client) ArtifactsPage(ctx context.Context, prefix, cursor string, limit int) (server.ArtifactsResponse, error) {
	q := page(cursor, limit)
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	var r server.ArtifactsResponse
	err := c.call(ctx, http.MethodGet, "/v1/artifacts", q, nil, &r)
	return r, err
}

// Put performs write a with its content as the raw body of
// PUT /v1/artifacts/{id} (a module goes up as its bytes, not as base64 in
// JSON, which would be a third larger and bounded by kernel.MaxActionJSON);
// its other fields go as query parameters. An action with fields the
// upload does not carry (unset) is refused: send it with Do.
func (c *Client) Put(ctx context.Context, a kernel.Action) (api.Result, error) {
	if a.Kind != kernel.KindWrite || len(a.Unset) > 0 || a.Content == nil {
		return api.Result{}, errors.New("client: Put takes a write with content and without unset")
	}
	q := url.Values{}
	for k, v := range map[string]string{"type": a.Type, "contract": a.Contract, "request_id": a.RequestID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if a.MaxCost != nil {
		q.Set("max_cost", strconv.FormatInt(*a.MaxCost, 10))
	}
	if len(a.Metadata) > 0 {
		b, err := json.Marshal(a.Metadata)
		if err != nil {
			return api.Result{}, err
		}
		q.Set("metadata", string(b))
	}
	ct := "application/octet-stream"
	if a.Type == kernel.TypeContract || bytes.HasPrefix(a.Content, []byte("\x00asm")) {
		ct = "application/wasm"
	}
	path := "/v1/artifacts/" + a.Target
	status, h, b, err := c.request(ctx, http.MethodPut, path, q, a.Content, ct)
	if err != nil {
		return api.Result{}, err
	}
	var res api.Result
	if json.Unmarshal(b, &res) != nil || (!res.OK && res.ErrorCode == "") || (res.OK != (status/100 == 2)) {
		return api.Result{}, answerError(status, h, b, "PUT "+path)
	}
	return res, nil
}
