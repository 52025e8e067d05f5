package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/host"
)

// init starts and closes one host before any test runs. NB: wazero v1.11
// caches its version string in an unsynchronised global on the first
// runtime, so two first hosts at once race (the race detector sees it when
// parallel tests of this package, validate's and test's --file among them,
// each start one); after one call every later one only reads it.
func init() {
	if h, err := host.New(context.Background(), host.DefaultConfig()); err == nil {
		_ = h.Close(context.Background())
	}
}

// repo returns the path of a file of the repository from this package.
func repo(parts ...string) string { return filepath.Join(append([]string{"..", ".."}, parts...)...) }

// hostileModule is a module of the hostile corpus.
func hostileModule(name string) string { return repo("internal", "hostile", "testdata", name+".wasm") }

// writeFixtures writes a fixture file and returns its path.
func writeFixtures(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cases.fixtures.json")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// noWorld is a data directory with no world: validate, and test or bench
// of a --file, need none.
func noWorld(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }

// TestContractValidateProbe: validate runs kh_check on a probe request
// under a small fuel budget, so that a kh_check that loops, traps, reads
// out of bounds or answers garbage is not "valid" (it was: each passed the
// deploy-time checks); a good contract passes and reports the probe's
// decision and fuel; an executable, which has no kh_check, is not probed.
func TestContractValidateProbe(t *testing.T) {
	t.Parallel()
	dir := noWorld(t)
	for _, tc := range []struct {
		module, how, code string
	}{
		{"loop_check", "kh_check ran out of fuel on a probe request", "OUT_OF_FUEL"},
		{"trap", "kh_check trapped on a probe request", "CONTRACT_FAILED"},
		{"decision_oob", "kh_check returned a malformed decision on a probe request", "CONTRACT_FAILED"},
		{"bad_decision", "kh_check returned a malformed decision on a probe request", "CONTRACT_FAILED"},
		{"decision_big", "kh_check returned a malformed decision on a probe request", "CONTRACT_FAILED"},
		{"alloc_oob", "kh_check could not take the request (kh_alloc failed)", "CONTRACT_FAILED"},
		{"alloc_zero", "kh_check could not take the request (kh_alloc failed)", "CONTRACT_FAILED"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			msg := fails(t, dir, exitError, "contract", "validate", "--file", hostileModule(tc.module))
			require.True(t, strings.HasPrefix(msg, "kernelhost: CONTRACT_INVALID: "), msg)
			require.Contains(t, msg, tc.module+".wasm is not a valid contract: "+tc.how)
			require.Contains(t, msg, "10000000 fuel): "+tc.code+": ")
		})
	}

	for _, good := range []string{repo("contracts-wasm", "freeware.wasm"), repo("examples", "c-contract", "pay_per_read.wasm")} {
		out := ok(t, dir, "contract", "validate", "--file", good)
		require.Contains(t, out, "is a valid kernelhost contract")
		require.Regexp(t, `probe: kh_check answered a read by a stranger with (ALLOW|DENY) .*, fuel [1-9][0-9]*\n`, out)
		var v struct {
			OK    bool  `json:"ok"`
			Probe probe `json:"probe"`
		}
		require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "contract", "validate", "--file", good, "-o", "json")), &v))
		require.True(t, v.OK)
		require.True(t, v.Probe.Ran)
		require.NotNil(t, v.Probe.Decision)
		require.Positive(t, v.Probe.Fuel)
		require.Less(t, v.Probe.Fuel, uint64(probeFuel))
	}
	out := ok(t, dir, "contract", "validate", "--file", hostileModule("exe"))
	require.Contains(t, out, "probe: none (no kh_check")
}

// caseJSON is one case of 'contract test -o json'.
type caseJSON struct {
	File     string        `json:"file"`
	Name     string        `json:"name"`
	Pass     bool          `json:"pass"`
	Decision *api.Decision `json:"decision"`
	Code     string        `json:"code"`
	Fuel     uint64        `json:"fuel"`
	Failures []string      `json:"failures"`
}

