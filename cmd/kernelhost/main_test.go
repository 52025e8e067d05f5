package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestMain points every world of the tests at one shared compilation cache,
// so that the genesis rights registry (a 3.4 MB Go module) compiles once per
// machine, not once per world. With $KERNELHOST_TEST_RUN_MAIN=1 the binary
// is kernelhost instead (runMainEnv, crash_test.go); with -warm it fills
// that cache and exits (warm_test.go, make test-warm).
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	flag.Parse()
	testenv.ExitIfWarming(*warm, warmCache)
	if dir := testenv.CacheDir(); dir != "" {
		os.Setenv(demo.CacheEnv, dir)
	}
	os.Exit(m.Run())
}

// cli runs kernelhost in-process on the world in dir.
func cli(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runContext(context.Background(), append([]string{"--data-dir", dir}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, dir, args...)
	require.Equal(t, exitOK, code, "kernelhost %v: %s", args, errOut)
	return out
}

// fails runs a command that must fail and returns its one-line error.
func fails(t *testing.T, dir string, wantCode int, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, dir, args...)
	require.Equal(t, wantCode, code, "kernelhost %v: stdout %s", args, out)
	require.True(t, strings.HasPrefix(errOut, "kernelhost: "), errOut)
	require.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	return errOut
}

// newWorld inits a world with alice (1000), bob (100), sponsor (5000).
func newWorld(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "world")
	spec := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100},{"id":"sponsor","balance":5000}]}`), 0o600))
	ok(t, dir, "init", "--genesis", spec)
	return dir
}

// balances returns every principal's balance, in one run.
func balances(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	var ps []kernel.Principal
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "principal", "list", "-o", "json")), &ps))
	out := map[string]uint64{}
	for _, p := range ps {
		out[p.ID] = p.Balance
	}
	return out
}

func TestMissingWorld(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"principal", "list"}, {"artifact", "get", "x", "--as", "a"}, {"serve"}, {"events", "tail"}} {
		msg := fails(t, dir, exitError, args...)
		require.Equal(t, "kernelhost: no world at "+dir+": run 'kernelhost init' first\n", msg)
	}
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing was created")
}

func TestInit(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "w")
	spec := filepath.Join("..", "..", "genesis", "example.json")
	out := ok(t, dir, "init", "--genesis", spec)
	require.Contains(t, out, "Initialised a world at "+dir)
	require.Contains(t, out, "genesis executables: [genesis/rights]")
	tokens := regexp.MustCompile(`kh_[0-9a-f]{64}`).FindAllString(out, -1)
	require.Len(t, tokens, 4, "admin, alice, bob, sponsor: %s", out)

	_, err := os.Stat(filepath.Join(dir, "auth.json"))
	require.ErrorIs(t, err, os.ErrNotExist, "the tokens live in the store")
	requireOnlyHashes(t, dir, tokens) // only hashes are stored (store_test.go)

	for _, p := range []string{storeDir(dir), cacheDir(dir)} { // the cache may be shared: $KERNELHOST_WAZERO_CACHE
		_, err := os.Stat(p)
		require.NoError(t, err)
	}
	require.Contains(t, ok(t, dir, "principal", "list"), "sponsor")

	// An existing world is refused, then wiped with --force.
	msg := fails(t, dir, exitError, "init")
	require.Contains(t, msg, "already exists")
	require.Contains(t, msg, "--force")
	out = ok(t, dir, "init", "--force", "-o", "json")
	var io initOutput
	require.NoError(t, json.Unmarshal([]byte(out), &io))
	require.Empty(t, io.Principals)
	require.NotContains(t, tokens, io.AdminToken)
	require.Equal(t, []string{"genesis/freeware", "genesis/private", "genesis/public"}, io.Contracts)
	require.NotContains(t, ok(t, dir, "principal", "list"), "sponsor")

	// A bad genesis file changes nothing.
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"principals":[{"id":"x","balance":-1}]}`), 0o600))
	fresh := filepath.Join(t.TempDir(), "fresh")
	msg = fails(t, fresh, exitError, "init", "--genesis", bad)
	require.Contains(t, msg, "genesis")
	require.False(t, worldExists(fresh))
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	out := ok(t, dir, "principal", "create", "carol", "--balance", "50")
	require.Contains(t, out, "created principal carol with balance 50")
	require.Regexp(t, `token \(shown this once\): kh_[0-9a-f]{64}`, out)

	require.Equal(t, uint64(50), balances(t, dir)["carol"])
	show := ok(t, dir, "principal", "show", "carol")
	require.Contains(t, show, "balance:    50")
	require.Contains(t, show, "llm_rate")
	list := ok(t, dir, "principal", "list")
	for _, id := range []string{"alice", "bob", "carol", "genesis", "sponsor"} {
		require.Contains(t, list, id)
	}

	require.Contains(t, fails(t, dir, exitError, "principal", "create", "carol"), "ALREADY_EXISTS")
	require.Contains(t, fails(t, dir, exitError, "principal", "create", "bad id"), "INVALID_ARGUMENT")
	require.Contains(t, fails(t, dir, exitUsage, "principal", "create", "dave", "--balance", "-3"), "negative")
	require.Contains(t, fails(t, dir, exitError, "principal", "show", "nobody"), "NOT_FOUND")
	require.Contains(t, fails(t, dir, exitUsage, "principal", "create"), "accepts 1 arg")

	tok := ok(t, dir, "principal", "token", "carol")
	require.Regexp(t, `kh_[0-9a-f]{64}`, tok)
}

