package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// backend is where a command's actions and queries go: the world opened
// by the command itself (local), or a running server (remote, through
// package client). Commands are written once against it, so that every
// command works in both modes and prints the same thing.
//
// Errors are printable as they are: a kernel error as "CODE: message"
// (codedError), a server's answer the same way (*client.Error).
type backend interface {
	// isRemote reports client mode.
	isRemote() bool
	// actor returns the principal the command acts as: locally --as
	// (required); remotely the token's principal, which --as, when given,
	// must name (the server binds the caller to the token).
	actor(ctx context.Context, as string) (string, error)
	// viewer returns whose grants a query shows: locally --as (required);
	// remotely --as when the admin token asks (it may look at anyone's),
	// else the token's principal, which --as may name.
	viewer(ctx context.Context, as string) (string, error)
	// do performs a as a.Caller (ignored remotely: the token's).
	do(ctx context.Context, a kernel.Action) (kernel.Result, error)
	// explain judges a without effect.
	explain(ctx context.Context, a kernel.Action) (api.Explanation, error)

	principal(ctx context.Context, id string) (kernel.Principal, []kernel.QuotaStatus, error)
	principals(ctx context.Context) ([]kernel.Principal, error)
	createPrincipal(ctx context.Context, id string, balance int64) (kernel.Principal, string, error)
	issueToken(ctx context.Context, id string) (kernel.Principal, string, error)
	// createToken, tokens and revokeToken manage id's named tokens
	// (cmd_token.go): locally with the admin's authority, remotely with
	// the token's.
	createToken(ctx context.Context, id string, req server.CreateTokenRequest) (auth.Token, string, error)
	tokens(ctx context.Context, id string) ([]auth.Token, error)
	revokeToken(ctx context.Context, id, name string) error
	mint(ctx context.Context, id string, amount int64) (kernel.Principal, error)
	quotas(ctx context.Context, id string) ([]kernel.QuotaStatus, error)
	setQuota(ctx context.Context, id string, res kernel.Resource, quota int64) (kernel.QuotaStatus, error)
	// rights returns holder's rights, or every principal's for "".
	rights(ctx context.Context, holder string) ([]kernel.Right, error)
	standings(ctx context.Context, principal string) ([]kernel.Standing, error)
	consent(ctx context.Context, payer, contract string) (kernel.Grant, error)
	consents(ctx context.Context, payer string) ([]kernel.Grant, error)
	llmConsent(ctx context.Context, sponsor, principal string) (kernel.LLMConsent, error)
	audit(ctx context.Context) (kernel.Audit, error)
	// listArtifacts lists the artifacts caller may read whose ids start
	// with prefix.
	listArtifacts(ctx context.Context, caller, prefix string) ([]lsEntry, error)
	// artifactIDs returns artifact ids that start with prefix, for
	// completion.
	artifactIDs(ctx context.Context, prefix string) ([]string, error)
	// validate runs the host's deploy-time checks on a module locally;
	// remotely the server runs them when the module is written.
	validate(ctx context.Context, wasm []byte) error
}

// withBackend runs fn on the backend of cmd: the server of --server or a
// context, or the local world opened in mode (shared for commands that
// only read, so that several run at once).
func (g *globals) withBackend(cmd *cobra.Command, mode lockMode, fn func(b backend) error) error {
	t, err := g.remote(cmd)
	if err != nil {
		return err
	}
	if t != nil {
		c, err := g.newClient(t)
		if err != nil {
			return err
		}
		return fn(&remote{c: c, target: t})
	}
	return g.withWorldMode(cmd.Context(), mode, func(w *world) error { return fn(&local{w: w}) })
}

// localOnly makes a command that needs the world on this machine (init,
// serve, ...) run locally: --server or --context on its command line is a
// usage error; a server or context from the environment or the config
// file's current_context is ignored (it is where other commands go, not
// where a world is created or served).
func (g *globals) localOnly(cmd *cobra.Command, why string) error {
	for _, name := range []string{"server", "context"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return usagef("'%s' works on the world on this machine, not through a server (%s): leave out --%s", cmd.CommandPath(), why, name)
		}
	}
	g.resolved, g.target, g.targetErr = true, nil, nil
	return nil
}

