package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

// Tokens are the world's tokens once the scenario has played: the admin's,
// every principal's default token (every scope), and the scoped token each
// agent got in scene 9. Secrets are kept only here, for Options.Serve to
// print: the store holds their hashes.
type Tokens struct {
	Auth  *auth.Store
	Admin string
	// IDs are the principals, in id order, and Default their default
	// tokens, in the same order.
	IDs     []string
	Default []string
	// Scoped is each agent's token named ScopedName, by agent.
	Scoped map[string]string
}

// ScopedName names the scoped token each agent gets.
const ScopedName = "agent"

// agentGrants are the scoped tokens of scene 9: the kinds an agent of the
// story uses, a spending cap, and mallory's read-only token.
var agentGrants = map[string]auth.TokenSpec{
	"alice":   {Scopes: []string{"query", "read", "write", "edit", "invoke", "transfer", "mint_right"}, Caps: map[string]int64{auth.CapScrip: 100}},
	"bob":     {Scopes: []string{"query", "read", "invoke", "transfer", "consume_quota", "redeem_right"}, Caps: map[string]int64{auth.CapScrip: 100}},
	"carol":   {Scopes: []string{"query", "read", "transfer_quota"}, Caps: map[string]int64{auth.CapScrip: 50, "llm_rate": 100}},
	"sponsor": {Scopes: []string{"query", "read", "revoke_consent"}},
	"mallory": {Scopes: []string{"read-only"}},
}

// grants is scene 9: the world gets its tokens (what init would issue), and
// every agent a scoped token; through the HTTP API, in process, the scopes
// and caps hold and a revocation takes effect at once.
func (s *scene) grants() error {
	s.section("9. Every agent gets a scoped token")
	ps, err := s.k.Principals(s.ctx)
	if err != nil {
		return err
	}
	t := Tokens{Scoped: map[string]string{}}
	for _, p := range ps {
		t.IDs = append(t.IDs, p.ID)
	}
	if t.Auth, t.Admin, t.Default, err = auth.Init(s.st, t.IDs); err != nil {
		return err
	}
	s.say("the admin and every principal get a default token (every scope), as 'kernelhost init' gives them")
	for _, a := range []string{"alice", "bob", "carol", "sponsor", "mallory"} {
		spec := agentGrants[a]
		spec.Name = ScopedName
		tk, secret, err := t.Auth.CreateToken(a, spec, s.now(), "admin")
		if err != nil {
			return err
		}
		t.Scoped[a] = secret
		caps := "no cap"
		if len(tk.Caps) > 0 {
			var cs []string
			for _, k := range []string{auth.CapScrip, "llm_rate"} {
				if v, ok := tk.Caps[k]; ok {
					cs = append(cs, fmt.Sprintf("%d %s", v, k))
				}
			}
			caps = "cap " + strings.Join(cs, ", ") + " per " + tk.Window().String()
		}
		s.say("%-8s token %q: %s; %s", a+":", tk.Name, strings.Join(tk.Scopes, " "), caps)
	}
	s.toks = t

	srv, err := server.New(server.Config{Kernel: s.k, Auth: t.Auth, Now: s.now})
	if err != nil {
		return err
	}
	call := func(what, tok, method, path, body string, want int) {
		req := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(s.ctx)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var ans struct {
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &ans)
		line := fmt.Sprintf("%-38s -> %d", what, rec.Code)
		if ans.ErrorCode != "" {
			line += " " + ans.ErrorCode + ": " + truncate(ans.Message, 110)
		}
		s.say("%s", line)
		if rec.Code != want && s.err == nil {
			s.err = fmt.Errorf("demo: %s: got %d, want %d: %s", what, rec.Code, want, rec.Body.String())
		}
	}
	s.say("through the HTTP API, with the scoped tokens:")
	call("bob's token reads "+report, t.Scoped["bob"], http.MethodGet, "/v1/artifacts/"+report, "", http.StatusOK)
	call("mallory's read-only token writes", t.Scoped["mallory"], http.MethodPost, "/v1/actions", `{"kind":"write","target":"mallory/x","type":"text","text":"x"}`, http.StatusForbidden)
	call("carol's token transfers scrip", t.Scoped["carol"], http.MethodPost, "/v1/actions", `{"kind":"transfer","to":"mallory","amount":5}`, http.StatusForbidden)
	call("bob's token transfers 60 to carol", t.Scoped["bob"], http.MethodPost, "/v1/actions", `{"kind":"transfer","to":"carol","amount":60}`, http.StatusOK)
	call("bob's token transfers 60 more", t.Scoped["bob"], http.MethodPost, "/v1/actions", `{"kind":"transfer","to":"carol","amount":60}`, http.StatusTooManyRequests)
	call("mallory's token may not make a token", t.Scoped["mallory"], http.MethodPost, "/v1/principals/mallory/tokens", `{"name":"wide","scopes":["*"]}`, http.StatusForbidden)
	call("the admin revokes mallory's token", t.Admin, http.MethodDelete, "/v1/principals/mallory/tokens/"+ScopedName, "", http.StatusOK)
	call("mallory's token, a moment later", t.Scoped["mallory"], http.MethodGet, "/v1/principals", "", http.StatusUnauthorized)
	delete(t.Scoped, "mallory")
	s.toks = t
	if list, err := t.Auth.Tokens("bob", s.now()); err == nil {
		for _, tk := range list {
			if tk.Name == ScopedName {
				s.say("bob's token has spent %d of its %d scrip this window (from %s)", tk.Spent[auth.CapScrip], tk.Caps[auth.CapScrip], tk.WindowStart.Format(time.RFC3339))
			}
		}
	} else {
		s.check(err)
	}
	return nil
}
