package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/kernel"
)

// Tokens as grants (docs/http.md, "Tokens"): a named token holds scopes,
// spending caps per window and an expiry. identity enforces the route's
// scope and the expiry on every authenticated request (authorize); act
// enforces the action kind's scope and the caps on every action, before
// the kernel runs anything.

// scopeHandler marks a route whose handler decides who may use it (the
// token routes: authority over tokens, not a scope).
const scopeHandler = "-"

// scopeActions marks POST /v1/actions: the route admits a token holding
// any action kind; act then checks the action's own kind.
const scopeActions = "actions"

// routeScopes is the scope each route needs, by method and pattern. A GET
// (or HEAD) not listed needs auth.ScopeQuery; any other method not listed
// needs auth.ScopeAll: a route nobody classified is open to unrestricted
// tokens only.
var routeScopes = map[string]string{
	"POST /v1/actions":                         scopeActions,
	"POST /v1/explain":                         auth.ScopeQuery,
	"GET /v1/artifacts/{id...}":                string(kernel.KindRead),
	"PUT /v1/artifacts/{id...}":                string(kernel.KindWrite),
	"POST /v1/quotas/transfer":                 string(kernel.KindTransferQuota),
	"POST " + llmChatPath:                      string(kernel.KindLLMCall),
	"GET /v1/principals/{id}/tokens":           scopeHandler,
	"POST /v1/principals/{id}/tokens":          scopeHandler,
	"DELETE /v1/principals/{id}/tokens/{name}": scopeHandler,
}

// routeScope is the scope r's route needs.
func routeScope(r *http.Request) string {
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	if sc, ok := routeScopes[m+" "+r.Pattern]; ok {
		return sc
	}
	if m == http.MethodGet {
		return auth.ScopeQuery
	}
	return auth.ScopeAll
}

// authorize checks what identity authenticated against r: the token's
// expiry (401) and the route's scope (403), and records the token's use.
// The admin token and default tokens hold every scope and never expire.
func (s *Server) authorize(r *http.Request, id auth.Identity) *api.Error {
	if id.Admin {
		return nil
	}
	now := s.cfg.Now()
	if id.Expired(now) {
		e := api.NewError(abi.Unauthenticated, fmt.Sprintf("token %q of %s expired at %s: ask for a new one",
			id.Token, id.Principal, id.Grant.ExpiresAt.UTC().Format(time.RFC3339)))
		return &e
	}
	switch sc := routeScope(r); {
	case sc == scopeHandler:
	case sc == scopeActions:
		if id.Grant != nil && !holdsAnyKind(id.Grant) {
			e := api.NewError(abi.PermissionDenied, fmt.Sprintf("token %q of %s holds no action kind (scopes %s): it may not act", id.Token, id.Principal, strings.Join(id.Grant.Scopes, " ")))
			return &e
		}
	case !id.Allows(sc):
		e := scopeError(id, sc)
		return &e
	}
	if err := s.cfg.Auth.Touch(id, now); err != nil {
		s.cfg.Logger.Warn("record token use", "principal", id.Principal, "token", id.TokenName(), "err", err)
	}
	return nil
}

func holdsAnyKind(g *auth.Token) bool {
	if g.Allows(auth.ScopeAll) {
		return true
	}
	for _, k := range kernel.Kinds() {
		if g.Allows(string(k)) {
			return true
		}
	}
	return false
}

// scopeError is the refusal of a scope id's token does not hold.
func scopeError(id auth.Identity, scope string) api.Error {
	return api.NewError(abi.PermissionDenied, fmt.Sprintf("token %q of %s lacks the scope %q (it holds %s): use a token that has it",
		id.Token, id.Principal, scope, strings.Join(id.Grant.Scopes, " ")))
}

// identityKey keys the authenticated identity in a request's context.
type identityKey struct{}

// withIdentity returns r carrying id, for act.
func withIdentity(r *http.Request, id auth.Identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
}

// identityOf returns the identity principal() bound to r.
func identityOf(r *http.Request) (auth.Identity, bool) {
	id, ok := r.Context().Value(identityKey{}).(auth.Identity)
	return id, ok
}

// capKinds says, for every action kind, how a capped token's spending on
// it is bounded (TestCapKindsCoverEveryKind keeps it complete): a kind not
// listed is refused to a capped token.
type capKind int

const (
	capContract capKind = iota + 1 // a contract's price (max_cost) and the cpu_rate of its run
	capTransfer                    // Amount of scrip
	capQuota                       // Amount of Resource
	capNone                        // spends nothing
	capRefused                     // lets others spend later, outside the token: refused
)

