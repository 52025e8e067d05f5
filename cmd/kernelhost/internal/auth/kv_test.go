package auth_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/store"
	"github.com/kernelhost/kernelhost/store/postgres"
)

// backends opens two handles on one shared store of each kind, as two
// nodes (processes) would: the in-memory store (one handle twice) and two
// connection pools on one PostgreSQL schema.
func backends(t *testing.T) map[string][2]store.Store {
	t.Helper()
	mem := store.NewMem()
	t.Cleanup(func() { _ = mem.Close() })
	out := map[string][2]store.Store{"mem": {mem, mem}}
	if pgtest.Bin() == "" && os.Getenv(pgtest.RequireEnv) != "1" {
		t.Logf("PostgreSQL not installed: only the in-memory store")
		return out
	}
	dsn := pgtest.Start(t)
	var pg [2]store.Store
	for i := range pg {
		st, err := postgres.Open(dsn, postgres.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		pg[i] = st
	}
	out["postgres"] = pg
	return out
}

// dump returns every key and value of st under auth.Prefix, and whether
// any key lies outside it.
func dump(t *testing.T, st store.Store) (all []byte, outside bool) {
	t.Helper()
	require.NoError(t, st.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error {
			outside = outside || !bytes.HasPrefix(k, []byte(auth.Prefix))
			all = append(append(append(all, k...), '='), v...)
			return nil
		})
	}))
	return all, outside
}

// TestTokensInStore: tokens written by Init on one node authenticate on
// another at once; a token issued on either works on both, and a replaced
// one stops on both; the store holds only hashes, all under x/auth/.
func TestTokensInStore(t *testing.T) {
	for name, nodes := range backends(t) {
		t.Run(name, func(t *testing.T) {
			_, err := auth.Open(nodes[0])
			require.ErrorIs(t, err, auth.ErrNotFound, "an empty store has no tokens")

			a1, admin, toks, err := auth.Init(nodes[0], []string{"alice", "bob"})
			require.NoError(t, err)
			require.Len(t, toks, 2)
			a2, err := auth.Open(nodes[1])
			require.NoError(t, err)
			_, _, _, err = auth.Init(nodes[1], []string{"mallory"})
			require.ErrorIs(t, err, auth.ErrExists, "a second init is refused")

			for _, a := range []*auth.Store{a1, a2} {
				id, ok, err := a.Lookup(admin)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, auth.Identity{Admin: true}, id)
				for i, p := range []string{"alice", "bob"} {
					id, ok := a.Authenticate(toks[i])
					require.True(t, ok, p)
					require.Equal(t, auth.Identity{Principal: p}, id)
				}
				for _, bad := range []string{"", "kh_", admin + "0", "Bearer " + admin, strings.TrimPrefix(toks[0], auth.TokenPrefix), auth.TokenPrefix + strings.Repeat("0", 64)} {
					_, ok := a.Authenticate(bad)
					require.False(t, ok, bad)
				}
			}

			// Issued on node 2, used on node 1; reissued on node 1, the
			// old one fails on node 2.
			carol, err := a2.Issue("carol")
			require.NoError(t, err)
			id, ok := a1.Authenticate(carol)
			require.True(t, ok)
			require.Equal(t, "carol", id.Principal)
			alice2, err := a1.Issue("alice")
			require.NoError(t, err)
			for _, a := range []*auth.Store{a1, a2} {
				_, ok := a.Authenticate(toks[0])
				require.False(t, ok, "the replaced token no longer works")
				id, ok := a.Authenticate(alice2)
				require.True(t, ok)
				require.Equal(t, "alice", id.Principal)
				ps, err := a.Principals()
				require.NoError(t, err)
				require.Equal(t, []string{"alice", "bob", "carol"}, ps)
			}

			all, outside := dump(t, nodes[0])
			require.False(t, outside, "auth writes only under %s", auth.Prefix)
			for _, tok := range []string{admin, toks[0], toks[1], carol, alice2} {
				require.NotContains(t, string(all), strings.TrimPrefix(tok, auth.TokenPrefix), "only hashes are stored")
			}
			// alice's old hash is gone from the index: one token entry per
			// holder (admin, alice, bob, carol).
			require.Equal(t, 4, strings.Count(string(all), auth.Prefix+"t/"))
		})
	}
}

