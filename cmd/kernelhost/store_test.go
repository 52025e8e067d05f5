package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/store"
	"github.com/kernelhost/kernelhost/store/postgres"
)

// requireOnlyHashes fails unless the Badger store of the world in dir holds
// tokens (keys under auth.Prefix) and no key or value in it holds the secret
// part of any of tokens: only their hashes are stored.
func requireOnlyHashes(t *testing.T, dir string, tokens []string) {
	t.Helper()
	st, err := store.OpenBadger(storeDir(dir), store.BadgerOptions{})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	requireStoreOnlyHashes(t, st, tokens)
}

// requireStoreOnlyHashes is requireOnlyHashes on an open store.
func requireStoreOnlyHashes(t *testing.T, st store.Store, tokens []string) {
	t.Helper()
	n := 0
	require.NoError(t, st.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error {
			if bytes.HasPrefix(k, []byte(auth.Prefix)) {
				n++
			}
			for _, tok := range tokens {
				secret := []byte(strings.TrimPrefix(tok, auth.TokenPrefix))
				require.False(t, bytes.Contains(k, secret) || bytes.Contains(v, secret), "a token is stored in the clear under %q", k)
			}
			return nil
		})
	}))
	require.Positive(t, n, "the tokens are in the store")
}

// regexpToken matches a token.
var regexpToken = regexp.MustCompile(`kh_[0-9a-f]{64}`)

// localGlobals are the globals of a command on the world in dir, in store
// pg ("" for Badger), that writes nowhere.
func localGlobals(dir, pg string) *globals {
	return &globals{dataDir: dir, store: pg, out: io.Discard, errOut: io.Discard, log: slog.New(slog.DiscardHandler)}
}

// runChild runs kernelhost (this test binary, see runMainEnv) with args
// and the extra environment env, and returns its stdout, stderr and exit
// code.
func runChild(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run kernelhost %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestStoreFlag: init --store puts the world in PostgreSQL and nothing of
// it in --data-dir; every command opening a world takes --store (or
// $KERNELHOST_STORE), from any data directory, and sees the same world,
// tokens included; an existing world is refused without --force and wiped
// with it; a store without tokens is an incomplete world; a --store that is
// not a postgres URL is a usage error that does not print its password.
func TestStoreFlag(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	node1 := filepath.Join(t.TempDir(), "node1")
	node2 := filepath.Join(t.TempDir(), "node2")
	on := func(args ...string) []string { return append([]string{"--store", dsn}, args...) }

	msg := fails(t, node1, exitError, on("principal", "list")...)
	require.Equal(t, "kernelhost: no world in "+redact(dsn)+": run 'kernelhost init --store URL' first\n", msg)

	var out initOutput
	spec := filepath.Join("..", "..", "genesis", "example.json")
	require.NoError(t, json.Unmarshal([]byte(ok(t, node1, on("init", "--genesis", spec, "-o", "json")...)), &out))
	require.Equal(t, redact(dsn), out.Store)
	require.Len(t, out.Principals, 3)
	for _, p := range []string{storeDir(node1), authPath(node1)} {
		_, err := os.Stat(p)
		require.ErrorIs(t, err, os.ErrNotExist, "nothing of the world is in the data dir: %s", p)
	}
	text := ok(t, node1, on("principal", "create", "carol", "--balance", "7")...)
	carol := regexpToken.FindString(text)
	require.NotEmpty(t, carol, text)

	// Another data dir (another node), by flag and by $KERNELHOST_STORE:
	// the same world.
	require.Contains(t, ok(t, node2, on("principal", "list")...), "carol")
	stdout, stderr, code := runChild(t, []string{storeEnv + "=" + dsn}, "--data-dir", node2, "principal", "show", "carol")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "balance:    7")
	g := localGlobals(node2, dsn)
	require.NoError(t, g.withWorld(context.Background(), func(w *world) error {
		for tok, want := range map[string]auth.Identity{out.AdminToken: {Admin: true}, out.Principals[0].Token: {Principal: out.Principals[0].ID}, carol: {Principal: "carol"}} {
			id, ok := w.auth.Authenticate(tok)
			require.True(t, ok, "node 2 knows node 1's tokens")
			require.Equal(t, want, id)
		}
		requireStoreOnlyHashes(t, w.st, []string{out.AdminToken, out.Principals[0].Token, carol})
		return nil
	}))

	// An existing world: refused, then wiped with --force.
	msg = fails(t, node2, exitError, on("init")...)
	require.Contains(t, msg, "a world already exists in "+redact(dsn))
	require.Contains(t, msg, "--force")
	var again initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, node2, on("init", "--force", "-o", "json")...)), &again))
	require.Empty(t, again.Principals)
	require.NotContains(t, ok(t, node1, on("principal", "list")...), "carol")
	require.NoError(t, g.withWorld(context.Background(), func(w *world) error {
		_, ok := w.auth.Authenticate(out.AdminToken)
		require.False(t, ok, "the wiped world's tokens are gone")
		_, ok = w.auth.Authenticate(again.AdminToken)
		require.True(t, ok)
		return nil
	}))

	// A store whose tokens are missing is a world whose init did not end.
	st, err := postgres.Open(dsn, postgres.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Delete([]byte(auth.Prefix + "admin")) }))
	require.NoError(t, st.Close())
	msg = fails(t, node1, exitError, on("principal", "list")...)
	require.Contains(t, msg, "is incomplete")
	require.Contains(t, msg, "init --force")

	// Not a PostgreSQL URL: a usage error, the password not repeated.
	for _, bad := range []string{"mysql://u:hunter2@db/w", "host=db password=hunter2", "./some/dir"} {
		msg := fails(t, node1, exitUsage, "--store", bad, "principal", "list")
		require.Contains(t, msg, "postgres://", bad)
		require.NotContains(t, msg, "hunter2", bad)
	}
}