var capKinds = map[kernel.Kind]capKind{
	kernel.KindRead: capContract, kernel.KindWrite: capContract, kernel.KindEdit: capContract,
	kernel.KindDelete: capContract, kernel.KindSetContract: capContract, kernel.KindInvoke: capContract,
	kernel.KindTransfer:      capTransfer,
	kernel.KindTransferQuota: capQuota, kernel.KindConsumeQuota: capQuota, kernel.KindMintRight: capQuota,
	kernel.KindRevokeConsent: capNone, kernel.KindRevokeLLMConsent: capNone, kernel.KindRevokeStanding: capNone,
	kernel.KindSetSpendingLimit: capNone, kernel.KindSplitRight: capNone, kernel.KindMergeRights: capNone,
	kernel.KindRedeemRight:  capNone,
	kernel.KindGrantConsent: capRefused, kernel.KindGrantLLMConsent: capRefused, kernel.KindGrantStanding: capRefused,
	kernel.KindTransferRight: capRefused,
}

// needs is what a capped token reserves for a, or a refusal.
func needs(a *kernel.Action) ([]auth.Need, *api.Error) {
	switch capKinds[a.Kind] {
	case capContract:
		n := []auth.Need{{Key: auth.CapScrip, Amount: -1, Clamp: true}, {Key: string(kernel.CPURate), Later: true}}
		if a.MaxCost != nil {
			n[0].Amount = *a.MaxCost
		}
		if a.Kind == kernel.KindInvoke && a.MaxLLMCost != nil {
			n = append(n, auth.Need{Key: string(kernel.LLMBudget), Amount: *a.MaxLLMCost, Clamp: true})
		}
		return n, nil
	case capTransfer:
		return []auth.Need{{Key: auth.CapScrip, Amount: a.Amount}}, nil
	case capQuota:
		return []auth.Need{{Key: a.Resource, Amount: a.Amount}}, nil
	case capNone:
		return nil, nil
	}
	e := api.NewError(abi.PermissionDenied, fmt.Sprintf("a token with a spending cap may not %s: it would let others spend for its principal outside the cap; use an uncapped token", a.Kind))
	return nil, &e
}

// act runs a for the principal whose token authenticated r: it refuses a
// kind outside the token's scopes (403), reserves from the token's caps
// the most the action may spend (bounding the kernel by it: max_cost,
// max_llm_cost), runs it with the token's name for the audit event, and
// settles the caps to what the result shows. ok false: act wrote the
// refusal.
func (s *Server) act(w http.ResponseWriter, r *http.Request, a kernel.Action) (kernel.Result, bool) {
	id, bound := identityOf(r)
	if !bound || id.Principal != a.Caller {
		// Every action route goes through principal(), which binds it.
		writeError(w, http.StatusInternalServerError, api.NewError(abi.Internal, "no token bound to the request"))
		return kernel.Result{}, false
	}
	a.Token = id.TokenName()
	if !id.Allows(string(a.Kind)) {
		writeError(w, http.StatusForbidden, scopeError(id, string(a.Kind)))
		return kernel.Result{}, false
	}
	var res *auth.Reservation
	if id.Capped() {
		if _, capped := id.Grant.Caps[auth.CapScrip]; capped && capKinds[a.Kind] == capContract && a.MaxCost == nil {
			// The limit the kernel would apply, made explicit so that the
			// cap can lower it: never raise what the principal chose.
			lim, err := s.cfg.Kernel.SpendingLimit(r.Context(), a.Caller)
			if err != nil {
				writeErr(w, err)
				return kernel.Result{}, false
			}
			a.MaxCost = &lim
		}
		ns, e := needs(&a)
		if e != nil {
			writeError(w, http.StatusForbidden, *e)
			return kernel.Result{}, false
		}
		var err error
		if res, err = s.cfg.Auth.Reserve(id, s.cfg.Now(), ns); err != nil {
			writeCapError(w, err)
			return kernel.Result{}, false
		}
		if _, capped := id.Grant.Caps[auth.CapScrip]; capped && capKinds[a.Kind] == capContract {
			took := res.Took(auth.CapScrip)
			a.MaxCost = &took
		}
		if _, capped := id.Grant.Caps[string(kernel.LLMBudget)]; capped && a.MaxLLMCost != nil {
			took := res.Took(string(kernel.LLMBudget))
			a.MaxLLMCost = &took
		}
	}
	start := s.cfg.Now()
	out := s.cfg.Kernel.Do(r.Context(), a)
	s.metrics.action(string(a.Kind), out.Code.String(), s.cfg.Now().Sub(start))
	if res != nil {
		if err := s.cfg.Auth.Settle(res, s.spent(r.Context(), &a, &out)); err != nil {
			s.cfg.Logger.Error("settle token caps", "principal", id.Principal, "token", id.Token, "err", err)
		}
		if out.Code == abi.CostLimitExceeded && capKinds[a.Kind] == capContract {
			out.Message += fmt.Sprintf(" (max_cost was %d: what token %q has left of its scrip cap this window, or less)", *a.MaxCost, id.Token)
		}
	}
	return out, true
}