// reportJSON is 'contract test -o json'.
type reportJSON struct {
	OK     bool `json:"ok"`
	Module struct {
		File     string `json:"file"`
		Contract string `json:"contract"`
		SHA256   string `json:"sha256"`
	} `json:"module"`
	Passed int        `json:"passed"`
	Failed int        `json:"failed"`
	Cases  []caseJSON `json:"cases"`
}

func testReportOf(t *testing.T, out string) reportJSON {
	t.Helper()
	var r reportJSON
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

// countCases returns the number of cases in a fixture file.
func countCases(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var cs []json.RawMessage
	require.NoError(t, json.Unmarshal(b, &cs))
	return len(cs)
}

// TestContractTestShippedFixtures runs the fixture files shipped with the
// genesis freeware contract and the C example against their modules: every
// case passes, in text and in JSON.
func TestContractTestShippedFixtures(t *testing.T) {
	t.Parallel()
	dir := noWorld(t)
	for _, tc := range []struct{ fixtures, module string }{
		{repo("contracts-wasm", "testdata", "freeware.fixtures.json"), repo("contracts-wasm", "freeware.wasm")},
		{repo("examples", "c-contract", "testdata", "pay_per_read.fixtures.json"), repo("examples", "c-contract", "pay_per_read.wasm")},
	} {
		n := countCases(t, tc.fixtures)
		require.GreaterOrEqual(t, n, 8, "%s covers every action", tc.fixtures)
		out := ok(t, dir, "contract", "test", tc.fixtures, "--file", tc.module)
		require.Equal(t, n, strings.Count(out, "PASS  "), out)
		require.NotContains(t, out, "FAIL")
		require.Contains(t, out, strconv.Itoa(n)+" passed, 0 failed")

		r := testReportOf(t, ok(t, dir, "contract", "test", tc.fixtures, "--file", tc.module, "-o", "json"))
		require.True(t, r.OK)
		require.Equal(t, n, r.Passed)
		require.Zero(t, r.Failed)
		require.Len(t, r.Cases, n)
		require.Equal(t, tc.module, r.Module.File)
		require.Len(t, r.Module.SHA256, 64)
		for _, c := range r.Cases {
			require.True(t, c.Pass, c.Name)
			require.Equal(t, "OK", c.Code)
			require.NotNil(t, c.Decision)
			require.Positive(t, c.Fuel, "fuel is reported")
		}
	}
}

// TestContractTestFailures: a case whose decision differs from its expect
// block fails with what differs (allowed, cost, payer, payee, reason,
// fuel, code), the others still run, and the command exits 1 after
// printing every result, in text and in JSON; a kh_check that must fail
// (expect.code) passes when it fails with that code.
func TestContractTestFailures(t *testing.T) {
	t.Parallel()
	dir := noWorld(t)
	pay := repo("examples", "c-contract", "pay_per_read.wasm")
	fx := writeFixtures(t, `[
	  {"name": "right", "request": {"action": "read", "caller": "bob", "config": {"price": "7", "sponsor": "s", "payee": "alice"}},
	   "expect": {"allowed": true, "cost": 7, "payer": "s", "payee": "alice"}},
	  {"name": "wrong price and parties", "request": {"action": "read", "caller": "bob", "config": {"price": "7", "sponsor": "s", "payee": "alice"}},
	   "expect": {"allowed": true, "cost": 8, "payer": "bob", "payee": ""}},
	  {"name": "cost left out means 0", "request": {"action": "read", "caller": "bob", "config": {"price": "7"}},
	   "expect": {"allowed": true}},
	  {"name": "wrong verdict and reason", "request": {"action": "write", "caller": "mallory", "created_by": "alice"},
	   "expect": {"allowed": true, "reason": "welcome"}},
	  {"name": "expects a failure", "request": {"action": "read", "caller": "bob"},
	   "expect": {"code": "CONTRACT_FAILED"}},
	  {"name": "wrong fuel", "request": {"action": "read", "caller": "bob"},
	   "expect": {"allowed": true, "reason": "pay_per_read: paid read", "fuel": 1}}
	]`)
	out, errOut, code := cli(t, dir, "contract", "test", fx, "--file", pay)
	require.Equal(t, exitError, code, out)
	require.Equal(t, "kernelhost: 5 of 6 cases failed\n", errOut)
	require.Contains(t, out, "PASS  "+fx+": right\n")
	require.Contains(t, out, "FAIL  "+fx+": wrong price and parties\n")
	require.Contains(t, out, `cost: got 7, want 8`)
	require.Contains(t, out, `payer: got "s", want "bob"`)
	require.Contains(t, out, `payee: got "alice", want ""`)
	require.Contains(t, out, "FAIL  "+fx+": cost left out means 0\n")
	require.Contains(t, out, `allowed: got false, want true`)
	require.Contains(t, out, `reason: got "pay_per_read: only the controller may change or invoke this artifact", want "welcome"`)
	require.Contains(t, out, `code: got OK (ALLOW cost=0`)
	require.Regexp(t, `fuel: got [1-9][0-9]*, want 1\n`, out)
	require.Contains(t, out, "1 passed, 5 failed")

	out, _, code = cli(t, dir, "contract", "test", fx, "--file", pay, "-o", "json")
	require.Equal(t, exitError, code)
	r := testReportOf(t, out)
	require.False(t, r.OK)
	require.Equal(t, 1, r.Passed)
	require.Equal(t, 5, r.Failed)
	require.True(t, r.Cases[0].Pass)
	require.Equal(t, []string{"cost: got 7, want 8", `payer: got "s", want "bob"`, `payee: got "alice", want ""`}, r.Cases[1].Failures)
	require.Equal(t, []string{"cost: got 7, want 0"}, r.Cases[2].Failures)

	// A runaway, trapping or garbage kh_check: expect.code passes when the
	// run fails with it, and a case expecting a decision fails naming it.
	fx = writeFixtures(t, `[
	  {"name": "loops", "request": {"action": "read", "caller": "bob"}, "expect": {"code": "OUT_OF_FUEL"}},
	  {"name": "loops, expected to answer", "request": {"action": "read", "caller": "bob"}, "expect": {"allowed": false}},
	  {"name": "loops, another code", "request": {"action": "read", "caller": "bob"}, "expect": {"code": "CONTRACT_TIMEOUT"}}
	]`)
	out, _, code = cli(t, dir, "contract", "test", fx, "--file", hostileModule("loop_check"), "--fuel", "100000", "-o", "json")
	require.Equal(t, exitError, code)
	r = testReportOf(t, out)
	require.Equal(t, 1, r.Passed)
	require.Equal(t, "OUT_OF_FUEL", r.Cases[0].Code)
	require.Equal(t, uint64(100000), r.Cases[0].Fuel, "the whole --fuel budget")
	require.Len(t, r.Cases[1].Failures, 1)
	require.Contains(t, r.Cases[1].Failures[0], "kh_check failed: OUT_OF_FUEL: ")
	require.Contains(t, r.Cases[2].Failures[0], "code: got OUT_OF_FUEL, want CONTRACT_TIMEOUT")

	fx = writeFixtures(t, `[{"name": "traps", "request": {"action": "read", "caller": "bob"}, "expect": {"code": "CONTRACT_FAILED"}}]`)
	for _, m := range []string{"trap", "decision_oob", "bad_decision"} {
		require.Contains(t, ok(t, dir, "contract", "test", fx, "--file", hostileModule(m)), "1 passed, 0 failed", m)
	}
}

// TestContractTestMalformed: a fixture file that is not a list of
// well-formed cases exits 2 with one line naming the file and what to
// fix, and runs nothing; so do bad flags.
func TestContractTestMalformed(t *testing.T) {
	t.Parallel()
	dir := noWorld(t)
	free := repo("contracts-wasm", "freeware.wasm")
	good := `{"name": "n", "request": {"action": "read", "caller": "bob"}, "expect": {"allowed": true}}`
	for _, tc := range []struct{ name, text, msg string }{
		{"not JSON", `[{"name": `, "not valid JSON"},
		{"an object, not a list", good, "a fixture file is a JSON list"},
		{"no cases", `[]`, "no cases"},
		{"trailing data", `[` + good + `] []`, "not valid JSON"},
		{"unknown field", `[{"name": "n", "request": {"action": "read", "caller": "bob", "callr": "x"}, "expect": {"allowed": true}}]`, `unknown field "callr"`},
		{"unknown expect field", `[{"name": "n", "request": {"action": "read"}, "expect": {"allowed": true, "price": 3}}]`, `unknown field "price"`},
		{"duplicate key", `[{"name": "n", "request": {"action": "read", "caller": "bob", "caller": "alice"}, "expect": {"allowed": true}}]`, `key "caller" appears twice`},
		{"no name", `[{"request": {"action": "read"}, "expect": {"allowed": true}}]`, "case 1 has no name"},
		{"two cases, one name", `[` + good + `,` + good + `]`, `two cases are named "n"`},
		{"unknown action", `[{"name": "n", "request": {"action": "transfer"}, "expect": {"allowed": true}}]`, `request.action "transfer": use read, write`},
		{"no action", `[{"name": "n", "request": {}, "expect": {"allowed": true}}]`, `request.action "": use read`},
		{"no expectation", `[{"name": "n", "request": {"action": "read"}, "expect": {}}]`, "expect.allowed is required"},
		{"unknown code", `[{"name": "n", "request": {"action": "read"}, "expect": {"code": "BOOM"}}]`, `expect.code "BOOM" is not a kernelhost error code`},
		{"code with a decision", `[{"name": "n", "request": {"action": "read"}, "expect": {"code": "OUT_OF_FUEL", "allowed": false}}]`, "a failing kh_check answers no decision"},
		{"negative cost", `[{"name": "n", "request": {"action": "read"}, "expect": {"allowed": true, "cost": -1}}]`, "cannot unmarshal number -1"},
		{"caller too long", `[{"name": "n", "request": {"action": "read", "caller": "` + strings.Repeat("x", 200) + `"}, "expect": {"allowed": true}}]`, `case "n": request: caller: 200 bytes > 128`},
		{"time before 1970", `[{"name": "n", "request": {"action": "read", "time": "1969-12-31T00:00:00Z"}, "expect": {"allowed": true}}]`, "use a time between 1970 and 2200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := writeFixtures(t, tc.text)
			for _, sub := range []string{"test", "bench"} {
				msg := fails(t, dir, exitUsage, "contract", sub, fx, "--file", free)
				require.True(t, strings.HasPrefix(msg, "kernelhost: fixtures "+fx+": "), msg)
				require.Contains(t, msg, tc.msg)
			}
		})
	}

	fx := writeFixtures(t, `[`+good+`]`)
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", filepath.Join(t.TempDir(), "missing.json"), "--file", free), "no such file")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", "--file", free), "requires at least 1 arg")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", fx), "name the module under test")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", fx, "--file", free, "--contract", "genesis/freeware"), "name the module under test")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", fx, "--file", free, "--as", "bob"), "--file needs none")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", fx, "--contract", "genesis/freeware"), "pass --as P")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "test", fx, "--file", free, "--fuel", "0"), "--fuel 0")
	require.Contains(t, fails(t, dir, exitUsage, "contract", "bench", fx, "--file", free, "--count", "0"), "--count 0")
	require.Contains(t, fails(t, dir, exitError, "contract", "test", fx, "--file", hostileModule("no_check")), "CONTRACT_INVALID")
	require.Contains(t, fails(t, dir, exitError, "contract", "test", fx, "--file", hostileModule("exe")), "exports no kh_check")
}