// refuseRemote fails when the command line names a server (or a context)
// for a command that opens the local world without going through a
// backend: it would otherwise act on the local world while the user meant
// the server.
func (g *globals) refuseRemote() error {
	if g.cmd == nil {
		return nil
	}
	t, err := g.remote(g.cmd)
	if err != nil {
		return err
	}
	if t != nil {
		return usagef("'%s' works on the world on this machine only: leave out --server and --context (and unset %s), or run it on the server's machine", g.cmd.CommandPath(), serverEnv)
	}
	return nil
}

// act runs action a as the principal of --as (local) or of the token
// (remote) and prints its result, text printing a success.
func (g *globals) act(cmd *cobra.Command, as string, a kernel.Action, text func(out io.Writer, caller string, res kernel.Result)) error {
	return g.withBackend(cmd, lockExclusive, func(b backend) error {
		caller, err := b.actor(cmd.Context(), as)
		if err != nil {
			return err
		}
		a.Caller = caller
		res, err := b.do(cmd.Context(), a)
		if err != nil {
			return err
		}
		return g.emitResult(res, func(out io.Writer) { text(out, caller, res) })
	})
}

// local is the world opened by the command.
type local struct{ w *world }

func (l *local) isRemote() bool { return false }

func (l *local) actor(_ context.Context, as string) (string, error) {
	if as == "" {
		return "", usagef(`required flag(s) "as" not set: name the principal acting (--as P)`)
	}
	return as, nil
}

func (l *local) viewer(ctx context.Context, as string) (string, error) { return l.actor(ctx, as) }

func (l *local) do(ctx context.Context, a kernel.Action) (kernel.Result, error) {
	return l.w.k.Do(ctx, a), nil
}

func (l *local) explain(ctx context.Context, a kernel.Action) (api.Explanation, error) {
	start := time.Now()
	ex, err := l.w.k.Explain(ctx, a)
	if err != nil {
		return api.Explanation{}, codedError(err)
	}
	return api.ExplanationOf(ex, a.Caller, time.Since(start)), nil
}

func (l *local) principal(ctx context.Context, id string) (kernel.Principal, []kernel.QuotaStatus, error) {
	p, err := l.w.k.Principal(ctx, id)
	if err != nil {
		return p, nil, codedError(err)
	}
	qs, err := l.w.k.Quotas(ctx, id)
	return p, qs, codedError(err)
}

func (l *local) principals(ctx context.Context) ([]kernel.Principal, error) {
	ps, err := l.w.k.Principals(ctx)
	if ps == nil {
		ps = []kernel.Principal{}
	}
	return ps, codedError(err)
}

func (l *local) createPrincipal(ctx context.Context, id string, balance int64) (kernel.Principal, string, error) {
	// The principal and its token in one transaction, where the tokens
	// live in the world's store (every world of this kernelhost).
	var tok string
	inStore := false
	_, err := l.w.k.CreatePrincipals(ctx, []kernel.NewPrincipal{{ID: id, Balance: uint64(balance)}}, func(tx store.Txn, _ []kernel.NewPrincipal) error {
		toks, in, err := l.w.auth.IssueTx(tx, []string{id})
		if in && err == nil {
			tok, inStore = toks[0], true
		}
		return err
	})
	if err != nil {
		return kernel.Principal{}, "", codedError(err)
	}
	if !inStore {
		if tok, err = l.w.auth.Issue(id); err != nil {
			return kernel.Principal{}, "", fmt.Errorf("principal %s was created but its token was not saved (%w): run 'kernelhost principal token %s'", id, err, id)
		}
	}
	p, err := l.w.k.Principal(ctx, id)
	return p, tok, codedError(err)
}