// TestRedact: a connection string in a message keeps where it points and
// loses its password, in the user part or the query.
func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://kh@db:5432/w?sslmode=verify-full", "postgres://kh@db:5432/w?sslmode=verify-full"},
		{"postgres://kh:hunter2@db/w", "postgres://kh:xxxxx@db/w"},
		{"postgresql://db/w?password=hunter2&sslmode=disable", "postgresql://db/w?password=xxxxx&sslmode=disable"},
		{"host=db password=hunter2", "(a connection string that is not a URL)"},
	} {
		require.Equal(t, tc.want, redact(tc.in), tc.in)
	}
}

// TestAuthJSONImported: a Badger world of an earlier kernelhost keeps its
// token hashes in <data-dir>/auth.json; the first command that opens it
// moves them into the store and removes the file, and its tokens keep
// working. A Badger store with neither is an incomplete world.
func TestAuthJSONImported(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)

	// Make it an earlier release's world: tokens in auth.json only.
	st, err := store.OpenBadger(storeDir(dir), store.BadgerOptions{})
	require.NoError(t, err)
	deleteAuthKeys(t, st)
	require.NoError(t, st.Close())
	msg := fails(t, dir, exitError, "principal", "list")
	require.Contains(t, msg, "the world at "+dir+" is incomplete")
	legacy, admin, err := auth.Create(authPath(dir))
	require.NoError(t, err)
	alice, err := legacy.Issue("alice")
	require.NoError(t, err)

	require.Contains(t, ok(t, dir, "principal", "list"), "alice")
	_, err = os.Stat(authPath(dir))
	require.ErrorIs(t, err, os.ErrNotExist, "imported, then removed")
	require.NoError(t, localGlobals(dir, "").withWorld(context.Background(), func(w *world) error {
		id, ok := w.auth.Authenticate(admin)
		require.True(t, ok)
		require.True(t, id.Admin)
		id, ok = w.auth.Authenticate(alice)
		require.True(t, ok)
		require.Equal(t, "alice", id.Principal)
		return nil
	}))
	requireOnlyHashes(t, dir, []string{admin, alice})
}

// deleteAuthKeys deletes every key of st under auth.Prefix.
func deleteAuthKeys(t *testing.T, st store.Store) {
	t.Helper()
	require.NoError(t, st.Update(func(tx store.Txn) error {
		var keys [][]byte
		if err := tx.Iterate([]byte(auth.Prefix), nil, func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		require.NotEmpty(t, keys)
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}))
}