// TestContractTestDeterministic: every run starts from the module's state
// after initialisation, so a case's result depends on its request alone:
// host/testdata/counter.wasm allows only the first call of an instance
// and is allowed on every case, and two runs of a fixture file (one of
// flip.wasm, which reads the clocks and random_get) print the same report.
func TestContractTestDeterministic(t *testing.T) {
	t.Parallel()
	dir := noWorld(t)
	fx := writeFixtures(t, `[
	  {"name": "first", "request": {"action": "read", "caller": "bob"}, "expect": {"allowed": true}},
	  {"name": "second", "request": {"action": "read", "caller": "bob"}, "expect": {"allowed": true}},
	  {"name": "third", "request": {"action": "write", "caller": "carol"}, "expect": {"allowed": true}}
	]`)
	counter := repo("host", "testdata", "counter.wasm")
	require.Contains(t, ok(t, dir, "contract", "test", fx, "--file", counter), "3 passed, 0 failed")

	flipFx := writeFixtures(t, `[
	  {"name": "a", "request": {"action": "read", "caller": "bob"}, "expect": {"code": "OK", "allowed": true}},
	  {"name": "b", "request": {"action": "read", "caller": "bob"}, "expect": {"allowed": true}}
	]`)
	flip := hostileModule("flip")
	first, _, _ := cli(t, dir, "contract", "test", flipFx, "--file", flip, "-o", "json")
	second, _, _ := cli(t, dir, "contract", "test", flipFx, "--file", flip, "-o", "json")
	require.Equal(t, first, second)
	r := testReportOf(t, first)
	require.Equal(t, r.Cases[0].Decision, r.Cases[1].Decision, "the same request, the same decision")
	require.Equal(t, r.Cases[0].Fuel, r.Cases[1].Fuel, "and the same fuel")
}