func TestArtifact(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "artifact", "put", "notes/1", "--as", "alice", "--type", "text", "--text", "hello", "--meta", "topic=greetings")
	diary := filepath.Join(t.TempDir(), "diary.txt")
	require.NoError(t, os.WriteFile(diary, []byte("dear diary"), 0o600))
	ok(t, dir, "artifact", "put", "diary", "--as", "alice", "--type", "text", "--contract", "genesis/private", "--file", diary)

	require.Equal(t, "hello", ok(t, dir, "artifact", "get", "notes/1", "--as", "bob"))
	require.Equal(t, "dear diary", ok(t, dir, "artifact", "get", "diary", "--as", "alice"))
	msg := fails(t, dir, exitError, "artifact", "get", "diary", "--as", "bob")
	require.Contains(t, msg, "PERMISSION_DENIED")

	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "artifact", "get", "notes/1", "--as", "bob", "-o", "json")), &res))
	require.Equal(t, "hello", res["text"])
	require.Equal(t, true, res["ok"])

	show := ok(t, dir, "artifact", "show", "notes/1", "--as", "bob")
	require.Contains(t, show, `topic="greetings"`)
	require.Contains(t, show, "created_by:      alice")
	require.Contains(t, show, "access_contract: genesis/freeware")

	// ls shows only what the caller may read, and records nothing.
	before := ok(t, dir, "events", "tail", "-o", "json")
	bobLs := ok(t, dir, "artifact", "ls", "--as", "bob")
	require.Contains(t, bobLs, "notes/1")
	require.NotContains(t, bobLs, "diary")
	require.Contains(t, ok(t, dir, "artifact", "ls", "--as", "alice"), "diary")
	require.Equal(t, before, ok(t, dir, "events", "tail", "-o", "json"))

	// bob cannot change alice's artifact; alice can, and can delete it.
	require.Contains(t, fails(t, dir, exitError, "artifact", "put", "notes/1", "--as", "bob", "--text", "mine"), "PERMISSION_DENIED")
	require.Contains(t, fails(t, dir, exitError, "artifact", "rm", "notes/1", "--as", "bob"), "PERMISSION_DENIED")
	ok(t, dir, "artifact", "put", "notes/1", "--as", "alice", "--text", "v2")
	require.Equal(t, "v2", ok(t, dir, "artifact", "get", "notes/1", "--as", "bob"))
	ok(t, dir, "artifact", "rm", "notes/1", "--as", "alice")
	require.Contains(t, fails(t, dir, exitError, "artifact", "get", "notes/1", "--as", "bob"), "NOT_FOUND")

	// Bad input: one line that says what to do.
	require.Contains(t, fails(t, dir, exitError, "artifact", "put", "new", "--as", "alice", "--text", "x"), "pass --type")
	require.Contains(t, fails(t, dir, exitUsage, "artifact", "put", "new", "--as", "alice", "--type", "text"), "--file F or --text S")
	require.Contains(t, fails(t, dir, exitUsage, "artifact", "put", "new", "--as", "alice", "--text", "x", "--meta", "novalue"), "key=value")
	require.Contains(t, fails(t, dir, exitUsage, "artifact", "get", "notes/1"), `required flag(s) "as"`)
	require.Contains(t, fails(t, dir, exitError, "artifact", "get", "x", "--as", "nobody"), "NOT_FOUND")
}