// spent is what action a spent, by cap key, as its result shows: the
// scrip its caller paid, the quota it moved, the cpu_rate its own event
// charged, and an invoke's whole max_llm_cost (the result does not say
// how much of it the executables' LLM calls used). A replayed result
// spent nothing this time.
func (s *Server) spent(ctx context.Context, a *kernel.Action, res *kernel.Result) map[string]int64 {
	out := map[string]int64{}
	if res.Replayed {
		return out
	}
	for _, c := range res.Charges {
		if c.Payer == a.Caller {
			out[auth.CapScrip] += int64(c.Amount)
		}
	}
	switch capKinds[a.Kind] {
	case capQuota:
		if res.OK {
			out[a.Resource] += a.Amount
		}
	case capContract:
		if a.Kind == kernel.KindInvoke && a.MaxLLMCost != nil && res.OK {
			out[string(kernel.LLMBudget)] += *a.MaxLLMCost
		}
		if res.Event > 0 {
			if evs, err := s.cfg.Kernel.Events(ctx, res.Event-1, 1); err == nil && len(evs) == 1 && evs[0].Seq == res.Event {
				out[string(kernel.CPURate)] += evs[0].CPU
			}
		}
	}
	return out
}

// writeCapError writes a refusal of Reserve: a cap's QUOTA_EXCEEDED as a
// result (429 with Retry-After, or 403 when no wait helps), anything else
// as its error.
func writeCapError(w http.ResponseWriter, err error) {
	ce, ok := err.(*auth.CapError)
	if !ok {
		writeErr(w, err)
		return
	}
	res := kernel.Result{Code: abi.QuotaExceeded, ErrorCode: abi.QuotaExceeded.String(), Category: abi.QuotaExceeded.Category(),
		Retriable: !ce.Final, Message: ce.Msg, Resource: "token:" + ce.Key, Available: ce.Left}
	if !ce.Final {
		res.RetryAfter = ce.RetryAfter
	}
	writeResult(w, res)
}

// tokenRoutes registers the token routes.
func (s *Server) tokenRoutes() {
	s.handle("/v1/principals/{id}/tokens", methods{
		http.MethodGet:  s.tokenOwner(s.listTokens, false),
		http.MethodPost: s.tokenOwner(s.createToken, true),
	})
	s.handle("/v1/principals/{id}/tokens/{name}", methods{http.MethodDelete: s.tokenOwner(s.revokeToken, false)})
}

// tokenOwner admits the admin token and tokens of principal {id}: for
// manage, only an unrestricted one (every scope, no cap, no expiry), so
// that no token mints a token wider than itself; otherwise any (a list
// needs the query scope; a revocation is checked by revokeToken).
func (s *Server) tokenOwner(h func(http.ResponseWriter, *http.Request, auth.Identity), manage bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, e := s.identity(r)
		if e != nil {
			writeError(w, http.StatusUnauthorized, *e)
			return
		}
		if !id.Admin && id.Principal != r.PathValue("id") {
			writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied, "a principal's tokens are managed by that principal and the admin token"))
			return
		}
		if !id.Admin && manage && !id.Unrestricted() {
			writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied, fmt.Sprintf(
				"token %q of %s is restricted (scopes, caps or expiry): only an unrestricted token (such as the default one) or the admin token creates tokens", id.Token, id.Principal)))
			return
		}
		if !id.Admin && r.Method == http.MethodGet && !id.Allows(auth.ScopeQuery) {
			writeError(w, http.StatusForbidden, scopeError(id, auth.ScopeQuery))
			return
		}
		h(w, r, id)
	}
}

// CreateTokenRequest is the body of POST /v1/principals/{id}/tokens.
type CreateTokenRequest struct {
	Name   string           `json:"name"`
	Scopes []string         `json:"scopes"`
	Caps   map[string]int64 `json:"caps,omitempty"`
	// WindowSeconds is the caps' window (default 3600).
	WindowSeconds int64 `json:"window_seconds,omitempty"`
	// ExpiresAt (RFC 3339) or ExpiresInSeconds (from the server's clock):
	// at most one.
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	ExpiresInSeconds int64      `json:"expires_in_seconds,omitempty"`
}

// CreateTokenResponse is the answer to POST /v1/principals/{id}/tokens.
// Secret is shown this once; only its hash is kept.
type CreateTokenResponse struct {
	OK     bool       `json:"ok"`
	Token  auth.Token `json:"token"`
	Secret string     `json:"secret"`
}

// TokensResponse is the answer to GET /v1/principals/{id}/tokens: every
// token of the principal (at most auth.MaxTokensPerPrincipal and its
// default token: no paging), by name, never a secret.
type TokensResponse struct {
	OK        bool         `json:"ok"`
	Principal string       `json:"principal"`
	Tokens    []auth.Token `json:"tokens"`
}

