package auth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// TestNamedTokens: a named token created on one node authenticates on the
// other with its grant; the list shows it (never its secret) beside the
// default token; a revocation on either node stops it on both at once,
// and its secret is nowhere in the store.
func TestNamedTokens(t *testing.T) {
	for name, nodes := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a1, _, toks, err := auth.Init(nodes[0], []string{"alice"})
			require.NoError(t, err)
			a2, err := auth.Open(nodes[1])
			require.NoError(t, err)

			exp := t0.Add(time.Hour)
			tk, secret, err := a1.CreateToken("alice", auth.TokenSpec{Name: "reader", Scopes: []string{"read-only"},
				Caps: map[string]int64{"scrip": 10}, ExpiresAt: &exp}, t0, "alice")
			require.NoError(t, err)
			require.Equal(t, []string{"query", "read"}, tk.Scopes, "the preset is expanded and stored as its list")
			require.Equal(t, int64(3600), tk.WindowSeconds, "caps default to an hour's window")
			for _, a := range []*auth.Store{a1, a2} {
				id, ok, err := a.Lookup(secret)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, "alice", id.Principal)
				require.Equal(t, "reader", id.TokenName())
				require.True(t, id.Allows("read"))
				require.True(t, id.Allows("query"))
				require.False(t, id.Allows("write"))
				require.False(t, id.Unrestricted())
				require.True(t, id.Capped())
				require.False(t, id.Expired(t0))
				require.True(t, id.Expired(exp))

				def, ok := a.Authenticate(toks[0])
				require.True(t, ok)
				require.Equal(t, auth.DefaultToken, def.TokenName())
				require.True(t, def.Unrestricted())
				require.True(t, def.Allows("transfer"))
			}

			_, _, err = a2.CreateToken("alice", auth.TokenSpec{Name: "reader", Scopes: []string{"read"}}, t0, "admin")
			require.Equal(t, abi.AlreadyExists, api.CodeOf(err))

			list, err := a2.Tokens("alice", t0)
			require.NoError(t, err)
			require.Len(t, list, 2)
			require.Equal(t, auth.DefaultToken, list[0].Name)
			require.Equal(t, []string{"*"}, list[0].Scopes)
			require.Equal(t, "reader", list[1].Name)
			require.Equal(t, map[string]int64{"scrip": 0}, list[1].Spent)

			all, outside := dump(t, nodes[0])
			require.False(t, outside)
			require.NotContains(t, string(all), strings.TrimPrefix(secret, auth.TokenPrefix), "only hashes are stored")

			require.NoError(t, a2.RevokeToken("alice", "reader"))
			for _, a := range []*auth.Store{a1, a2} {
				_, ok, err := a.Lookup(secret)
				require.NoError(t, err)
				require.False(t, ok, "revoked on node 2, refused at once on both")
			}
			require.Equal(t, abi.NotFound, api.CodeOf(a1.RevokeToken("alice", "reader")))
			list, err = a1.Tokens("alice", t0)
			require.NoError(t, err)
			require.Len(t, list, 1)

			// The default token can be revoked too, and reissued.
			require.NoError(t, a1.RevokeToken("alice", auth.DefaultToken))
			_, ok := a2.Authenticate(toks[0])
			require.False(t, ok)
			fresh, err := a2.Issue("alice")
			require.NoError(t, err)
			_, ok = a1.Authenticate(fresh)
			require.True(t, ok)
		})
	}
}