// TestContractTestWorldContract: --contract ID --as P tests a contract of
// the world: P reads its code and config (one read, judged by its
// governor), and a case without a config gets the contract's own, with
// access_contract defaulting to its id. Not a contract, or not readable:
// exit 1, nothing run.
func TestContractTestWorldContract(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	pay := filepath.Join(t.TempDir(), "pay.wasm")
	require.NoError(t, os.WriteFile(pay, demo.PayPerRead, 0o600))
	ok(t, dir, "contract", "deploy", "alice/pay", "--file", pay, "--as", "alice", "--meta", "price=7", "--meta", "sponsor=sponsor", "--meta", "payee=alice")
	ok(t, dir, "artifact", "put", "diary", "--as", "alice", "--type", "text", "--contract", "genesis/private", "--text", "secret")
	before := balances(t, dir)

	fx := writeFixtures(t, `[
	  {"name": "the deployed config", "request": {"action": "read", "caller": "bob", "target": "report", "created_by": "alice"},
	   "expect": {"allowed": true, "cost": 7, "payer": "sponsor", "payee": "alice"}},
	  {"name": "a config of its own", "request": {"action": "read", "caller": "bob", "target": "report", "config": {"price": "2"}},
	   "expect": {"allowed": true, "cost": 2}}
	]`)
	r := testReportOf(t, ok(t, dir, "contract", "test", fx, "--contract", "alice/pay", "--as", "bob", "-o", "json"))
	require.True(t, r.OK, "%+v", r.Cases)
	require.Equal(t, "alice/pay", r.Module.Contract)
	require.Equal(t, before, balances(t, dir), "reading the contract under freeware charged nobody")

	// The genesis contracts are contracts of the world too.
	freeFx := repo("contracts-wasm", "testdata", "freeware.fixtures.json")
	require.Contains(t, ok(t, dir, "contract", "test", freeFx, "--contract", "genesis/freeware", "--as", "bob"),
		strconv.Itoa(countCases(t, freeFx))+" passed, 0 failed")

	require.Contains(t, fails(t, dir, exitError, "contract", "test", fx, "--contract", "diary", "--as", "bob"), "PERMISSION_DENIED")
	require.Contains(t, fails(t, dir, exitError, "contract", "test", fx, "--contract", "diary", "--as", "alice"), `diary is an artifact of type "text", not a contract`)
	require.Contains(t, fails(t, dir, exitError, "contract", "test", fx, "--contract", "nothing", "--as", "bob"), "NOT_FOUND")
}

