package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/store"
)

// initTokens inits a world at dir with alice (1000), bob (100) and sponsor
// (5000) and returns its tokens by principal ("admin" too).
func initTokens(t *testing.T, dir string, flags ...string) map[string]string {
	t.Helper()
	spec := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100},{"id":"sponsor","balance":5000}]}`), 0o600))
	var out initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, append([]string{"init", "--genesis", spec, "-o", "json"}, flags...)...)), &out))
	toks := map[string]string{"admin": out.AdminToken}
	for _, p := range out.Principals {
		toks[p.ID] = p.Token
	}
	return toks
}

// whose returns whose token tok is in the world at dir ("admin", a
// principal, or "" for none).
func whose(t *testing.T, dir, tok string) string {
	t.Helper()
	st := roStore(t, dir)
	defer st.Close()
	a, err := auth.Open(st)
	require.NoError(t, err)
	id, found, err := a.Lookup(tok)
	require.NoError(t, err)
	switch {
	case !found:
		return ""
	case id.Admin:
		return "admin"
	}
	return id.Principal
}

// TestInitFromSnapshotSameState: 'init --from' of a snapshot gives a world
// whose state hash is the source's, that accepts the source's tokens (or,
// with --new-tokens, only new ones, for the same principals), and that
// works and goes its own way; a snapshot file is owner-only, and every
// bad start (an existing world, a file that is not an intact snapshot,
// --from with --genesis, --new-tokens alone, an --out that exists) is
// refused and leaves nothing behind.
func TestInitFromSnapshotSameState(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	toks := initTokens(t, src)
	ok(t, src, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "9")
	ok(t, src, "artifact", "put", "notes/1", "--as", "alice", "--type", "text", "--text", "hello")
	_, srcHash := worldState(t, src)

	snap := filepath.Join(t.TempDir(), "w.khsnap")
	var so snapshotOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, src, "snapshot", "--out", snap, "-o", "json")), &so))
	require.Equal(t, srcHash, so.StateHash)
	require.Equal(t, snap, so.File)
	require.Equal(t, src, so.World)
	require.Positive(t, so.Entries)
	fi, err := os.Stat(snap)
	require.NoError(t, err)
	require.Equal(t, so.Bytes, fi.Size())
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the snapshot holds the world: owner only")
	left, err := filepath.Glob(filepath.Join(filepath.Dir(snap), ".*tmp*"))
	require.NoError(t, err)
	require.Empty(t, left, "no temporary file left")

	// A fork with the source's tokens.
	fork := filepath.Join(t.TempDir(), "fork")
	var fo forkOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, fork, "init", "--from", snap, "-o", "json")), &fo))
	require.Equal(t, "kept", fo.Tokens)
	require.Empty(t, fo.AdminToken)
	require.Equal(t, srcHash, fo.StateHash)
	require.Equal(t, so.Entries, fo.Entries)
	_, forkHash := worldState(t, fork)
	require.Equal(t, srcHash, forkHash, "the fork's state is the source's")
	for who, tok := range toks {
		require.Equal(t, who, whose(t, fork, tok), "the fork accepts the source's token of %s", who)
	}
	require.Equal(t, balances(t, src), balances(t, fork))
	require.Equal(t, "hello", ok(t, fork, "artifact", "get", "notes/1", "--as", "bob"))
	// It goes its own way.
	ok(t, fork, "scrip", "transfer", "--as", "bob", "--to", "alice", "--amount", "5")
	require.Equal(t, uint64(109), balances(t, src)["bob"])
	require.Equal(t, uint64(104), balances(t, fork)["bob"])

	// A fork with new tokens: the same principals, none of the old tokens.
	fork2 := filepath.Join(t.TempDir(), "fork2")
	fo = forkOutput{}
	require.NoError(t, json.Unmarshal([]byte(ok(t, fork2, "init", "--from", snap, "--new-tokens", "-o", "json")), &fo))
	require.Equal(t, "new", fo.Tokens)
	require.Equal(t, srcHash, fo.StateHash, "tokens are no part of the state")
	require.Equal(t, "admin", whose(t, fork2, fo.AdminToken))
	ids := []string{}
	for _, p := range fo.Principals {
		require.Equal(t, p.ID, whose(t, fork2, p.Token))
		ids = append(ids, p.ID)
	}
	require.Equal(t, []string{"alice", "bob", "sponsor"}, ids)
	for who, tok := range toks {
		require.Empty(t, whose(t, fork2, tok), "the old token of %s is refused", who)
	}
	text := ok(t, filepath.Join(t.TempDir(), "fork3"), "init", "--from", snap, "--new-tokens")
	require.Len(t, regexp.MustCompile(`kh_[0-9a-f]{64}`).FindAllString(text, -1), 4, text)

	// Refusals.
	msg := fails(t, fork, exitError, "init", "--from", snap)
	require.Contains(t, msg, "a world already exists at "+fork)
	require.Equal(t, uint64(104), balances(t, fork)["bob"], "the world is untouched")
	ok(t, fork, "init", "--from", snap, "--force")
	require.Equal(t, uint64(109), balances(t, fork)["bob"], "--force starts over from the snapshot")

	b, err := os.ReadFile(snap)
	require.NoError(t, err)
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)-10],
		"flipped":   append(append([]byte{}, b[:100]...), append([]byte{b[100] ^ 0x80}, b[101:]...)...),
		"extended":  append(append([]byte{}, b...), 'x'),
		"garbage":   []byte("not a snapshot"),
	} {
		f := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(f, bad, 0o600))
		dir := filepath.Join(t.TempDir(), "w")
		msg := fails(t, dir, exitError, "init", "--from", f)
		require.Contains(t, msg, store.ErrBadSnapshot.Error(), name)
		require.False(t, worldExists(dir), "%s: no half world left", name)
	}
	dir := filepath.Join(t.TempDir(), "w")
	fails(t, dir, exitError, "init", "--from", filepath.Join(t.TempDir(), "missing"))
	require.False(t, worldExists(dir))
	fails(t, dir, exitUsage, "init", "--from", snap, "--genesis", "x.json")
	fails(t, dir, exitUsage, "init", "--new-tokens")
	require.False(t, worldExists(dir))

	msg = fails(t, src, exitError, "snapshot", "--out", snap)
	require.Contains(t, msg, "exists: give --force")
	fails(t, src, exitUsage, "snapshot")
	ok(t, src, "snapshot", "--out", snap, "--force")
	fails(t, filepath.Join(t.TempDir(), "none"), exitError, "snapshot", "--out", filepath.Join(t.TempDir(), "s"))
}

// TestSnapshotThroughServer: with --record, serve records what its clients
// do and refuses explain; 'snapshot' through the server (the admin token of
// a context: GET /v1/snapshot) writes the served world, which replays from
// a snapshot taken before to the same state; a principal's token is
// refused and writes no file.
func TestSnapshotThroughServer(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "world")
	toks := initTokens(t, dir)
	start := filepath.Join(t.TempDir(), "start.khsnap")
	ok(t, dir, "snapshot", "--out", start)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sout, serr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"--data-dir", dir, "serve", "--record", "--addr", "127.0.0.1:0"}, &sout, &serr)
	}()
	re := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	var addr string
	require.Eventually(t, func() bool {
		if m := re.FindStringSubmatch(serr.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	}, 30*time.Second, 10*time.Millisecond, "serve did not start: %s", serr.String())
	url := "http://" + addr

	var cfg kconfig
	for name, tok := range toks {
		cfg.Contexts = append(cfg.Contexts, kcontext{Name: name, Server: url, Token: tok})
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	config := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(config, b, 0o600))
	as := func(who string, args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := runContext(context.Background(), append([]string{"--config", config, "--context", who}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	for _, args := range [][]string{
		{"alice", "scrip", "transfer", "--to", "bob", "--amount", "11"},
		{"alice", "artifact", "put", "notes/1", "--type", "text", "--text", "hi"},
		{"bob", "artifact", "get", "notes/1"},
	} {
		_, errOut, code := as(args[0], args[1:]...)
		require.Equal(t, exitOK, code, "%v: %s", args, errOut)
	}
	// Explain is refused while the world records.
	req, err := http.NewRequest(http.MethodPost, url+"/v1/explain", strings.NewReader(`{"kind":"read","target":"notes/1"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+toks["bob"])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var ae api.Error
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ae))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "UNAVAILABLE", ae.ErrorCode)

	// A principal's token: refused, no file.
	snap := filepath.Join(t.TempDir(), "served.khsnap")
	_, errOut, code := as("alice", "snapshot", "--out", snap)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "PERMISSION_DENIED")
	_, err = os.Stat(snap)
	require.ErrorIs(t, err, os.ErrNotExist)
	// The admin's.
	out, errOut, code := as("admin", "snapshot", "--out", snap, "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	var so snapshotOutput
	require.NoError(t, json.Unmarshal([]byte(out), &so))
	require.Equal(t, url, so.World)
	require.Equal(t, uint64(3), so.LastRecord, "the transfer, the write and the read")

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, serr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	_, served := worldState(t, dir)
	require.Equal(t, served, so.StateHash, "the snapshot is the served world")
	r, code, errOut := replayJSON(t, "--from", start, "--recording", snap)
	require.Equal(t, exitOK, code, errOut)
	require.True(t, r.Identical)
	require.Equal(t, 3, r.Replayed)
}