// TestCreateTokenRejects: every malformed grant is INVALID_ARGUMENT and
// writes nothing.
func TestCreateTokenRejects(t *testing.T) {
	st := store.NewMem()
	defer st.Close()
	a, _, _, err := auth.Init(st, []string{"alice"})
	require.NoError(t, err)
	before, _ := dump(t, st)
	past := t0.Add(-time.Second)
	for name, spec := range map[string]auth.TokenSpec{
		"no name":          {Scopes: []string{"read"}},
		"reserved default": {Name: "default", Scopes: []string{"read"}},
		"reserved admin":   {Name: "admin", Scopes: []string{"read"}},
		"upper case":       {Name: "Reader", Scopes: []string{"read"}},
		"slash":            {Name: "a/b", Scopes: []string{"read"}},
		"long":             {Name: strings.Repeat("a", 65), Scopes: []string{"read"}},
		"no scope":         {Name: "x"},
		"unknown scope":    {Name: "x", Scopes: []string{"read", "reads"}},
		"pattern":          {Name: "x", Scopes: []string{"read*"}},
		"unknown cap":      {Name: "x", Scopes: []string{"read"}, Caps: map[string]int64{"disk": 1}},
		"negative cap":     {Name: "x", Scopes: []string{"read"}, Caps: map[string]int64{"scrip": -1}},
		"window, no caps":  {Name: "x", Scopes: []string{"read"}, Window: time.Minute},
		"short window":     {Name: "x", Scopes: []string{"read"}, Caps: map[string]int64{"scrip": 1}, Window: time.Millisecond},
		"long window":      {Name: "x", Scopes: []string{"read"}, Caps: map[string]int64{"scrip": 1}, Window: 400 * 24 * time.Hour},
		"expired":          {Name: "x", Scopes: []string{"read"}, ExpiresAt: &past},
	} {
		_, _, err := a.CreateToken("alice", spec, t0, "alice")
		require.Equal(t, abi.InvalidArgument, api.CodeOf(err), "%s: %v", name, err)
	}
	after, _ := dump(t, st)
	require.Equal(t, before, after)
}

// TestTokenScopesCoverEveryKind: every action kind of the kernel is a
// scope a token may name, and no preset holds a kind by accident: the
// presets are exactly these lists.
func TestTokenScopesCoverEveryKind(t *testing.T) {
	for _, k := range kernel.Kinds() {
		require.True(t, auth.KnownScope(string(k)), k)
	}
	require.True(t, auth.KnownScope(string(kernel.KindLLMCall)))
	require.Equal(t, map[string][]string{"read-only": {"query", "read"}}, auth.Presets)
}

// TestSchemaUpgrade: a store of layout version 1 (before named tokens) is
// upgraded in place by Open: its tokens keep working, and named tokens
// can be added.
func TestSchemaUpgrade(t *testing.T) {
	st := store.NewMem()
	defer st.Close()
	_, admin, toks, err := auth.Init(st, []string{"alice"})
	require.NoError(t, err)
	require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Set([]byte(auth.Prefix+"schema"), []byte("1")) }))
	a, err := auth.Open(st)
	require.NoError(t, err)
	var v []byte
	require.NoError(t, st.View(func(tx store.Txn) error {
		v, err = tx.Get([]byte(auth.Prefix + "schema"))
		return err
	}))
	require.Equal(t, "2", string(v))
	for _, tok := range []string{admin, toks[0]} {
		_, ok := a.Authenticate(tok)
		require.True(t, ok)
	}
	_, _, err = a.CreateToken("alice", auth.TokenSpec{Name: "r", Scopes: []string{"read"}}, t0, "admin")
	require.NoError(t, err)

	require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Set([]byte(auth.Prefix+"schema"), []byte("3")) }))
	_, err = auth.Open(st)
	require.ErrorContains(t, err, "layout version \"3\"")
}