func TestContract(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	require.NoError(t, os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00garbage"), 0o600))
	msg := fails(t, dir, exitError, "contract", "validate", "--file", bad)
	require.Contains(t, msg, "CONTRACT_INVALID")
	require.Contains(t, msg, "bad.wasm is not a valid contract")
	msg = fails(t, dir, exitError, "contract", "deploy", "c", "--file", bad, "--as", "alice")
	require.Contains(t, msg, "CONTRACT_INVALID")
	require.NotContains(t, ok(t, dir, "artifact", "ls", "--as", "alice"), " c ")

	good := filepath.Join(t.TempDir(), "pay.wasm")
	require.NoError(t, os.WriteFile(good, demo.PayPerRead, 0o600))
	require.Contains(t, ok(t, dir, "contract", "validate", "--file", good), "is a valid kernelhost contract")
	out := ok(t, dir, "contract", "deploy", "alice/pay", "--file", good, "--as", "alice",
		"--meta", "price=7", "--meta", "sponsor=sponsor", "--meta", "payee=alice")
	require.Contains(t, out, "deployed contract alice/pay")
	ok(t, dir, "artifact", "put", "report", "--as", "alice", "--type", "text", "--contract", "alice/pay", "--text", "paid")

	// check: no side effects, the would-be settlement failure, the request.
	out = ok(t, dir, "contract", "check", "--explain", "--as", "bob", "--action", "read", "--target", "report")
	require.Contains(t, out, "decision:   ALLOW cost=7 payer=sponsor payee=alice")
	require.Contains(t, out, "settlement: would fail with PAYER_NOT_AUTHORIZED")
	require.Contains(t, out, `config:          payee="alice" price="7" sponsor="sponsor"`)
	require.Contains(t, out, "created_by:      alice")
	require.Regexp(t, `fuel:\s+[1-9][0-9]* \(deterministic`, out, "explain shows the fuel the contract used")
	ok(t, dir, "consent", "grant", "--as", "sponsor", "--contract", "alice/pay", "--per-call", "10", "--total", "100")
	out = ok(t, dir, "contract", "check", "--as", "bob", "--action", "read", "--target", "report")
	require.Contains(t, out, "settlement: OK, would charge: sponsor paid 7 to alice")
	require.Equal(t, uint64(5000), balances(t, dir)["sponsor"], "check charged nobody")

	ls := ok(t, dir, "artifact", "ls", "--as", "bob")
	require.Regexp(t, `report\s+text\s+4\s+alice/pay\s+alice\s+7 \(paid by sponsor\)`, ls)

	require.Equal(t, "paid", ok(t, dir, "artifact", "get", "report", "--as", "bob"))
	b := balances(t, dir)
	require.Equal(t, uint64(4993), b["sponsor"])
	require.Equal(t, uint64(1007), b["alice"])

	var ex map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "contract", "check", "--as", "bob", "--action", "write", "--target", "report", "--text", "x", "-o", "json")), &ex))
	require.Equal(t, "PERMISSION_DENIED", ex["outcome"].(map[string]any)["error_code"])

	ok(t, dir, "consent", "revoke", "--as", "sponsor", "--contract", "alice/pay")
	require.Contains(t, fails(t, dir, exitError, "artifact", "get", "report", "--as", "bob"), "PAYER_NOT_AUTHORIZED")
	require.Contains(t, fails(t, dir, exitError, "contract", "check", "--as", "bob", "--action", "transfer", "--target", "report"), "INVALID_ARGUMENT")
}