func (l *local) issueToken(ctx context.Context, id string) (kernel.Principal, string, error) {
	p, err := l.w.k.Principal(ctx, id)
	if err != nil {
		return p, "", codedError(err)
	}
	tok, err := l.w.auth.Issue(id)
	return p, tok, err
}

func (l *local) createToken(ctx context.Context, id string, req server.CreateTokenRequest) (auth.Token, string, error) {
	if _, err := l.w.k.Principal(ctx, id); err != nil {
		return auth.Token{}, "", codedError(err)
	}
	spec, err := server.TokenSpecOf(req, time.Now())
	if err != nil {
		return auth.Token{}, "", err
	}
	t, secret, err := l.w.auth.CreateToken(id, spec, time.Now(), "admin")
	return t, secret, codedError(err)
}

func (l *local) tokens(ctx context.Context, id string) ([]auth.Token, error) {
	if _, err := l.w.k.Principal(ctx, id); err != nil {
		return nil, codedError(err)
	}
	ts, err := l.w.auth.Tokens(id, time.Now())
	return ts, codedError(err)
}

func (l *local) revokeToken(_ context.Context, id, name string) error {
	return codedError(l.w.auth.RevokeToken(id, name))
}

func (l *local) mint(ctx context.Context, id string, amount int64) (kernel.Principal, error) {
	if err := l.w.k.Mint(ctx, id, amount); err != nil {
		return kernel.Principal{}, codedError(err)
	}
	p, err := l.w.k.Principal(ctx, id)
	return p, codedError(err)
}

func (l *local) quotas(ctx context.Context, id string) ([]kernel.QuotaStatus, error) {
	qs, err := l.w.k.Quotas(ctx, id)
	return qs, codedError(err)
}

func (l *local) setQuota(ctx context.Context, id string, res kernel.Resource, quota int64) (kernel.QuotaStatus, error) {
	if err := l.w.k.SetQuota(ctx, id, res, quota); err != nil {
		return kernel.QuotaStatus{}, codedError(err)
	}
	st, err := l.w.k.QuotaStatus(ctx, id, res)
	return st, codedError(err)
}

func (l *local) rights(ctx context.Context, holder string) ([]kernel.Right, error) {
	rs, err := listRights(ctx, l.w.k, holder)
	return rs, codedError(err)
}

func (l *local) standings(ctx context.Context, principal string) ([]kernel.Standing, error) {
	sts, err := l.w.k.Standings(ctx, principal)
	return sts, codedError(err)
}

func (l *local) consent(ctx context.Context, payer, contract string) (kernel.Grant, error) {
	gr, err := l.w.k.Consent(ctx, payer, contract)
	return gr, codedError(err)
}

func (l *local) consents(ctx context.Context, payer string) ([]kernel.Grant, error) {
	if _, err := l.w.k.Principal(ctx, payer); err != nil {
		return nil, codedError(err)
	}
	out := []kernel.Grant{}
	after := ""
	for {
		gs, more, err := l.w.k.ConsentsPage(ctx, payer, after, kernel.MaxPage)
		if err != nil {
			return nil, codedError(err)
		}
		out = append(out, gs...)
		if !more || len(gs) == 0 {
			return out, nil
		}
		after = gs[len(gs)-1].Contract
	}
}

func (l *local) llmConsent(ctx context.Context, sponsor, principal string) (kernel.LLMConsent, error) {
	c, err := l.w.k.LLMConsent(ctx, sponsor, principal)
	return c, codedError(err)
}

func (l *local) audit(ctx context.Context) (kernel.Audit, error) {
	a, err := l.w.k.Audit(ctx)
	return a, codedError(err)
}

func (l *local) listArtifacts(ctx context.Context, caller, prefix string) ([]lsEntry, error) {
	return localArtifacts(ctx, l.w.k, caller, prefix)
}

func (l *local) artifactIDs(ctx context.Context, prefix string) ([]string, error) {
	ids, err := l.w.k.ArtifactIDs(ctx)
	return matching(ids, prefix), codedError(err)
}

func (l *local) validate(ctx context.Context, wasm []byte) error { return l.w.host.Validate(ctx, wasm) }

