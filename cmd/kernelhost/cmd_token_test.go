package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
)

// TestTokenCommands: 'principal token create|list|revoke' in client mode
// (against a served world, with the principal's default token and the
// admin token) and locally: a read-only token reads and is refused a
// transfer and a wider token; its secret never shows in a list; a
// revocation stops it at once.
func TestTokenCommands(t *testing.T) {
	t.Parallel()
	s := newServed(t)
	var created tokenCreated
	require.NoError(t, json.Unmarshal([]byte(s.ok(t, "alice", "principal", "token", "create", "alice", "reader",
		"--scope", "read-only", "--cap", "scrip=10", "--window", "30m", "--expires-in", "24h", "-o", "json")), &created))
	require.Equal(t, []string{"query", "read"}, created.Token.Scopes)
	require.Equal(t, int64(1800), created.Token.WindowSeconds)
	require.NotNil(t, created.Token.ExpiresAt)
	require.Contains(t, s.ok(t, "admin", "principal", "token", "create", "alice", "payer", "--scope", "transfer"), "created token payer of alice (scopes transfer)")
	require.Contains(t, s.fails(t, "bob", exitError, "principal", "token", "create", "alice", "mine", "--scope", "*"), "PERMISSION_DENIED")
	require.Contains(t, s.fails(t, "alice", exitUsage, "principal", "token", "create", "alice", "x", "--scope", "read", "--cap", "scrip"), "--cap")

	list := s.ok(t, "alice", "principal", "token", "list", "alice")
	require.Contains(t, list, "reader")
	require.Contains(t, list, "scrip 0/10 per 30m0s")
	require.NotContains(t, list, created.Secret[len(auth.TokenPrefix):])

	// The reader's own context.
	cfg := kconfig{Contexts: []kcontext{{Name: "reader", Server: s.url, Token: created.Secret}}}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	reader := &served{dir: s.dir, url: s.url, config: filepath.Join(t.TempDir(), "reader.json"), tokens: s.tokens}
	require.NoError(t, os.WriteFile(reader.config, b, 0o600))
	require.Contains(t, reader.ok(t, "reader", "principal", "list"), "alice")
	require.Contains(t, reader.fails(t, "reader", exitError, "scrip", "transfer", "--to", "bob", "--amount", "1"), `lacks the scope "transfer"`)
	require.Contains(t, reader.fails(t, "reader", exitError, "principal", "token", "create", "alice", "wider", "--scope", "*"), "PERMISSION_DENIED")

	require.Contains(t, s.ok(t, "alice", "principal", "token", "revoke", "alice", "reader"), "revoked token reader of alice")
	require.Contains(t, reader.fails(t, "reader", exitError, "principal", "list"), "UNAUTHENTICATED")
	require.Contains(t, s.fails(t, "alice", exitError, "principal", "token", "revoke", "alice", "reader"), "NOT_FOUND")

	// Locally, with the admin's authority.
	dir := filepath.Join(t.TempDir(), "world")
	ok(t, dir, "init")
	ok(t, dir, "principal", "create", "carol")
	require.Contains(t, ok(t, dir, "principal", "token", "create", "carol", "ro", "--scope", "read-only"), "secret (shown this once): kh_")
	require.Contains(t, ok(t, dir, "principal", "token", "list", "carol"), "ro ")
	require.Contains(t, ok(t, dir, "principal", "token", "revoke", "carol", "ro"), "revoked")
	require.Contains(t, fails(t, dir, exitError, "principal", "token", "list", "nobody"), "NOT_FOUND")
}