// TokenSpecOf is the grant req asks for, its expires_in_seconds counted
// from now; out-of-range numbers are INVALID_ARGUMENT.
func TokenSpecOf(req CreateTokenRequest, now time.Time) (auth.TokenSpec, error) {
	if req.WindowSeconds < 0 || req.WindowSeconds > int64(auth.MaxWindow/time.Second) || req.ExpiresInSeconds < 0 || req.ExpiresInSeconds > maxExpiresIn {
		return auth.TokenSpec{}, &kernel.Error{Code: abi.InvalidArgument, Msg: fmt.Sprintf(
			"window_seconds is 1 to %d and expires_in_seconds 1 to %d", int64(auth.MaxWindow/time.Second), int64(maxExpiresIn))}
	}
	spec := auth.TokenSpec{Name: req.Name, Scopes: req.Scopes, Caps: req.Caps, Window: time.Duration(req.WindowSeconds) * time.Second, ExpiresAt: req.ExpiresAt}
	if req.ExpiresInSeconds > 0 {
		if req.ExpiresAt != nil {
			return auth.TokenSpec{}, &kernel.Error{Code: abi.InvalidArgument, Msg: "give expires_at or expires_in_seconds, not both"}
		}
		e := now.Add(time.Duration(req.ExpiresInSeconds) * time.Second)
		spec.ExpiresAt = &e
	}
	return spec, nil
}

// maxExpiresIn bounds expires_in_seconds: a hundred years.
const maxExpiresIn = 100 * 365 * 24 * 3600

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	var req CreateTokenRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	p := r.PathValue("id")
	now := s.cfg.Now()
	spec, err := TokenSpecOf(req, now)
	if err != nil {
		writeErr(w, err)
		return
	}
	if _, err := s.cfg.Kernel.Principal(r.Context(), p); err != nil {
		writeErr(w, err)
		return
	}
	by := id.Principal
	if id.Admin {
		by = "admin"
	}
	t, secret, err := s.cfg.Auth.CreateToken(p, spec, now, by)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.cfg.Logger.Info("token created", "principal", p, "token", t.Name, "by", by)
	writeJSON(w, http.StatusCreated, CreateTokenResponse{OK: true, Token: t, Secret: secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	p := r.PathValue("id")
	if _, err := s.cfg.Kernel.Principal(r.Context(), p); err != nil {
		writeErr(w, err)
		return
	}
	ts, err := s.cfg.Auth.Tokens(p, s.cfg.Now())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TokensResponse{OK: true, Principal: p, Tokens: ts})
}

// revokeToken answers DELETE /v1/principals/{id}/tokens/{name}: the admin
// token and an unrestricted token of {id} revoke any of its tokens; any
// token may revoke itself.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	p, name := r.PathValue("id"), r.PathValue("name")
	if !id.Admin && !id.Unrestricted() && name != id.TokenName() {
		writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied, fmt.Sprintf(
			"token %q of %s is restricted: it may revoke itself only; an unrestricted token or the admin token revokes others", id.Token, p)))
		return
	}
	if err := s.cfg.Auth.RevokeToken(p, name); err != nil {
		writeErr(w, err)
		return
	}
	s.cfg.Logger.Info("token revoked", "principal", p, "token", name)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "principal": p, "revoked": name})
}

// reserveCPU is Reserve for a query that charges cpu_rate (explain, a
// listing's read checks) under a token capping it: refused (written) when
// nothing is left; settleCPU counts what it charged. ok false: refused.
func (s *Server) reserveCPU(w http.ResponseWriter, id auth.Identity) (*auth.Reservation, bool) {
	if !id.Capped() {
		return nil, true
	}
	res, err := s.cfg.Auth.Reserve(id, s.cfg.Now(), []auth.Need{{Key: string(kernel.CPURate), Later: true}})
	if err != nil {
		writeCapError(w, err)
		return nil, false
	}
	return res, true
}

// settleCPU settles a reserveCPU with the cpu_rate the query charged.
func (s *Server) settleCPU(id auth.Identity, res *auth.Reservation, cpu int64) {
	if err := s.cfg.Auth.Settle(res, map[string]int64{string(kernel.CPURate): cpu}); err != nil {
		s.cfg.Logger.Error("settle token caps", "principal", id.Principal, "token", id.Token, "err", err)
	}
}

// llmCapped reports whether id's token caps what an LLM call through the
// gateway spends (llm_rate, llm_budget): the gateway's reservation is not
// bounded by a token, so such a token may not call it.
func llmCapped(id auth.Identity) bool {
	if !id.Capped() {
		return false
	}
	_, rate := id.Grant.Caps[string(kernel.LLMRate)]
	_, budget := id.Grant.Caps[string(kernel.LLMBudget)]
	return rate || budget
}