// remote is a running server, reached with one token.
type remote struct {
	c      *client.Client
	target *remoteTarget
	who    *client.Identity // the token's identity, once asked
}

func (r *remote) isRemote() bool { return true }

// identity returns the token's identity, asking the server once.
func (r *remote) identity(ctx context.Context) (client.Identity, error) {
	if r.who == nil {
		id, err := r.c.Whoami(ctx)
		if err != nil {
			return id, err
		}
		r.who = &id
	}
	return *r.who, nil
}

func (r *remote) actor(ctx context.Context, as string) (string, error) {
	id, err := r.identity(ctx)
	if err != nil {
		return "", err
	}
	switch {
	case id.Admin:
		return "", fmt.Errorf("%s: the admin token acts as no principal: act with a principal's token (KERNELHOST_TOKEN, or a context)", abi.PermissionDenied)
	case as != "" && as != id.Principal:
		return "", usagef("--as %s, but the token is %s's: the server binds the caller to the token; leave --as out, or use %s's token", as, id.Principal, as)
	}
	return id.Principal, nil
}

func (r *remote) viewer(ctx context.Context, as string) (string, error) {
	id, err := r.identity(ctx)
	if err != nil {
		return "", err
	}
	if id.Admin {
		if as == "" {
			return "", usagef(`required flag(s) "as" not set: the admin token acts as no principal: name whose grants to show (--as P)`)
		}
		return as, nil
	}
	return r.actor(ctx, as)
}

func (r *remote) do(ctx context.Context, a kernel.Action) (kernel.Result, error) {
	do := r.c.Do
	if a.Kind == kernel.KindWrite && a.Content != nil && len(a.Unset) == 0 {
		do = r.c.Put // raw bytes: a module of MBs fits, base64 in JSON may not
	}
	res, err := do(ctx, a)
	if err != nil {
		return kernel.Result{}, err
	}
	return resultOf(res), nil
}

func (r *remote) explain(ctx context.Context, a kernel.Action) (api.Explanation, error) {
	return r.c.Explain(ctx, a)
}

func (r *remote) principal(ctx context.Context, id string) (kernel.Principal, []kernel.QuotaStatus, error) {
	v, err := r.c.Principal(ctx, id)
	if v.Quotas == nil {
		v.Quotas = []kernel.QuotaStatus{}
	}
	return v.Principal, v.Quotas, err
}

func (r *remote) principals(ctx context.Context) ([]kernel.Principal, error) {
	return r.c.Principals(ctx)
}

func (r *remote) createPrincipal(ctx context.Context, id string, balance int64) (kernel.Principal, string, error) {
	resp, err := r.c.CreatePrincipal(ctx, id, balance)
	return resp.Principal, resp.Token, err
}

func (r *remote) issueToken(context.Context, string) (kernel.Principal, string, error) {
	return kernel.Principal{}, "", notOverHTTP("principal token", "the HTTP API issues no new token for an existing principal")
}

func (r *remote) createToken(ctx context.Context, id string, req server.CreateTokenRequest) (auth.Token, string, error) {
	resp, err := r.c.CreateToken(ctx, id, req)
	return resp.Token, resp.Secret, err
}

func (r *remote) tokens(ctx context.Context, id string) ([]auth.Token, error) {
	return r.c.Tokens(ctx, id)
}

func (r *remote) revokeToken(ctx context.Context, id, name string) error {
	return r.c.RevokeToken(ctx, id, name)
}

func (r *remote) mint(ctx context.Context, id string, amount int64) (kernel.Principal, error) {
	return r.c.Mint(ctx, id, amount)
}

func (r *remote) quotas(ctx context.Context, id string) ([]kernel.QuotaStatus, error) {
	return r.c.Quotas(ctx, id)
}

func (r *remote) setQuota(ctx context.Context, id string, res kernel.Resource, quota int64) (kernel.QuotaStatus, error) {
	return r.c.SetQuota(ctx, id, res, quota)
}