// TestIssueRace: nodes issue the same principal's token at the same time
// (serialisable conflicts on PostgreSQL, retried); afterwards exactly one
// of the tokens they returned works, on both nodes, and the index holds one
// entry for it.
func TestIssueRace(t *testing.T) {
	for name, nodes := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a := [2]*auth.Store{}
			var err error
			a[0], _, _, err = auth.Init(nodes[0], nil)
			require.NoError(t, err)
			a[1], err = auth.Open(nodes[1])
			require.NoError(t, err)
			const perNode = 10
			var (
				mu   sync.Mutex
				toks []string
				wg   sync.WaitGroup
			)
			for n := range 2 {
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range perNode {
							tok, err := a[n].Issue("alice")
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							toks = append(toks, tok)
							mu.Unlock()
						}
					}()
				}
			}
			wg.Wait()
			require.Len(t, toks, 2*4*perNode)
			for n := range 2 {
				valid := 0
				for _, tok := range toks {
					if _, ok := a[n].Authenticate(tok); ok {
						valid++
					}
				}
				require.Equal(t, 1, valid, "node %d: exactly the last token works", n)
			}
			all, _ := dump(t, nodes[0])
			require.Equal(t, 2, strings.Count(string(all), auth.Prefix+"t/"), "admin and alice: %s", all)
		})
	}
}

// TestImport: an auth.json (the form tokens took before they moved into the
// store) is imported once: its tokens then work from the store, the file is
// gone, and a second Import does nothing. A file whose admin differs from the
// store's is refused and kept.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.json")
	st := store.NewMem()
	defer st.Close()
	imported, err := auth.Import(st, path)
	require.NoError(t, err)
	require.False(t, imported, "no file, nothing to do")

	legacy, admin, err := auth.Create(path)
	require.NoError(t, err)
	alice, err := legacy.Issue("alice")
	require.NoError(t, err)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	imported, err = auth.Import(st, path)
	require.NoError(t, err)
	require.True(t, imported)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the file is removed once imported")
	a, err := auth.Open(st)
	require.NoError(t, err)
	id, ok := a.Authenticate(admin)
	require.True(t, ok)
	require.True(t, id.Admin)
	id, ok = a.Authenticate(alice)
	require.True(t, ok)
	require.Equal(t, "alice", id.Principal)
	imported, err = auth.Import(st, path)
	require.NoError(t, err)
	require.False(t, imported)

	// Interrupted between commit and removal: the same file again is only
	// removed.
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	imported, err = auth.Import(st, path)
	require.NoError(t, err)
	require.True(t, imported)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist)

	// Another world's file is refused, and nothing changes.
	_, other, err := auth.Create(path)
	require.NoError(t, err)
	before, _ := dump(t, st)
	_, err = auth.Import(st, path)
	require.ErrorContains(t, err, "different admin tokens")
	after, _ := dump(t, st)
	require.Equal(t, before, after)
	_, err = os.Stat(path)
	require.NoError(t, err, "the file is kept")
	_, ok = a.Authenticate(other)
	require.False(t, ok)
}

// BenchmarkAuthenticate is the cost of one request's token lookup: in
// memory (the auth.json form), in a Badger store (one key read; what
// 'kernelhost serve' does on the default world) and in PostgreSQL (one
// round trip), on a world of 1000 principals.
func BenchmarkAuthenticate(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%d", i)
	}
	run := func(b *testing.B, a *auth.Store, tok string) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := a.Authenticate(tok); !ok {
				b.Fatal("token refused")
			}
		}
	}
	b.Run("file", func(b *testing.B) {
		a, _, err := auth.Create(filepath.Join(b.TempDir(), "auth.json"))
		require.NoError(b, err)
		var tok string
		for _, id := range ids {
			tok, err = a.Issue(id)
			require.NoError(b, err)
		}
		run(b, a, tok)
	})
	open := map[string]func(b *testing.B) store.Store{
		"badger": func(b *testing.B) store.Store {
			st, err := store.OpenBadger(b.TempDir(), store.BadgerOptions{})
			require.NoError(b, err)
			return st
		},
		"postgres": func(b *testing.B) store.Store {
			st, err := postgres.Open(pgtest.Start(b), postgres.Options{})
			require.NoError(b, err)
			return st
		},
	}
	for _, name := range []string{"badger", "postgres"} {
		b.Run(name, func(b *testing.B) {
			st := open[name](b)
			defer st.Close()
			a, _, toks, err := auth.Init(st, ids)
			require.NoError(b, err)
			run(b, a, toks[len(toks)-1])
		})
	}
}