// TestReserveExact: concurrent reservations on one capped token, from two
// nodes, never take more than the cap in total; what is settled is given
// back; a new window starts empty; a revoked token reserves nothing.
func TestReserveExact(t *testing.T) {
	for name, nodes := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a1, _, _, err := auth.Init(nodes[0], []string{"alice"})
			require.NoError(t, err)
			a2, err := auth.Open(nodes[1])
			require.NoError(t, err)
			_, secret, err := a1.CreateToken("alice", auth.TokenSpec{Name: "agent", Scopes: []string{"*"},
				Caps: map[string]int64{"scrip": 25, "cpu_rate": 100}, Window: time.Minute}, t0, "admin")
			require.NoError(t, err)
			id, ok := a1.Authenticate(secret)
			require.True(t, ok)

			var (
				mu    sync.Mutex
				taken int64
				wg    sync.WaitGroup
			)
			for n := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := []*auth.Store{a1, a2}[n%2]
					for range 5 {
						r, err := a.Reserve(id, t0, []auth.Need{{Key: "scrip", Amount: 2}})
						var ce *auth.CapError
						if errors.As(err, &ce) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						taken += r.Took("scrip")
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			require.Equal(t, int64(24), taken, "twelve reservations of 2 fit in 25; no more")

			// Clamped: takes what is left (1), and settles to what was spent.
			r, err := a2.Reserve(id, t0, []auth.Need{{Key: "scrip", Amount: -1, Clamp: true}, {Key: "cpu_rate", Later: true}})
			require.NoError(t, err)
			require.Equal(t, int64(1), r.Took("scrip"))
			require.NoError(t, a1.Settle(r, map[string]int64{"scrip": 0, "cpu_rate": 150}))
			list, err := a1.Tokens("alice", t0)
			require.NoError(t, err)
			require.Equal(t, "agent", list[0].Name, "by name")
			require.Equal(t, map[string]int64{"scrip": 24, "cpu_rate": 150}, list[0].Spent)

			_, err = a1.Reserve(id, t0, []auth.Need{{Key: "cpu_rate", Later: true}})
			var ce *auth.CapError
			require.ErrorAs(t, err, &ce, "cpu_rate overshot: refused until the window ends")
			require.Equal(t, 60*time.Second, ce.RetryAfter)
			_, err = a1.Reserve(id, t0, []auth.Need{{Key: "scrip", Amount: 2}})
			require.ErrorAs(t, err, &ce)
			require.Equal(t, abi.QuotaExceeded, api.CodeOf(err))
			require.False(t, ce.Final)
			_, err = a1.Reserve(id, t0, []auth.Need{{Key: "scrip", Amount: 26}})
			require.ErrorAs(t, err, &ce)
			require.True(t, ce.Final, "more than the whole cap: no wait helps")

			r, err = a1.Reserve(id, t0.Add(time.Minute), []auth.Need{{Key: "scrip", Amount: 25}})
			require.NoError(t, err, "the next window starts empty")
			require.Equal(t, int64(25), r.Took("scrip"))
			require.NoError(t, a1.Settle(r, map[string]int64{"scrip": 5}))

			require.NoError(t, a2.RevokeToken("alice", "agent"))
			_, err = a1.Reserve(id, t0.Add(time.Minute), []auth.Need{{Key: "scrip", Amount: 1}})
			require.Equal(t, abi.Unauthenticated, api.CodeOf(err), "a revoked token reserves nothing")
			all, _ := dump(t, nodes[0])
			require.NotContains(t, string(all), auth.Prefix+"s/", "the revocation removed its spending row")
		})
	}
}

// TestTouch: last_used is recorded at most once per TouchEvery per token
// on a node, and shows in the list.
func TestTouch(t *testing.T) {
	st := store.NewMem()
	defer st.Close()
	a, _, toks, err := auth.Init(st, []string{"alice"})
	require.NoError(t, err)
	id, ok := a.Authenticate(toks[0])
	require.True(t, ok)
	require.NoError(t, a.Touch(id, t0))
	require.NoError(t, a.Touch(id, t0.Add(30*time.Second)))
	list, err := a.Tokens("alice", t0)
	require.NoError(t, err)
	require.NotNil(t, list[0].LastUsed)
	require.Equal(t, t0, *list[0].LastUsed, "the second use, within a minute, wrote nothing")
	require.NoError(t, a.Touch(id, t0.Add(time.Minute)))
	list, err = a.Tokens("alice", t0)
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Minute), *list[0].LastUsed)
}