func (r *remote) rights(ctx context.Context, holder string) ([]kernel.Right, error) {
	return r.c.Rights(ctx, holder)
}

func (r *remote) standings(ctx context.Context, principal string) ([]kernel.Standing, error) {
	return r.c.Standings(ctx, principal)
}

func (r *remote) consent(ctx context.Context, payer, contract string) (kernel.Grant, error) {
	return r.c.Consent(ctx, payer, contract)
}

func (r *remote) consents(ctx context.Context, payer string) ([]kernel.Grant, error) {
	return r.c.Consents(ctx, payer)
}

func (r *remote) llmConsent(ctx context.Context, sponsor, principal string) (kernel.LLMConsent, error) {
	return r.c.LLMConsent(ctx, sponsor, principal)
}

func (r *remote) audit(ctx context.Context) (kernel.Audit, error) {
	t, err := r.c.Totals(ctx)
	return t.Audit, err
}

// listArtifacts lists through GET /v1/artifacts (the token's read checks
// decide what is shown), then explains a read of each to show its cost,
// as locally.
func (r *remote) listArtifacts(ctx context.Context, caller, prefix string) ([]lsEntry, error) {
	entries := []lsEntry{}
	cursor := ""
	for {
		p, err := r.c.ArtifactsPage(ctx, prefix, cursor, 0)
		if err != nil {
			return nil, err
		}
		for _, a := range p.Artifacts {
			ex, err := r.c.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Target: a.ID})
			if err != nil {
				return nil, err
			}
			if ex.Outcome.Resource != "" {
				return nil, fmt.Errorf("%s: %s", ex.Outcome.ErrorCode, ex.Outcome.Message)
			}
			if e, ok := lsEntryOf(a.ID, caller, ex); ok {
				entries = append(entries, e)
			}
		}
		if p.QuotaExceeded != nil {
			return nil, fmt.Errorf("%s: %s", p.QuotaExceeded.ErrorCode, p.QuotaExceeded.Message)
		}
		if p.NextCursor == "" {
			return entries, nil
		}
		cursor = p.NextCursor
	}
}

// artifactIDs returns the first page of the token's listing of prefix.
func (r *remote) artifactIDs(ctx context.Context, prefix string) ([]string, error) {
	p, err := r.c.ArtifactsPage(ctx, prefix, "", completionPage)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(p.Artifacts))
	for i, a := range p.Artifacts {
		ids[i] = a.ID
	}
	return ids, nil
}

func (r *remote) validate(context.Context, []byte) error { return nil }

// notOverHTTP is the error of a command the HTTP API cannot serve.
func notOverHTTP(command, why string) error {
	return fmt.Errorf("'kernelhost %s' does not work with --server (%s): run it on the server's machine, without --server", command, why)
}

// resultOf is the kernel.Result an answer of the HTTP API carries, so
// that a command prints a remote result as it prints a local one
// (api.ResultOf(resultOf(r)) is r).
func resultOf(r api.Result) kernel.Result {
	code := abi.OK
	if !r.OK {
		c, ok := abi.ParseCode(r.ErrorCode)
		if !ok {
			c = abi.Internal
		}
		code = c
	}
	var d *abi.Decision
	if r.Decision != nil {
		d = &abi.Decision{Allowed: r.Decision.Allowed, Cost: r.Decision.Cost, Payer: r.Decision.Payer, Payee: r.Decision.Payee, Reason: r.Decision.Reason}
	}
	return kernel.Result{
		OK: r.OK, Code: code, ErrorCode: r.ErrorCode, Category: abi.Category(r.Category), Retriable: r.Retriable, Message: r.Message,
		Decision: d, Charges: r.Charges, Revision: r.Revision, Event: r.Event,
		Artifact: r.Artifact, Content: r.Content, Output: r.Output, Logs: r.Logs, IDs: r.IDs,
		Resource: r.Resource, Available: r.Available,
		RetryAfter: time.Duration(r.RetryAfterSeconds * float64(time.Second)),
		Replayed:   r.Replayed,
	}
}