func TestScripTransfer(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	msg := fails(t, dir, exitUsage, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "-5")
	require.Contains(t, msg, "positive")
	want := map[string]uint64{"genesis": 0, "alice": 1000, "bob": 100, "sponsor": 5000}
	require.Equal(t, want, balances(t, dir))

	require.Contains(t, fails(t, dir, exitError, "scrip", "transfer", "--as", "bob", "--to", "alice", "--amount", "101"), "INSUFFICIENT_FUNDS")
	require.Contains(t, fails(t, dir, exitError, "scrip", "transfer", "--as", "bob", "--to", "nobody", "--amount", "1"), "NOT_FOUND")
	require.Equal(t, want, balances(t, dir), "failed transfers changed nothing")

	require.Contains(t, ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "25"), "transferred 25 scrip from alice to bob")
	want["alice"], want["bob"] = 975, 125
	require.Equal(t, want, balances(t, dir))
}

func TestQuotaAndEvents(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "quota", "set", "bob", "--resource", "llm_rate", "--quota", "10")
	require.Regexp(t, `llm_rate\s+10\s+0\s+10`, ok(t, dir, "quota", "show", "bob"))
	ok(t, dir, "quota", "transfer", "--as", "alice", "--to", "bob", "--resource", "llm_rate", "--amount", "5")
	var qs []kernel.QuotaStatus
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "quota", "show", "bob", "-o", "json")), &qs))
	for _, q := range qs {
		if q.Resource == kernel.LLMRate {
			require.Equal(t, int64(15), q.Quota)
		}
	}
	require.Contains(t, fails(t, dir, exitUsage, "quota", "transfer", "--as", "alice", "--to", "bob", "--resource", "gold", "--amount", "5"), "use one of cpu_rate")
	require.Contains(t, fails(t, dir, exitError, "quota", "transfer", "--as", "bob", "--to", "alice", "--resource", "disk", "--amount", "999999999999"), "QUOTA_EXCEEDED")

	events := ok(t, dir, "events", "tail")
	require.Contains(t, events, "transfer_quota")
	require.Contains(t, events, "alice")
	lines := strings.Split(strings.TrimSpace(ok(t, dir, "events", "tail", "-o", "json")), "\n")
	var last kernel.Event
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.Equal(t, "QUOTA_EXCEEDED", last.Code)
	require.Empty(t, ok(t, dir, "events", "tail", "--since", strconv.FormatUint(last.Seq, 10)))
	require.Len(t, strings.Split(strings.TrimSpace(ok(t, dir, "events", "tail", "--since", strconv.FormatUint(last.Seq-2, 10))), "\n"), 2)
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.Contains(t, ok(t, dir, "version"), "contract ABI v1")
	require.Contains(t, fails(t, dir, exitUsage, "frobnicate"), "unknown command")
	require.Contains(t, fails(t, dir, exitUsage, "--output", "yaml", "version"), "use text or json")
	require.Contains(t, fails(t, dir, exitUsage, "--log-level", "loud", "version"), "debug, info")
	help := ok(t, dir, "artifact", "put", "--help")
	require.Contains(t, help, "Examples:")
	require.Contains(t, ok(t, dir, "completion", "bash"), "bash completion")

	// Every command has examples.
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	var missing []string
	var visit func(path string, cmds []*cobra.Command)
	visit = func(path string, cmds []*cobra.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
				continue
			}
			if c.Example == "" {
				missing = append(missing, path+" "+c.Name())
			}
			visit(path+" "+c.Name(), c.Commands())
		}
	}
	visit("kernelhost", root.Commands())
	require.Empty(t, missing, "commands without examples")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe starts the server, calls it, and stops it as SIGINT would.
