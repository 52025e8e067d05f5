package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Named tokens (layout version 2, see kv.go): besides its default token, a
// principal may hold up to MaxTokensPerPrincipal named tokens, each a
// grant of part of its authority: the action kinds and queries it may use
// (scopes), what it may spend per window (caps), and until when (expiry).
//
//	x/auth/t/<sha256 hex>        "n" followed by the token's record (JSON,
//	                             type Token): one key read authenticates it
//	x/auth/n/<principal>\x00<name>  the token's hash, to list and revoke it
//	x/auth/u/<principal>\x00<name>  when it was last used (Unix ns, decimal)
//	x/auth/s/<principal>\x00<name>  what it spent in its current window
//
// Principal ids hold no NUL, so a principal's keys are exactly those under
// <principal>\x00. A revocation deletes all four in one transaction.

// DefaultToken names a principal's first token: the one init, principal
// create and principal token issue. It has every scope, no cap and no
// expiry, as every token had before tokens had names.
const DefaultToken = "default"

// Scopes a token may hold, besides the kernel's action kinds
// (kernel.Kinds) and kernel.KindLLMCall (POST /v1/llm/chat).
const (
	// ScopeAll is every action and query, present and future.
	ScopeAll = "*"
	// ScopeQuery is every query: the GET routes that run no action and
	// POST /v1/explain.
	ScopeQuery = "query"
)

// Presets name lists of scopes, expanded when a token is created (the
// stored token holds the list, so that a preset that changes later never
// widens a token already issued). A preset is an explicit list, never a
// pattern: a new action kind is in no preset until someone puts it there.
var Presets = map[string][]string{
	"read-only": {ScopeQuery, string(kernel.KindRead)},
}

// CapScrip is the cap key of scrip: contract prices paid by the caller and
// the scrip it transfers. The other cap keys are the resources in
// CapResources.
const CapScrip = "scrip"

// CapResources are the quota resources a token may cap: what the caller
// moves or reports with transfer_quota, consume_quota and mint_right, and
// for cpu_rate also the CPU its actions' contracts and executables use.
// disk and memory are left out: bytes written and memory used are bounded
// by the principal's own quotas only.
var CapResources = []kernel.Resource{kernel.CPURate, kernel.LLMRate, kernel.LLMBudget}

// Limits of a token.
const (
	MaxTokensPerPrincipal = 64
	MaxTokenName          = 64
	DefaultWindow         = time.Hour
	MaxWindow             = 366 * 24 * time.Hour
	// TouchEvery is how often, at most, a node records that a token was
	// used: last_used is exact to this much, and a busy token costs one
	// store write per TouchEvery per node, not one per request.
	TouchEvery = time.Minute
	// maxTouched bounds the per-node map of when each token was last
	// recorded; it is emptied when full (some extra writes, no growth).
	maxTouched = 1 << 16
)

var (
	prefixNamed = []byte(Prefix + "n/")
	prefixUsed  = []byte(Prefix + "u/")
	prefixSpent = []byte(Prefix + "s/")
)

// roleNamed starts the x/auth/t/ value of a named token.
const roleNamed = 'n'

func namedKey(prefix []byte, principal, name string) []byte {
	k := append(bytes.Clone(prefix), principal...)
	return append(append(k, 0), name...)
}

