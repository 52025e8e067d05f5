package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/kernel"
)

// served is a world served by a 'kernelhost serve' child process, with a
// config file holding a context per token (admin, alice, bob, sponsor).
type served struct {
	dir    string // the data directory
	c      *child
	config string // the config file
	tokens map[string]string
	url    string
}

// newServed inits a world like newWorld, keeps its tokens, starts serve on
// it, and writes a config file (mode 0600) with one context per token.
func newServed(t *testing.T) *served {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "world")
	spec := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100},{"id":"sponsor","balance":5000}]}`), 0o600))
	var init initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "init", "--genesis", spec, "-o", "json")), &init))
	s := &served{dir: dir, tokens: map[string]string{"admin": init.AdminToken}}
	for _, p := range init.Principals {
		s.tokens[p.ID] = p.Token
	}
	s.c = startServe(t, dir)
	s.url = "http://" + s.c.addr
	var cfg kconfig
	for name, tok := range s.tokens {
		cfg.Contexts = append(cfg.Contexts, kcontext{Name: name, Server: s.url, Token: tok})
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	s.config = filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(s.config, b, 0o600))
	return s
}

// run runs kernelhost in-process against the server as context who (no
// --data-dir: client mode).
func (s *served) run(t *testing.T, who string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runContext(context.Background(), append([]string{"--config", s.config, "--context", who}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// ok runs a command as who that must succeed, returning its stdout.
func (s *served) ok(t *testing.T, who string, args ...string) string {
	t.Helper()
	out, errOut, code := s.run(t, who, args...)
	require.Equal(t, exitOK, code, "kernelhost %s %v: %s", who, args, errOut)
	return out
}

// fails runs a command as who that must fail with code, returning its
// one-line error.
func (s *served) fails(t *testing.T, who string, code int, args ...string) string {
	t.Helper()
	out, errOut, got := s.run(t, who, args...)
	require.Equal(t, code, got, "kernelhost %s %v: stdout %s stderr %s", who, args, out, errOut)
	require.True(t, strings.HasPrefix(errOut, "kernelhost: "), errOut)
	require.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	return errOut
}

// balance returns id's balance as the server shows it.
func (s *served) balance(t *testing.T, who, id string) uint64 {
	t.Helper()
	var p principalShow
	require.NoError(t, json.Unmarshal([]byte(s.ok(t, who, "principal", "show", id, "-o", "json")), &p))
	return p.Balance
}

// TestClientMode: every command that acts or reads runs against a real
// 'kernelhost serve' process through --context (a config file's named
// context: server and token), and the server binds the caller to the
// token: no --as needed, an --as naming another principal is refused
// before anything is sent, the admin token acts as nobody but runs the
// administrative commands. Each new command (edit, set-contract, invoke,
// consume, scrip mint, consent show) works in this mode as it does
// locally, with the HTTP API's field names in -o json; --request-id makes
// a retried action run once.
func TestClientMode(t *testing.T) {
	t.Parallel()
	s := newServed(t)

	// Artifacts: put, get, show, edit, set-contract, rm.
	require.Contains(t, s.ok(t, "alice", "artifact", "put", "notes/1", "--type", "text", "--text", "hello", "--meta", "topic=greetings"),
		"wrote notes/1 (5 bytes) as alice: revision 1")
	require.Equal(t, "hello", s.ok(t, "bob", "artifact", "get", "notes/1"))
	require.Equal(t, "hello", s.ok(t, "bob", "artifact", "get", "notes/1", "--as", "bob"), "--as may name the token's principal")
	show := s.ok(t, "bob", "artifact", "show", "notes/1")
	require.Contains(t, show, "created_by:      alice")
	require.Contains(t, show, `topic="greetings"`)
	require.Contains(t, s.ok(t, "alice", "artifact", "edit", "notes/1", "--meta", "topic=news", "--unset", "nothing"), "edited notes/1 as alice: revision 2")
	require.Contains(t, s.ok(t, "bob", "artifact", "show", "notes/1"), `topic="news"`)
	require.Contains(t, s.fails(t, "bob", exitError, "artifact", "edit", "notes/1", "--text", "mine"), "PERMISSION_DENIED")
	require.Contains(t, s.ok(t, "alice", "artifact", "set-contract", "notes/1", "--contract", "genesis/private"), "genesis/private now governs notes/1")
	require.Contains(t, s.fails(t, "bob", exitError, "artifact", "get", "notes/1"), "PERMISSION_DENIED")
	require.Contains(t, s.fails(t, "alice", exitError, "artifact", "put", "notes/1", "--text", "x", "--contract", "genesis/public"), "INVALID_ARGUMENT")

	// The caller is the token's: another name in --as is refused, the admin
	// token acts as nobody.
	msg := s.fails(t, "bob", exitUsage, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "5")
	require.Contains(t, msg, "--as alice, but the token is bob's")
	require.Contains(t, s.fails(t, "admin", exitError, "scrip", "transfer", "--to", "bob", "--amount", "5"), "PERMISSION_DENIED: the admin token acts as no principal")
	require.Equal(t, uint64(1000), s.balance(t, "bob", "alice"), "nothing moved")

	// Scrip: transfer (idempotent with --request-id), limit, mint (admin).
	require.Equal(t, "transferred 5 scrip from alice to bob\n", s.ok(t, "alice", "scrip", "transfer", "--to", "bob", "--amount", "5", "--request-id", "pay-1"))
	_, errOut, code := s.run(t, "alice", "scrip", "transfer", "--to", "bob", "--amount", "5", "--request-id", "pay-1")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "this request id ran before", "the server says replayed")
	require.Equal(t, uint64(995), s.balance(t, "bob", "alice"), "the retry with the same request id ran nothing")
	require.Equal(t, uint64(105), s.balance(t, "bob", "bob"))
	require.Contains(t, s.ok(t, "alice", "scrip", "limit", "--amount", "50"), "alice pays at most 50 scrip per action")
	require.Contains(t, s.ok(t, "admin", "scrip", "mint", "bob", "--amount", "7"), "minted 7 scrip to bob: balance 112")
	require.Contains(t, s.fails(t, "bob", exitError, "scrip", "mint", "bob", "--amount", "7"), "PERMISSION_DENIED")

	// Principals (create: admin), quotas (set: admin; transfer, consume).
	var created principalToken
	require.NoError(t, json.Unmarshal([]byte(s.ok(t, "admin", "principal", "create", "carol", "--balance", "30", "-o", "json")), &created))
	require.Equal(t, "carol", created.Principal.ID)
	require.True(t, strings.HasPrefix(created.Token, "kh_"))
	require.Contains(t, s.ok(t, "bob", "principal", "list"), "carol")
	require.Contains(t, s.fails(t, "bob", exitError, "principal", "token", "carol"), "does not work with --server")
	require.Contains(t, s.ok(t, "admin", "quota", "set", "carol", "--resource", "llm_rate", "--quota", "900"), "llm_rate quota of carol is now 900")
	require.Contains(t, s.ok(t, "alice", "quota", "transfer", "--to", "carol", "--resource", "llm_rate", "--amount", "100"), "transferred 100 llm_rate quota from alice to carol")
	require.Contains(t, s.ok(t, "bob", "quota", "consume", "--resource", "llm_rate", "--amount", "60"), "bob used 60 llm_rate")
	var qs []kernel.QuotaStatus
	require.NoError(t, json.Unmarshal([]byte(s.ok(t, "alice", "quota", "show", "bob", "-o", "json")), &qs))
	for _, q := range qs {
		if q.Resource == kernel.LLMRate {
			require.Equal(t, int64(60), q.Used)
		}
	}
	require.Regexp(t, `llm_rate\s+1000\s`, s.ok(t, "alice", "quota", "show", "carol"))

	// Consent: grant, show, revoke; standing: grant, revoke.
	require.Contains(t, s.ok(t, "sponsor", "consent", "grant", "--contract", "genesis/freeware", "--per-call", "3", "--total", "30"), "sponsor lets genesis/freeware charge it")
	require.Contains(t, s.ok(t, "sponsor", "consent", "show", "--contract", "genesis/freeware"), "sponsor lets genesis/freeware charge it up to 3 per call, 30 in total; spent 0")
	require.Contains(t, s.ok(t, "admin", "consent", "show", "--as", "sponsor", "--contract", "genesis/freeware"), "up to 3 per call", "the admin token may look")
	require.Contains(t, s.fails(t, "bob", exitUsage, "consent", "show", "--as", "sponsor", "--contract", "genesis/freeware"), "the token is bob's")
	require.Regexp(t, `genesis/freeware\s+3\s+30\s+0`, s.ok(t, "sponsor", "consent", "ls"))
	s.ok(t, "sponsor", "consent", "grant-llm", "--to", "bob", "--per-call", "100", "--total", "1000", "--tokens", "50")
	require.Contains(t, s.ok(t, "sponsor", "consent", "show-llm", "--to", "bob"), "sponsor pays bob's LLM calls: up to 100µ$ per call, 1000µ$ and 50 tokens in all; spent 0µ$ and 0 tokens")
	s.ok(t, "sponsor", "consent", "revoke-llm", "--to", "bob")
	require.Contains(t, s.fails(t, "sponsor", exitError, "consent", "show-llm", "--to", "bob"), "NOT_FOUND")
	require.Contains(t, s.ok(t, "sponsor", "consent", "revoke", "--contract", "genesis/freeware"), "no longer lets genesis/freeware")
	require.Contains(t, s.ok(t, "alice", "standing", "grant", "--exe", "genesis/rights"), "alice lets genesis/rights act as it")
	require.Contains(t, s.ok(t, "alice", "standing", "ls", "alice"), "genesis/rights  terms ")
	require.Contains(t, s.fails(t, "bob", exitError, "standing", "ls", "alice"), "PERMISSION_DENIED")
	require.Contains(t, s.ok(t, "alice", "standing", "revoke", "--exe", "genesis/rights"), "alice no longer lets genesis/rights")

	// Invoke: the genesis rights registry answers a quota question.
	out := s.ok(t, "bob", "artifact", "invoke", "genesis/rights", "--method", "get_quota", "--args", `{"principal":"carol","resource":"llm_rate"}`)
	require.Contains(t, out, `"quota":1000`)
	var inv map[string]any
	require.NoError(t, json.Unmarshal([]byte(s.ok(t, "bob", "artifact", "invoke", "genesis/rights", "--method", "get_quota", "--args", `{"resource":"llm_rate"}`, "-o", "json")), &inv))
	require.Equal(t, true, inv["ok"])
	require.Contains(t, inv["output_text"], `"principal":"bob"`, "the executable ran as the token's principal")

	// Rights: mint, transfer, split, merge, redeem, ls.
	require.Contains(t, s.ok(t, "alice", "right", "mint", "alice/r", "--resource", "llm_rate", "--amount", "300"), "alice minted right alice/r: 300 llm_rate")
	require.Contains(t, s.ok(t, "alice", "right", "transfer", "alice/r", "--to", "bob"), "alice transferred right alice/r to bob")
	require.Contains(t, s.ok(t, "bob", "right", "split", "alice/r", "--amounts", "100,200"), "alice/r.1 (100), alice/r.2 (200)")
	require.Contains(t, s.ok(t, "bob", "right", "merge", "alice/r.1", "--ids", "alice/r.2"), "bob merged alice/r.2 into right alice/r.1: 300 llm_rate")
	require.Regexp(t, `alice/r.1\s+llm_rate\s+300\s+bob\s+alice`, s.ok(t, "bob", "right", "ls"))
	require.Equal(t, "no rights\n", s.ok(t, "alice", "right", "ls"), "a principal's token lists its own rights")
	require.Contains(t, s.ok(t, "admin", "right", "ls"), "alice/r.1", "the admin token lists everyone's")
	require.Contains(t, s.ok(t, "bob", "right", "redeem", "alice/r.1"), "bob redeemed right alice/r.1: 300 llm_rate back into its quota (now 1300)")

	// Contracts: deploy and check go through the server.
	good := filepath.Join(t.TempDir(), "pay.wasm")
	require.NoError(t, os.WriteFile(good, demo.PayPerRead, 0o600))
	require.Contains(t, s.ok(t, "alice", "contract", "deploy", "alice/pay", "--file", good, "--meta", "price=7", "--meta", "payee=alice"), "deployed contract alice/pay")
	s.ok(t, "alice", "artifact", "put", "report", "--type", "text", "--contract", "alice/pay", "--text", "paid")
	require.Contains(t, s.ok(t, "bob", "contract", "check", "--action", "read", "--target", "report"), "decision:   ALLOW cost=7")

	// Listing: the token's read checks decide what is shown.
	s.ok(t, "alice", "artifact", "put", "alice/diary", "--type", "text", "--contract", "genesis/private", "--text", "secret")
	ls := s.ok(t, "bob", "artifact", "ls")
	require.Regexp(t, `report\s+text\s+4\s+alice/pay\s+alice\s+7 \(paid by bob\)`, ls)
	require.NotContains(t, ls, "alice/diary")
	require.NotContains(t, ls, "notes/1", "under genesis/private now")
	require.Contains(t, s.ok(t, "alice", "artifact", "ls", "--prefix", "alice/"), "alice/diary")
	require.NotContains(t, s.ok(t, "alice", "artifact", "ls", "--prefix", "alice/"), "report")

	// Events: the token's view; the admin's all; one event by number.
	var evs []kernel.Event
	for _, line := range strings.Split(strings.TrimSpace(s.ok(t, "bob", "events", "tail", "-o", "json")), "\n") {
		var ev kernel.Event
		require.NoError(t, json.Unmarshal([]byte(line), &ev))
		require.True(t, ev.Involves("bob"), line)
		evs = append(evs, ev)
	}
	require.NotEmpty(t, evs)
	require.Contains(t, s.fails(t, "bob", exitUsage, "events", "tail", "--as", "alice"), "reads only its own events")
	all := s.ok(t, "admin", "events", "tail", "--kind", "transfer")
	require.Contains(t, all, "alice")
	require.NotContains(t, all, "mint_right")
	seq := strconv.FormatUint(evs[0].Seq, 10)
	require.Contains(t, s.ok(t, "bob", "events", "show", seq), "#"+seq)
	require.Contains(t, s.fails(t, "sponsor", exitError, "events", "show", seq), "NOT_FOUND")

	// Totals: the admin token's.
	require.Contains(t, s.ok(t, "admin", "totals"), "ledger      ok")
	require.Contains(t, s.fails(t, "bob", exitError, "totals"), "PERMISSION_DENIED")

	// Commands of the machine itself refuse client mode.
	require.Contains(t, s.fails(t, "admin", exitUsage, "init"), "works on the world on this machine")
	require.Contains(t, s.fails(t, "admin", exitUsage, "serve"), "works on the world on this machine")
	s.c.noRace(t)
}

// TestServeHoldsWorldNamesServer: while 'kernelhost serve' runs on a data
// directory, a local command on it fails at once and says who holds it
// (the serve, its pid, since when) and how to reach the world instead
// (--server with the server's URL); with that URL and a token the same
// command works. It failed before with "in use by another process (is
// 'kernelhost serve' running?)", which named nobody.
func TestServeHoldsWorldNamesServer(t *testing.T) {
	t.Parallel()
	s := newServed(t)
	pid := strconv.Itoa(s.c.cmd.Process.Pid)
	for _, args := range [][]string{{"principal", "list"}, {"scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "1"}} {
		msg := fails(t, s.dir, exitError, args...)
		require.Contains(t, msg, "is held by 'kernelhost serve' (pid "+pid+") since ")
		require.Contains(t, msg, "serving "+s.url)
		require.Contains(t, msg, "--server "+s.url)
	}
	// init --force must not wipe the world from under the server.
	require.Contains(t, fails(t, s.dir, exitError, "init", "--force"), "'kernelhost serve' (pid "+pid+")")
	require.Contains(t, s.ok(t, "alice", "principal", "list"), "alice")
}

// TestParallelReadOnlyCommands: commands that only read run side by side on
// one data directory: while 'events tail --follow' holds the world open
// for reading, four more read-only commands run at once and succeed; a
// command that writes cannot have the world then and names the reader
// holding it; with --wait it waits for the reader, then runs. Before,
// every command opened the store exclusively, and 3 of 4 parallel commands
// failed with "in use by another process (is 'kernelhost serve'
// running?)" though no server ran.
func TestParallelReadOnlyCommands(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "5")

	// A reader that stays: the follow holds the shared lock until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followOut := &syncBuffer{}
	followDone := make(chan int, 1)
	go func() {
		followDone <- runContext(ctx, []string{"--data-dir", dir, "events", "tail", "--follow", "--interval", "10ms"}, followOut, &syncBuffer{})
	}()
	waitFor(t, func() bool { return strings.Contains(followOut.String(), "transfer") }, "the follow printed the transfer")

	readers := [][]string{{"principal", "list"}, {"quota", "show", "bob"}, {"right", "ls"}, {"totals"}}
	type res struct {
		code   int
		stderr string
	}
	results := make(chan res, len(readers))
	for _, args := range readers {
		go func() {
			_, errOut, code := cli(t, dir, args...)
			results <- res{code, errOut}
		}()
	}
	for range readers {
		r := <-results
		require.Equal(t, exitOK, r.code, r.stderr)
	}

	msg := fails(t, dir, exitError, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "1")
	require.Contains(t, msg, "is being read by 'kernelhost events tail' (pid "+strconv.Itoa(os.Getpid())+") since ")
	require.Contains(t, msg, "and this command writes")
	require.Equal(t, uint64(105), balances(t, dir)["bob"], "the refused write changed nothing")

	// --wait: the write waits for the reader to finish, then runs.
	wrote := make(chan int, 1)
	go func() {
		_, _, code := cli(t, dir, "--wait", "10m", "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "1")
		wrote <- code
	}()
	cancel()
	require.Equal(t, exitOK, <-followDone)
	require.Equal(t, exitOK, <-wrote)
	require.Equal(t, uint64(106), balances(t, dir)["bob"])
}

// waitFor polls cond until it holds; the bound only keeps a broken test
// from hanging.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsFollowServer: 'events tail --follow' against a server follows
// its live stream (Server-Sent Events): the transfers made while it runs
// appear in order, each once, only those the token may see; cancelling
// ends it with exit 0.
func TestEventsFollowServer(t *testing.T) {
	t.Parallel()
	s := newServed(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"--config", s.config, "--context", "bob", "events", "tail", "--follow", "--kind", "transfer", "-o", "json"}, out, &syncBuffer{})
	}()
	for i := 1; i <= 3; i++ {
		s.ok(t, "alice", "scrip", "transfer", "--to", "bob", "--amount", strconv.Itoa(i))
		s.ok(t, "alice", "scrip", "transfer", "--to", "sponsor", "--amount", "1") // not bob's
	}
	waitFor(t, func() bool { return strings.Count(out.String(), "\n") >= 3 }, "the follow printed three transfers")
	cancel()
	require.Equal(t, exitOK, <-done)
	var amounts []int64
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev kernel.Event
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		require.Equal(t, kernel.KindTransfer, ev.Kind)
		require.Equal(t, "bob", ev.To, "only bob's events")
		amounts = append(amounts, ev.Amount)
	}
	require.Equal(t, []int64{1, 2, 3}, amounts, "in order, each once")
}

// TestClientConfig: where a command goes and with which token. A token goes
// only to the server it was given for; a config or token file others may
// read is refused; --server with --data-dir (or --context) is a usage
// error; a context that does not exist says so; $KERNELHOST_SERVER with
// $KERNELHOST_TOKEN reaches the server without a config file.
func TestClientConfig(t *testing.T) {
	s := newServed(t) // not parallel: t.Setenv below

	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	runWith := func(config string, args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := runContext(context.Background(), append([]string{"--config", config}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}

	open := write("open.json", fmt.Sprintf(`{"contexts":[{"name":"a","server":%q,"token":%q}]}`, s.url, s.tokens["alice"]), 0o644)
	_, errOut, code := runWith(open, "--context", "a", "principal", "list")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "holds a token and others may read it (mode 0644): chmod 600")

	tok := write("alice.token", s.tokens["alice"]+"\n", 0o600)
	cur := write("cur.json", fmt.Sprintf(`{"current_context":"a","contexts":[{"name":"a","server":%q,"token_file":"alice.token"}]}`, s.url), 0o600)
	out, errOut, code := runWith(cur, "scrip", "limit", "--amount", "40")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "alice pays at most 40", "the current context, its token file relative to the config")
	require.NoError(t, os.Chmod(tok, 0o640))
	_, errOut, _ = runWith(cur, "principal", "list")
	require.Contains(t, errOut, "alice.token holds a token and others may read it")
	require.NoError(t, os.Chmod(tok, 0o600))

	_, errOut, code = runWith(cur, "--context", "nope", "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `no context "nope"`)
	_, errOut, code = runWith(cur, "--server", s.url, "--context", "a", "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "give --server or --context, not both")
	_, errOut, code = runWith(cur, "--server", s.url, "--data-dir", s.dir, "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "give --server (a running server) or --data-dir (the world on this machine), not both")
	_, errOut, code = runWith(cur, "--data-dir", filepath.Join(dir, "none"), "principal", "list")
	require.Equal(t, exitError, code, "--data-dir on the command line beats the current context")
	require.Contains(t, errOut, "no world at")
	// context ls / use / none rewrite the current context, owner-only.
	out, _, code = runWith(cur, "context", "ls")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `^\* a\s+`+s.url, out)
	multi := write("multi.json", fmt.Sprintf(`{"contexts":[{"name":"a","server":%q,"token":%q},{"name":"b","server":%q,"token":%q}]}`,
		s.url, s.tokens["alice"], s.url, s.tokens["bob"]), 0o600)
	_, _, code = runWith(multi, "context", "use", "b")
	require.Equal(t, exitOK, code)
	require.Contains(t, func() string { o, _, _ := runWith(multi, "scrip", "limit", "--amount", "8"); return o }(), "bob pays at most 8")
	fi, err := os.Stat(multi)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, errOut, code = runWith(multi, "context", "use", "zz")
	require.Equal(t, exitUsage, code, errOut)
	_, _, code = runWith(multi, "context", "none")
	require.Equal(t, exitOK, code)
	_, errOut, _ = runWith(multi, "principal", "list")
	require.Contains(t, errOut, "no world at", "no current context: the local world")

	bad := write("bad.json", `{"contexts":[{"name":"a","server":"http://x","tokn":"t"}]}`, 0o600)
	_, errOut, _ = runWith(bad, "--context", "a", "principal", "list")
	require.Contains(t, errOut, `unknown field "tokn"`)

	// The environment: --server's token is $KERNELHOST_TOKEN, never a
	// context's (which belongs to the context's server).
	t.Setenv(tokenEnv, "")
	_, errOut, code = runWith(cur, "--server", s.url, "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "needs a token: set KERNELHOST_TOKEN")
	t.Setenv(serverEnv, s.url)
	t.Setenv(tokenEnv, s.tokens["bob"])
	out, errOut, code = runWith(filepath.Join(dir, "missing.json"), "scrip", "limit", "--amount", "9")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "bob pays at most 9")
	// init and serve work on this machine: the environment's server does
	// not take them elsewhere.
	t.Setenv("KERNELHOST_DATA", filepath.Join(dir, "local-world"))
	out, errOut, code = runWith(filepath.Join(dir, "missing.json"), "init")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "Initialised a world at "+filepath.Join(dir, "local-world"))
	_, errOut, code = runWith(filepath.Join(dir, "missing.json"), "--server", s.url, "init")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "works on the world on this machine, not through a server (it creates the world): leave out --server")
	_, errOut, code = runWith(filepath.Join(dir, "missing.json"), "--server", "ftp://x", "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "use an http:// or https:// URL")
	_, errOut, code = runWith(filepath.Join(dir, "missing.json"), "--server", "http://u:pw@"+s.c.addr, "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "user information is refused")
	require.NotContains(t, errOut, "pw")
}