func TestServe(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"--data-dir", dir, "serve", "--addr", "127.0.0.1:0"}, &out, &errOut)
	}()
	re := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	var addr string
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(errOut.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "serve did not start: %s", errOut.String())
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, resp.Body.Close())

	// While serving, the world is locked: the CLI says by whom and what
	// to do.
	msg := fails(t, dir, exitError, "principal", "list")
	require.Contains(t, msg, "is held by 'kernelhost serve' (pid "+strconv.Itoa(os.Getpid())+")")
	require.Contains(t, msg, "--server http://"+addr)

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	require.Contains(t, errOut.String(), "stopped")
	ok(t, dir, "principal", "list") // the world is usable again
}

// requireDemoOutput asserts the lines of the demo's scenario in out (what
// 'kernelhost demo' printed): TestDemoServe plays it once, with --serve,
// since under -race a play takes a minute of CPU on 2 cores.
func requireDemoOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"bob reads alice/report                 -> PAYER_NOT_AUTHORIZED",
		`bob reads alice/report                 -> OK: "Q1: revenue up 12%" [sponsor paid 10 to alice]`,
		"balances: sponsor 4980, alice 1020, bob 100, carol 100",
		"mallory overwrites alice/report        -> PERMISSION_DENIED",
		"bob reads alice/diary                  -> PERMISSION_DENIED",
		`alice reads alice/diary                -> OK: "dear diary"`,
		"bob uses 60 LLM tokens                 -> QUOTA_EXCEEDED",
		"[retriable]",
		"carol gives bob 50 llm_rate            -> OK",
		"== 7. The audit trail",
		"ledger: minted 6200 = balances + burned 0: consistent",
		"demo finished: every step ended as expected",
	} {
		require.Contains(t, out, want)
	}
	// After the quota transfer the same action succeeds.
	i := strings.Index(out, "carol gives bob 50 llm_rate")
	require.Contains(t, out[i:], "bob uses 60 LLM tokens                 -> OK")

	// The market: a right on llm_rate changes hands for scrip in one invoke,
	// and what was QUOTA_EXCEEDED succeeds once bob redeems it.
	i = strings.Index(out, "== 8. A market in rights")
	require.Positive(t, i)
	market := out[i:]
	for _, want := range []string{
		"market deploys the escrow as escrow/market -> OK",
		"market grants escrow/market standing   -> OK",
		"bob uses 60 LLM tokens                 -> QUOTA_EXCEEDED",
		"alice mints right alice/llm-100        -> OK",
		`alice lists it with the escrow for 25  -> OK: {"right":"alice/llm-100","seller":"alice","price":25,"resource":"llm_rate","amount":100}`,
		"mallory (0 scrip) buys it              -> EXECUTION_FAILED: executable escrow/market returned an error; its writes are rolled back: escrow: pay alice: INSUFFICIENT_FUNDS",
		"(nothing moved: alice/llm-100 is still the escrow's",
		"bob buys it for 25                     -> OK",
		"balances: alice 1045, bob 75, market 0",
		"alice redeems alice/llm-100            -> PERMISSION_DENIED",
		"bob redeems alice/llm-100              -> OK",
		"llm_rate, quotas + rights: 6100 before, 6100 after: conserved=true",
	} {
		require.Contains(t, market, want)
	}
	j := strings.Index(market, "bob redeems alice/llm-100")
	require.Contains(t, market[j:], "bob uses 60 LLM tokens                 -> OK")
}

// TestInitForceKeepsSharedCache: init --force wipes the world's own parts,
// never a compilation cache shared through $KERNELHOST_WAZERO_CACHE.
func TestInitForceKeepsSharedCache(t *testing.T) {
	shared := os.Getenv(demo.CacheEnv)
	if shared == "" {
		t.Skip("no shared cache in this test process")
	}
	marker := filepath.Join(shared, "marker-"+strconv.Itoa(os.Getpid()))
	require.NoError(t, os.WriteFile(marker, []byte("x"), 0o600))
	defer os.Remove(marker)
	dir := filepath.Join(t.TempDir(), "w")
	ok(t, dir, "init")
	ok(t, dir, "init", "--force")
	_, err := os.Stat(marker)
	require.NoError(t, err, "the shared cache survived init --force")
}