// Token is one token of a principal as stored (in its x/auth/t/ record)
// and as listed (with LastUsed, Spent and WindowStart filled in). The
// secret is never kept; its sha256 is the record's key.
type Token struct {
	Principal string `json:"principal"`
	Name      string `json:"name"`
	// Scopes are what the token may do: ScopeAll, ScopeQuery and action
	// kinds, sorted.
	Scopes []string `json:"scopes"`
	// Caps is the most the token may spend per window: CapScrip or a
	// resource of CapResources, each >= 0. None: no cap.
	Caps map[string]int64 `json:"caps,omitempty"`
	// WindowSeconds is the length of a cap's window: fixed windows that
	// start at multiples of it since the Unix epoch. Set when Caps is.
	WindowSeconds int64      `json:"window_seconds,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	CreatedAt     *time.Time `json:"created_at,omitempty"` // nil for the default token
	// CreatedBy is "admin" or the principal whose token created it.
	CreatedBy string `json:"created_by,omitempty"`

	// Listing only.
	LastUsed    *time.Time       `json:"last_used,omitempty"`
	Spent       map[string]int64 `json:"spent,omitempty"`
	WindowStart *time.Time       `json:"window_start,omitempty"`
}

// Allows reports whether the token holds scope (or ScopeAll).
func (t *Token) Allows(scope string) bool {
	return slices.Contains(t.Scopes, ScopeAll) || slices.Contains(t.Scopes, scope)
}

// Window is the length of the token's cap window.
func (t *Token) Window() time.Duration { return time.Duration(t.WindowSeconds) * time.Second }

// TokenName returns the name of the token id was authenticated with:
// DefaultToken for a principal's default token, "admin" for the admin
// token.
func (id Identity) TokenName() string {
	switch {
	case id.Admin:
		return "admin"
	case id.Token == "":
		return DefaultToken
	}
	return id.Token
}

// Allows reports whether id may use scope: the admin token and a default
// token may use any; a named token those it holds.
func (id Identity) Allows(scope string) bool { return id.Grant == nil || id.Grant.Allows(scope) }

// Unrestricted reports whether id carries all of its principal's
// authority: every scope, no cap, no expiry. Only such a token (or the
// admin's) may create or revoke tokens, so that no token can mint a wider
// one than itself.
func (id Identity) Unrestricted() bool {
	g := id.Grant
	return g == nil || g.Allows(ScopeAll) && len(g.Caps) == 0 && g.ExpiresAt == nil
}

// Expired reports whether id's token has expired at now.
func (id Identity) Expired(now time.Time) bool {
	return id.Grant != nil && id.Grant.ExpiresAt != nil && !now.Before(*id.Grant.ExpiresAt)
}

// Capped reports whether id's token has any spending cap.
func (id Identity) Capped() bool { return id.Grant != nil && len(id.Grant.Caps) > 0 }

// TokenSpec is what a new named token grants.
type TokenSpec struct {
	Name string `json:"name"`
	// Scopes: ScopeAll, ScopeQuery, action kinds, kernel.KindLLMCall and
	// presets (expanded).
	Scopes []string `json:"scopes"`
	// Caps per window; Window 0 means DefaultWindow when Caps is set.
	Caps      map[string]int64 `json:"caps,omitempty"`
	Window    time.Duration    `json:"-"`
	ExpiresAt *time.Time       `json:"expires_at,omitempty"`
}

func invalid(format string, args ...any) error {
	return &kernel.Error{Code: abi.InvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

// checkName checks a token name: 1-64 of a-z 0-9 . _ -, starting with a
// letter or digit, and not DefaultToken or "admin".
func checkName(name string) error {
	if name == "" || len(name) > MaxTokenName {
		return invalid("a token name is 1 to %d characters", MaxTokenName)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return invalid("token name %q: use a-z, 0-9 and . _ - (not first)", name)
		}
	}
	if name == DefaultToken || name == "admin" {
		return invalid("token name %q is reserved", name)
	}
	return nil
}

// KnownScope reports whether s is a scope a token may hold (presets are
// not: they are expanded first).
func KnownScope(s string) bool {
	if s == ScopeAll || s == ScopeQuery || s == string(kernel.KindLLMCall) {
		return true
	}
	return slices.Contains(kernel.Kinds(), kernel.Kind(s))
}

// expandScopes expands presets, checks every scope and returns the set,
// sorted.
func expandScopes(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, invalid("a token needs at least one scope: %q, %q, action kinds or a preset (%s)", ScopeAll, ScopeQuery, presetNames())
	}
	var out []string
	for _, s := range in {
		if p, ok := Presets[s]; ok {
			out = append(out, p...)
			continue
		}
		if !KnownScope(s) {
			return nil, invalid("unknown scope %.64q: use %q, %q, an action kind (%s), %q or a preset (%s)",
				s, ScopeAll, ScopeQuery, kindNames(), kernel.KindLLMCall, presetNames())
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func kindNames() string {
	var b strings.Builder
	for i, k := range kernel.Kinds() {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(string(k))
	}
	return b.String()
}

func presetNames() string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// checkCaps checks caps and the window, returning the window in seconds
// (0 without caps).
func checkCaps(caps map[string]int64, window time.Duration) (int64, error) {
	if len(caps) == 0 {
		if window != 0 {
			return 0, invalid("a window belongs to caps: give caps too, or no window")
		}
		return 0, nil
	}
	for k, v := range caps {
		if k != CapScrip && !slices.Contains(CapResources, kernel.Resource(k)) {
			return 0, invalid("unknown cap %.64q: caps are %s and %v", k, CapScrip, CapResources)
		}
		if v < 0 {
			return 0, invalid("cap %s is %d: a cap is a non-negative integer", k, v)
		}
	}
	if window == 0 {
		window = DefaultWindow
	}
	if window < time.Second || window > MaxWindow || window%time.Second != 0 {
		return 0, invalid("the cap window is whole seconds from 1s to %s", MaxWindow)
	}
	return int64(window / time.Second), nil
}

// needKV is the error of a token operation on an auth file, which holds
// default tokens only.
func (s *Store) needKV() error {
	if s.kv == nil {
		return &kernel.Error{Code: abi.Unavailable, Msg: "named tokens live in the world's store; this auth file holds default tokens only"}
	}
	return nil
}

// retry runs fn in store Updates until it commits or fails otherwise than
// by a serialisable conflict (bounded like Issue).
func (s *Store) retry(fn func(tx store.Txn) error) error {
	var err error
	for range maxIssueRetries {
		if err = s.kv.Update(fn); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return err
}

// CreateToken gives principal a new named token, created by by ("admin" or
// the principal) at now, and returns it and its secret, shown this once.
// The caller checks that principal exists and that by may do this
// (Identity.Unrestricted). A name the principal already uses is
// ALREADY_EXISTS; bad names, scopes, caps, windows and expiries
// INVALID_ARGUMENT; more than MaxTokensPerPrincipal QUOTA_EXCEEDED.
func (s *Store) CreateToken(principal string, spec TokenSpec, now time.Time, by string) (Token, string, error) {
	if err := s.needKV(); err != nil {
		return Token{}, "", err
	}
	if err := checkName(spec.Name); err != nil {
		return Token{}, "", err
	}
	scopes, err := expandScopes(spec.Scopes)
	if err != nil {
		return Token{}, "", err
	}
	window, err := checkCaps(spec.Caps, spec.Window)
	if err != nil {
		return Token{}, "", err
	}
	if spec.ExpiresAt != nil && !spec.ExpiresAt.After(now) {
		return Token{}, "", invalid("expires_at %s is not after the server's time %s", spec.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	created := now.UTC().Truncate(time.Second)
	t := Token{Principal: principal, Name: spec.Name, Scopes: scopes, WindowSeconds: window, CreatedAt: &created, CreatedBy: by}
	if len(spec.Caps) > 0 {
		t.Caps = make(map[string]int64, len(spec.Caps))
		for k, v := range spec.Caps {
			t.Caps[k] = v
		}
	}
	if spec.ExpiresAt != nil {
		e := spec.ExpiresAt.UTC()
		t.ExpiresAt = &e
	}
	rec, err := json.Marshal(t)
	if err != nil {
		return Token{}, "", fmt.Errorf("auth: encode token: %w", err)
	}
	tok, err := NewToken()
	if err != nil {
		return Token{}, "", err
	}
	h := hash(tok)
	err = s.retry(func(tx store.Txn) error {
		n := 0
		err := tx.Iterate(namedKey(prefixNamed, principal, ""), nil, func(k, _ []byte) error {
			if string(k[len(prefixNamed)+len(principal)+1:]) == spec.Name {
				return &kernel.Error{Code: abi.AlreadyExists, Msg: fmt.Sprintf("%s already has a token named %q: revoke it first, or pick another name", principal, spec.Name)}
			}
			n++
			return nil
		})
		if err != nil {
			return err
		}
		if n >= MaxTokensPerPrincipal {
			return &kernel.Error{Code: abi.QuotaExceeded, Msg: fmt.Sprintf("%s holds %d named tokens, the most a principal may: revoke one first", principal, n)}
		}
		if err := tx.Set(tokenKey(h), append([]byte{roleNamed}, rec...)); err != nil {
			return err
		}
		return tx.Set(namedKey(prefixNamed, principal, spec.Name), []byte(h))
	})
	if err != nil {
		return Token{}, "", tokenErr("save the token "+spec.Name+" of "+principal, err)
	}
	return t, tok, nil
}

// tokenErr passes a coded error on and wraps a store's.
func tokenErr(what string, err error) error {
	var ke *kernel.Error
	if errors.As(err, &ke) {
		return ke
	}
	return &kernel.Error{Code: abi.Internal, Msg: "auth: " + what, Err: err}
}

// decodeNamed decodes the record of a named token (after its role byte).
func decodeNamed(v []byte) (Identity, bool, error) {
	var t Token
	if err := json.Unmarshal(v, &t); err != nil || t.Principal == "" || t.Name == "" {
		return Identity{}, false, fmt.Errorf("auth: malformed token record in the store")
	}
	return Identity{Principal: t.Principal, Token: t.Name, Grant: &t}, true, nil
}

// Tokens lists principal's tokens, by name: its default token (when it
// has one) and its named tokens, with when each was last used and, for a
// capped one, what its current window (at now) has spent.
func (s *Store) Tokens(principal string, now time.Time) ([]Token, error) {
	if s.kv == nil {
		s.mu.RLock()
		_, ok := s.f.Principals[principal]
		s.mu.RUnlock()
		if !ok {
			return []Token{}, nil
		}
		return []Token{{Principal: principal, Name: DefaultToken, Scopes: []string{ScopeAll}}}, nil
	}
	out := []Token{}
	err := s.kv.View(func(tx store.Txn) error {
		if _, err := tx.Get(principalKey(principal)); err == nil {
			out = append(out, Token{Principal: principal, Name: DefaultToken, Scopes: []string{ScopeAll}})
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var hashes []string
		err := tx.Iterate(namedKey(prefixNamed, principal, ""), nil, func(_, v []byte) error {
			hashes = append(hashes, string(v))
			return nil
		})
		if err != nil {
			return err
		}
		for _, h := range hashes {
			v, err := tx.Get(tokenKey(h))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if len(v) < 2 || v[0] != roleNamed {
				return fmt.Errorf("auth: malformed token record in the store")
			}
			id, _, err := decodeNamed(v[1:])
			if err != nil {
				return err
			}
			out = append(out, *id.Grant)
		}
		for i := range out {
			t := &out[i]
			if v, err := tx.Get(namedKey(prefixUsed, principal, t.Name)); err == nil {
				if ns, ok := parseNanos(v); ok {
					u := time.Unix(0, ns).UTC()
					t.LastUsed = &u
				}
			}
			if len(t.Caps) > 0 {
				row, err := readSpend(tx, principal, t.Name)
				if err != nil {
					return err
				}
				b := bucket(now, t.WindowSeconds)
				start := time.Unix(b*t.WindowSeconds, 0).UTC()
				t.WindowStart = &start
				t.Spent = map[string]int64{}
				for k := range t.Caps {
					if row.Bucket == b {
						t.Spent[k] = row.Spent[k]
					} else {
						t.Spent[k] = 0
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, tokenErr("read the tokens of "+principal, err)
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RevokeToken revokes principal's token name (DefaultToken included) in
// one transaction: from its commit on, no node authenticates it. NOT_FOUND
// when there is none.
func (s *Store) RevokeToken(principal, name string) error {
	if err := s.needKV(); err != nil {
		return err
	}
	err := s.retry(func(tx store.Txn) error {
		key := namedKey(prefixNamed, principal, name)
		if name == DefaultToken {
			key = principalKey(principal)
		}
		h, err := tx.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			return &kernel.Error{Code: abi.NotFound, Msg: fmt.Sprintf("%s has no token named %q", principal, name)}
		}
		if err != nil {
			return err
		}
		for _, k := range [][]byte{tokenKey(string(h)), key, namedKey(prefixUsed, principal, name), namedKey(prefixSpent, principal, name)} {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return tokenErr("revoke the token "+name+" of "+principal, err)
	}
	s.touchMu.Lock()
	delete(s.touched, principal+"\x00"+name)
	s.touchMu.Unlock()
	return nil
}

// touchState is Store's memory of when it last recorded each token's use.
type touchState struct {
	touchMu sync.Mutex
	touched map[string]time.Time // principal NUL name -> when recorded
}

// Touch records that id's token was used at now, at most once per
// TouchEvery per token on this node (a store write when it does; none
// otherwise). A token revoked meanwhile is left alone. Failures are
// returned for logging only: a use was authenticated either way.
func (s *Store) Touch(id Identity, now time.Time) error {
	if s.kv == nil || id.Admin || id.Principal == "" {
		return nil
	}
	name := id.TokenName()
	k := id.Principal + "\x00" + name
	s.touchMu.Lock()
	if last, ok := s.touched[k]; ok && now.Sub(last) < TouchEvery && !now.Before(last) {
		s.touchMu.Unlock()
		return nil
	}
	if s.touched == nil || len(s.touched) >= maxTouched {
		s.touched = make(map[string]time.Time)
	}
	s.touched[k] = now
	s.touchMu.Unlock()
	return s.retry(func(tx store.Txn) error {
		key := namedKey(prefixNamed, id.Principal, name)
		if id.Grant == nil {
			key = principalKey(id.Principal)
		}
		if _, err := tx.Get(key); errors.Is(err, store.ErrNotFound) {
			return nil // revoked since it authenticated
		} else if err != nil {
			return err
		}
		return tx.Set(namedKey(prefixUsed, id.Principal, name), fmt.Appendf(nil, "%d", now.UnixNano()))
	})
}

func parseNanos(v []byte) (int64, bool) {
	var n int64
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
