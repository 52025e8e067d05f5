package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
)

func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	_, err := auth.Load(path)
	require.ErrorIs(t, err, auth.ErrNotFound)

	s, admin, err := auth.Create(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(admin, auth.TokenPrefix))
	alice, err := s.Issue("alice")
	require.NoError(t, err)
	bob, err := s.Issue("bob")
	require.NoError(t, err)
	require.NotEqual(t, alice, bob)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, tok := range []string{admin, alice, bob} {
		require.NotContains(t, string(raw), tok, "tokens are stored hashed")
	}

	// A fresh load authenticates the same tokens.
	s2, err := auth.Load(path)
	require.NoError(t, err)
	for _, st := range []*auth.Store{s, s2} {
		id, ok := st.Authenticate(admin)
		require.True(t, ok)
		require.Equal(t, auth.Identity{Admin: true}, id)
		id, ok = st.Authenticate(alice)
		require.True(t, ok)
		require.Equal(t, auth.Identity{Principal: "alice"}, id)
		for _, bad := range []string{"", "kh_", alice + "x", "Bearer " + alice, strings.TrimPrefix(bob, auth.TokenPrefix)} {
			_, ok = st.Authenticate(bad)
			require.False(t, ok, bad)
		}
	}
	ps, err := s2.Principals()
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "bob"}, ps)

	// Reissuing replaces the old token.
	alice2, err := s.Issue("alice")
	require.NoError(t, err)
	_, ok := s.Authenticate(alice)
	require.False(t, ok)
	id, ok := s.Authenticate(alice2)
	require.True(t, ok)
	require.Equal(t, "alice", id.Principal)

	// No temporary files are left behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestLoad_corrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	require.NoError(t, os.WriteFile(path, []byte("{"), 0o600))
	_, err := auth.Load(path)
	require.ErrorContains(t, err, "not valid JSON")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":9}`), 0o600))
	_, err = auth.Load(path)
	require.ErrorContains(t, err, "version 9")
}