// benchJSON is 'contract bench -o json'.
type benchJSON struct {
	Count int `json:"count"`
	Cases []struct {
		Name     string   `json:"name"`
		Pass     bool     `json:"pass"`
		Runs     int      `json:"runs"`
		FuelOp   uint64   `json:"fuel_per_op"`
		NsOp     int64    `json:"ns_per_op"`
		Failures []string `json:"failures"`
	} `json:"cases"`
}

// TestContractBench: bench runs each case --count times and reports the
// fuel of one run, exactly what 'contract test' reports for the case (the
// same on every run), and a wall time per run; a table in text. A case
// that fails its expect block (here its exact fuel) makes bench exit 1.
func TestContractBench(t *testing.T) {
	t.Parallel()
	dir := noWorld(t)
	fixtures := repo("examples", "c-contract", "testdata", "pay_per_read.fixtures.json")
	module := repo("examples", "c-contract", "pay_per_read.wasm")
	tr := testReportOf(t, ok(t, dir, "contract", "test", fixtures, "--file", module, "-o", "json"))

	var b benchJSON
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "contract", "bench", fixtures, "--file", module, "--count", "7", "-o", "json")), &b))
	require.Equal(t, 7, b.Count)
	require.Len(t, b.Cases, len(tr.Cases))
	for i, c := range b.Cases {
		require.Equal(t, tr.Cases[i].Name, c.Name)
		require.True(t, c.Pass, "%s: %v", c.Name, c.Failures)
		require.Equal(t, 7, c.Runs)
		require.Equal(t, tr.Cases[i].Fuel, c.FuelOp, "%s: bench and test agree on the fuel", c.Name)
		require.Positive(t, c.NsOp)
	}

	out := ok(t, dir, "contract", "bench", fixtures, "--file", module, "--count", "3")
	require.Regexp(t, `CASE\s+RUNS\s+FUEL/OP\s+NS/OP\s+RESULT\n`, out)
	row := regexp.MustCompile(`(?m)^no config: a free read, burned\s+3\s+(\d+)\s+\d+\s+PASS$`).FindStringSubmatch(out)
	require.NotNil(t, row, out)
	require.Equal(t, strconv.FormatUint(tr.Cases[2].Fuel, 10), row[1])

	// The exact fuel is a fixture's to pin: right passes, off by one fails.
	fuel := tr.Cases[0].Fuel
	pin := func(f uint64) string {
		return writeFixtures(t, `[{"name": "pinned", "request": {"action": "read", "caller": "bob", "target": "alice/report", "target_type": "text", "created_by": "alice", "size": 18, "revision": 1,
		  "config": {"price": "7", "sponsor": "sponsor", "payee": "alice"}},
		  "expect": {"allowed": true, "cost": 7, "payer": "sponsor", "payee": "alice", "fuel": `+strconv.FormatUint(f, 10)+`}}]`)
	}
	require.Contains(t, ok(t, dir, "contract", "bench", pin(fuel), "--file", module, "--count", "2"), "PASS")
	out, errOut, code := cli(t, dir, "contract", "bench", pin(fuel+1), "--file", module, "--count", "2")
	require.Equal(t, exitError, code)
	require.Contains(t, out, "FAIL  ")
	require.Contains(t, out, "fuel: got "+strconv.FormatUint(fuel, 10)+", want "+strconv.FormatUint(fuel+1, 10))
	require.Equal(t, "kernelhost: 1 of 1 cases failed\n", errOut)
}

// TestCheckExplainFuel: 'contract check --explain' shows the fuel the
// contract used and the µs of cpu_rate the check was charged, the same
// numbers as -o json, and no contract wall time (a metering host reports
// none: the line read "contract 0s").
func TestCheckExplainFuel(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "artifact", "put", "note", "--as", "alice", "--type", "text", "--text", "hi")
	args := []string{"contract", "check", "--explain", "--as", "bob", "--action", "read", "--target", "note"}
	var ex api.Explanation
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, append(args, "-o", "json")...)), &ex))
	require.Positive(t, ex.ContractFuel)
	require.Positive(t, ex.CPUCharged)
	require.Zero(t, ex.ContractSeconds, "a metering host reports fuel, not time")

	out := ok(t, dir, args...)
	require.NotRegexp(t, `(?m)^time:`, out, "no wall time that always reads 0")
	require.NotContains(t, out, "contract 0s")
	require.Contains(t, out, "request the contract saw:")
	require.Contains(t, out, "fuel:       "+strconv.FormatUint(ex.ContractFuel, 10)+" (deterministic")
	require.Contains(t, out, "charged:    "+strconv.FormatInt(ex.CPUCharged, 10)+" µs of bob's cpu_rate")
}
