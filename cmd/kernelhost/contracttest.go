package main

// Contract authoring, like 'opa test' and 'opa bench': validate's probe
// run, fixture files, 'contract test' and 'contract bench'. The fixture
// format is documented in docs/cli.md ("Contract fixtures").

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
)

// probeFuel is the fuel budget of validate's probe run: a fifth of a
// check's default budget (host.DefaultCheckFuel), a thousand times what
// the C genesis contracts use, so that a contract that runs out of it
// would run out of a caller's cpu_rate too, or nearly.
const probeFuel = 10_000_000

// probeRequest is the request validate's probe run sends to kh_check: a
// read of a made-up artifact by a made-up caller. Any decision is fine;
// what fails validation is a kh_check that cannot answer it.
func probeRequest() *abi.Request {
	return &abi.Request{
		Action: abi.ActionRead, TargetExists: true, Time: uint64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()),
		Caller: "probe/caller", TargetID: "probe/target", TargetType: "text", CreatedBy: "probe/creator",
		AccessContract: "probe/contract", Size: 5, Revision: 1,
		Metadata: []abi.KV{{Key: "controller", Value: "probe/creator"}},
	}
}

// probe is what validate's probe run found.
type probe struct {
	Ran      bool          `json:"ran"`                // false: the module has no kh_check (an executable)
	Decision *api.Decision `json:"decision,omitempty"` // kh_check's answer to probeRequest
	Fuel     uint64        `json:"fuel"`               // the fuel the run used
}

// probeModule prepares wasm in h (the deploy-time checks) and, when it
// exports kh_check, runs kh_check once on probeRequest under probeFuel. A
// module that fails the checks is reported as Validate reports it; one
// whose kh_check traps, runs out of fuel or time, or answers a malformed
// decision as an invalid module whose message names which.
func probeModule(ctx context.Context, h *host.Host, file string, wasm []byte) (probe, error) {
	hash, err := h.Prepare(ctx, wasm)
	if err != nil {
		return probe{}, invalidModule(file, err)
	}
	check, _, _ := h.Entrypoints(hash)
	if !check {
		return probe{}, nil
	}
	d, use, err := h.Evaluate(ctx, hash, probeRequest(), abi.Limits{Fuel: probeFuel})
	if err != nil {
		return probe{Ran: true, Fuel: use.Fuel}, fmt.Errorf("%s: %s is not a valid contract: kh_check %s on a probe request (a read of a made-up artifact by a made-up caller, %d fuel): %s: %v",
			abi.ContractInvalid, file, failureText(err), probeFuel, api.CodeOf(err), err)
	}
	return probe{Ran: true, Decision: api.DecisionOf(&d), Fuel: use.Fuel}, nil
}

// failureText names how a contract run failed, in words.
func failureText(err error) string {
	switch {
	case errors.Is(err, host.ErrOutOfFuel):
		return "ran out of fuel"
	case errors.Is(err, host.ErrTimeout):
		return "timed out"
	case errors.Is(err, host.ErrBadDecision):
		return "returned a malformed decision"
	case errors.Is(err, host.ErrBadAlloc):
		return "could not take the request (kh_alloc failed)"
	case errors.Is(err, host.ErrMemoryLimit):
		return "exceeded its memory limit"
	case errors.Is(err, host.ErrTrap):
		return "trapped"
	}
	return "failed"
}

// maxFixtureBytes bounds a fixture file.
const maxFixtureBytes = 16 << 20

// fixtureCase is one case of a fixture file: a request and the decision
// (or failure) the contract must answer with.
type fixtureCase struct {
	Name    string         `json:"name"`
	Request fixtureRequest `json:"request"`
	Expect  fixtureExpect  `json:"expect"`

	file string      // the fixture file, for reports
	req  abi.Request // Request, checked and converted
}

// fixtureRequest is abi.Request in a fixture: what the kernel would tell
// the contract about one action.
type fixtureRequest struct {
	Action         string            `json:"action"`
	Caller         string            `json:"caller"`
	Target         string            `json:"target"`
	TargetExists   *bool             `json:"target_exists"` // default true
	TargetType     string            `json:"target_type"`
	CreatedBy      string            `json:"created_by"`
	AccessContract *string           `json:"access_contract"` // default: the contract's id, or ""
	Size           uint64            `json:"size"`
	Revision       uint64            `json:"revision"`
	Metadata       map[string]string `json:"metadata"`
	Config         map[string]string `json:"config"` // default: the deployed contract's config, or none
	PayloadSize    uint64            `json:"payload_size"`
	Method         string            `json:"method"`
	Args           string            `json:"args"`
	Time           *time.Time        `json:"time"` // default: the Unix epoch (0)
	Depth          uint32            `json:"depth"`
	CallerRights   map[string]uint64 `json:"caller_rights"`
}

// fixtureExpect is what a case expects. Code, when set to anything but
// OK, expects kh_check to fail with that code and admits no decision
// field; otherwise Allowed is required, Cost, Payer and Payee must match
// exactly (absent: 0 and ""), and Reason and Fuel only when present.
type fixtureExpect struct {
	Allowed *bool   `json:"allowed"`
	Cost    *uint64 `json:"cost"`
	Payer   *string `json:"payer"`
	Payee   *string `json:"payee"`
	Reason  *string `json:"reason"`
	Code    string  `json:"code"`
	Fuel    *uint64 `json:"fuel"`
}

// wantsFailure reports whether the case expects kh_check to fail.
func (e *fixtureExpect) wantsFailure() bool { return e.Code != "" && e.Code != abi.OK.String() }

// subject is the module under test: where it came from and the defaults
// its cases' requests take.
type subject struct {
	File     string `json:"file,omitempty"`
	Contract string `json:"contract,omitempty"`
	SHA256   string `json:"sha256"`

	h      *host.Host
	hash   [32]byte
	config []abi.KV // the deployed contract's config
}

// loadFixtures reads and checks the fixture files paths. Every problem is
// a usage error (exit 2) naming the file and case.
func loadFixtures(paths []string) ([]fixtureCase, error) {
	var all []fixtureCase
	for _, p := range paths {
		cs, err := loadFixtureFile(p)
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
	}
	return all, nil
}

func loadFixtureFile(path string) ([]fixtureCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("fixtures %s: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFixtureBytes+1))
	if err != nil {
		return nil, usagef("fixtures %s: %v", path, err)
	}
	if len(b) > maxFixtureBytes {
		return nil, usagef("fixtures %s: more than %d bytes", path, maxFixtureBytes)
	}
	bad := func(format string, args ...any) error {
		return usagef("fixtures %s: %s", path, fmt.Sprintf(format, args...))
	}
	if !json.Valid(b) {
		var v any
		return nil, bad("not valid JSON: %v", json.Unmarshal(b, &v))
	}
	if err := kernel.CheckDuplicateKeys(b); err != nil {
		var ke *kernel.Error
		if errors.As(err, &ke) {
			return nil, bad("%s", strings.Replace(ke.Msg, " of the action", "", 1))
		}
		return nil, bad("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var cs []fixtureCase
	if err := dec.Decode(&cs); err != nil {
		return nil, bad("%v (a fixture file is a JSON list of {\"name\", \"request\", \"expect\"}: docs/cli.md)", err)
	}
	if len(cs) == 0 {
		return nil, bad("no cases")
	}
	seen := make(map[string]bool, len(cs))
	for i := range cs {
		c := &cs[i]
		c.file = path
		if c.Name == "" {
			return nil, bad("case %d has no name", i+1)
		}
		if seen[c.Name] {
			return nil, bad("two cases are named %q", c.Name)
		}
		seen[c.Name] = true
		if err := c.check(); err != nil {
			return nil, bad("case %q: %v", c.Name, err)
		}
	}
	return cs, nil
}

// check checks the case and converts its request.
func (c *fixtureCase) check() error {
	r := &c.Request
	act, ok := abi.ParseAction(r.Action)
	if !ok {
		return fmt.Errorf("request.action %q: use read, write, edit, delete, invoke or set_contract", r.Action)
	}
	c.req = abi.Request{
		Action: act, TargetExists: r.TargetExists == nil || *r.TargetExists, Depth: r.Depth,
		Caller: r.Caller, TargetID: r.Target, TargetType: r.TargetType, CreatedBy: r.CreatedBy,
		Size: r.Size, Revision: r.Revision, Metadata: kvs(r.Metadata),
		PayloadSize: r.PayloadSize, Method: r.Method,
	}
	if r.AccessContract != nil {
		c.req.AccessContract = *r.AccessContract
	}
	if r.Args != "" {
		c.req.Args = []byte(r.Args)
	}
	if r.Config != nil {
		c.req.Config = kvs(r.Config)
	}
	if r.Time != nil {
		ns := r.Time.UnixNano()
		if ns < 0 || r.Time.Year() > 2200 {
			return fmt.Errorf("request.time %s: use a time between 1970 and 2200", r.Time.Format(time.RFC3339))
		}
		c.req.Time = uint64(ns)
	}
	for res, n := range r.CallerRights {
		c.req.CallerRights = append(c.req.CallerRights, abi.RightAmount{Resource: res, Amount: n})
	}
	sort.Slice(c.req.CallerRights, func(i, j int) bool { return c.req.CallerRights[i].Resource < c.req.CallerRights[j].Resource })
	if _, err := abi.AppendRequest(nil, &c.req); err != nil {
		return fmt.Errorf("request: %v", err)
	}
	e := &c.Expect
	if e.Code != "" {
		if _, ok := abi.ParseCode(e.Code); !ok {
			return fmt.Errorf("expect.code %q is not a kernelhost error code (README, error codes)", e.Code)
		}
	}
	if e.wantsFailure() {
		if e.Allowed != nil || e.Cost != nil || e.Payer != nil || e.Payee != nil || e.Reason != nil {
			return fmt.Errorf("expect.code %s: a failing kh_check answers no decision: leave out allowed, cost, payer, payee and reason", e.Code)
		}
		return nil
	}
	if e.Allowed == nil {
		return errors.New("expect.allowed is required (or expect.code, for a kh_check that must fail)")
	}
	return nil
}

// kvs returns m as a sorted KV list (nil for an empty map).
func kvs(m map[string]string) []abi.KV {
	if len(m) == 0 {
		return nil
	}
	out := make([]abi.KV, 0, len(m))
	for k, v := range m {
		out = append(out, abi.KV{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// request returns the case's request with the subject's defaults.
func (s *subject) request(c *fixtureCase) *abi.Request {
	r := c.req
	if c.Request.AccessContract == nil {
		r.AccessContract = s.Contract
	}
	if c.Request.Config == nil {
		r.Config = s.config
	}
	return &r
}

// caseResult is one case's run.
type caseResult struct {
	File     string        `json:"file"`
	Name     string        `json:"name"`
	Pass     bool          `json:"pass"`
	Decision *api.Decision `json:"decision,omitempty"`
	Code     string        `json:"code"` // OK, or how kh_check failed
	Message  string        `json:"message,omitempty"`
	Fuel     uint64        `json:"fuel"`
	Failures []string      `json:"failures,omitempty"` // what differs from expect
}

// judge compares one run of case c with its expectation.
func judge(c *fixtureCase, d abi.Decision, use abi.Usage, err error) caseResult {
	r := caseResult{File: c.file, Name: c.Name, Code: api.CodeOf(err).String(), Fuel: use.Fuel}
	e := &c.Expect
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	if err != nil {
		r.Message = err.Error()
		switch {
		case !e.wantsFailure():
			fail("kh_check failed: %s: %v", r.Code, err)
		case r.Code != e.Code:
			fail("code: got %s, want %s (%v)", r.Code, e.Code, err)
		}
	} else {
		r.Decision = api.DecisionOf(&d)
		if e.wantsFailure() {
			fail("code: got OK (%s), want %s", decisionText(&d), e.Code)
		} else {
			if d.Allowed != *e.Allowed {
				fail("allowed: got %t, want %t", d.Allowed, *e.Allowed)
			}
			if want := deref(e.Cost); d.Cost != want {
				fail("cost: got %d, want %d", d.Cost, want)
			}
			if want := deref(e.Payer); d.Payer != want {
				fail("payer: got %q, want %q", d.Payer, want)
			}
			if want := deref(e.Payee); d.Payee != want {
				fail("payee: got %q, want %q", d.Payee, want)
			}
			if e.Reason != nil && d.Reason != *e.Reason {
				fail("reason: got %q, want %q", d.Reason, *e.Reason)
			}
		}
	}
	if e.Fuel != nil && use.Fuel != *e.Fuel {
		fail("fuel: got %d, want %d", use.Fuel, *e.Fuel)
	}
	r.Pass = len(r.Failures) == 0
	return r
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// run runs case c once.
func (s *subject) run(ctx context.Context, c *fixtureCase, fuel uint64) (abi.Decision, abi.Usage, error) {
	return s.h.Evaluate(ctx, s.hash, s.request(c), abi.Limits{Fuel: fuel})
}

// moduleFlags are the flags that name the module under test.
type moduleFlags struct {
	file, contract, as string
	fuel               uint64
}

func (f *moduleFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "the .wasm module under test")
	fl.StringVar(&f.contract, "contract", "", "or: the id of a contract in the world, read as --as (its config is the cases' default config)")
	fl.StringVar(&f.as, "as", "", "with --contract: the principal that reads the contract")
	fl.Uint64Var(&f.fuel, "fuel", host.DefaultCheckFuel, "fuel budget of each kh_check run")
}

// withSubject prepares the module the flags name and calls fn with it:
// --file on a host of its own (no world needed), --contract on the
// world's host, its code and config read by one read action of --as,
// judged by the contract artifact's own access contract.
func (g *globals) withSubject(ctx context.Context, f *moduleFlags, fn func(s *subject) error) error {
	switch {
	case (f.file == "") == (f.contract == ""):
		return usagef("name the module under test: --file X.wasm, or --contract ID --as P")
	case f.file != "" && f.as != "":
		return usagef("--as reads a --contract from the world; --file needs none")
	case f.contract != "" && f.as == "":
		return usagef("--contract %s: pass --as P, the principal that reads the contract's code and config", f.contract)
	case f.fuel == 0:
		return usagef("--fuel 0: give each run a positive fuel budget")
	}
	if f.file != "" {
		wasm, err := readWasm(f.file)
		if err != nil {
			return err
		}
		h, err := host.New(ctx, host.DefaultConfig())
		if err != nil {
			return err
		}
		defer func() { _ = h.Close(ctx) }()
		hash, err := h.Prepare(ctx, wasm)
		if err != nil {
			return invalidModule(f.file, err)
		}
		if check, _, _ := h.Entrypoints(hash); !check {
			return fmt.Errorf("%s: %s exports no kh_check: it is an executable, not an access contract", abi.ContractInvalid, f.file)
		}
		return fn(&subject{File: f.file, SHA256: hex.EncodeToString(hash[:]), h: h, hash: hash})
	}
	return g.withWorld(ctx, func(w *world) error {
		res := w.k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: f.as, Target: f.contract})
		if !res.OK {
			return fmt.Errorf("read contract %s as %s: %w", f.contract, f.as, actionError{res})
		}
		if res.Artifact == nil || res.Artifact.Type != kernel.TypeContract {
			typ := ""
			if res.Artifact != nil {
				typ = res.Artifact.Type
			}
			return fmt.Errorf("%s: %s is an artifact of type %q, not a contract", abi.InvalidArgument, f.contract, typ)
		}
		hash, err := w.host.Prepare(ctx, res.Content)
		if err != nil {
			return invalidModule(f.contract, err)
		}
		if check, _, _ := w.host.Entrypoints(hash); !check {
			return fmt.Errorf("%s: %s exports no kh_check: it is an executable, not an access contract", abi.ContractInvalid, f.contract)
		}
		sum := sha256.Sum256(res.Content)
		return fn(&subject{Contract: f.contract, SHA256: hex.EncodeToString(sum[:]), h: w.host, hash: hash, config: kvs(res.Artifact.Metadata)})
	})
}

// testReport is what 'contract test' prints with --output json.
type testReport struct {
	OK     bool         `json:"ok"`
	Module *subject     `json:"module"`
	Passed int          `json:"passed"`
	Failed int          `json:"failed"`
	Cases  []caseResult `json:"cases"`
}

func newContractTestCmd(g *globals) *cobra.Command {
	var mf moduleFlags
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test FIXTURES.json... (--file X.wasm | --contract ID --as P)",
		Short: "Run fixture files against a contract: request in, expected decision out (like 'opa test')",
		Long: `test runs every case of the fixture files against the module's kh_check: the
case's request goes in, the decision (allowed, cost, payer, payee, reason)
or the failure (expect.code: OUT_OF_FUEL, CONTRACT_FAILED, ...) must come
out. The format is in docs/cli.md ("Contract fixtures").

The module is a .wasm file (--file, no world needed) or a contract of the
world (--contract ID --as P: P reads its code and config with one read
action; a case without a config gets the contract's). Every run starts from
the module's state after initialisation, so a case's result depends on its
request alone. It prints PASS or FAIL per case, with what differs, and exits
1 when any case fails, 2 when a fixture file is malformed.`,
		Example: `  kernelhost contract test contracts-wasm/testdata/freeware.fixtures.json --file contracts-wasm/freeware.wasm
  kernelhost contract test pay.fixtures.json --contract alice/pay --as alice -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cases, err := loadFixtures(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return g.withSubject(ctx, &mf, func(s *subject) error {
				rep := testReport{Module: s, Cases: make([]caseResult, 0, len(cases))}
				for i := range cases {
					d, use, err := s.run(ctx, &cases[i], mf.fuel)
					if ctx.Err() != nil {
						return ctx.Err()
					}
					r := judge(&cases[i], d, use, err)
					if r.Pass {
						rep.Passed++
					} else {
						rep.Failed++
					}
					rep.Cases = append(rep.Cases, r)
				}
				rep.OK = rep.Failed == 0
				if err := g.emit(rep, func(out io.Writer) { writeTestReport(out, rep, verbose) }); err != nil {
					return err
				}
				if !rep.OK {
					return fmt.Errorf("%d of %d cases failed", rep.Failed, len(rep.Cases))
				}
				return nil
			})
		},
	}
	mf.add(cmd)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print each passing case's decision and fuel")
	return cmd
}

// writeTestReport prints a test report for people.
func writeTestReport(w io.Writer, rep testReport, verbose bool) {
	for _, r := range rep.Cases {
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", verdict, r.File, r.Name)
		if !r.Pass || verbose {
			fmt.Fprintf(w, "      got %s, fuel %d\n", resultText(r), r.Fuel)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(w, "      %s\n", f)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", rep.Passed, rep.Failed)
}

// resultText is a case's outcome in words: the decision, or the failure.
func resultText(r caseResult) string {
	if r.Decision == nil {
		return r.Code
	}
	d := r.Decision
	return decisionText(&abi.Decision{Allowed: d.Allowed, Cost: d.Cost, Payer: d.Payer, Payee: d.Payee, Reason: d.Reason})
}

// benchResult is one case's benchmark.
type benchResult struct {
	File    string   `json:"file"`
	Name    string   `json:"name"`
	Pass    bool     `json:"pass"`
	Code    string   `json:"code"`
	Runs    int      `json:"runs"`
	FuelOp  uint64   `json:"fuel_per_op"` // exact: the same on every run and machine
	NsOp    int64    `json:"ns_per_op"`   // wall time: informational, varies
	Failing []string `json:"failures,omitempty"`
}

// benchReport is what 'contract bench' prints with --output json.
type benchReport struct {
	Module *subject      `json:"module"`
	Count  int           `json:"count"`
	Cases  []benchResult `json:"cases"`
}

func newContractBenchCmd(g *globals) *cobra.Command {
	var mf moduleFlags
	var count int
	cmd := &cobra.Command{
		Use:   "bench FIXTURES.json... (--file X.wasm | --contract ID --as P) [--count N]",
		Short: "Measure fuel and time per request of a contract's fixtures (like 'opa bench')",
		Long: `bench runs every case of the fixture files --count times against the module's
kh_check (the module as for 'contract test') and reports per case the fuel
of one run, which is exact and the same on every run and machine (what a
caller's cpu_rate pays, at the kernel's fuel per µs), and the wall time per
run in ns, which is informational. A case whose fuel differs between runs,
or whose outcome does not match its expect block, is reported as FAIL and
makes bench exit 1.`,
		Example: `  kernelhost contract bench contracts-wasm/testdata/freeware.fixtures.json --file contracts-wasm/freeware.wasm --count 1000
  kernelhost contract bench pay.fixtures.json --file pay.wasm -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 {
				return usagef("--count %d: run each case at least once", count)
			}
			cases, err := loadFixtures(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return g.withSubject(ctx, &mf, func(s *subject) error {
				rep := benchReport{Module: s, Count: count, Cases: make([]benchResult, 0, len(cases))}
				failed := 0
				for i := range cases {
					b, err := s.bench(ctx, &cases[i], mf.fuel, count)
					if err != nil {
						return err
					}
					if !b.Pass {
						failed++
					}
					rep.Cases = append(rep.Cases, b)
				}
				if err := g.emit(rep, func(out io.Writer) { writeBenchReport(out, rep) }); err != nil {
					return err
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d cases failed", failed, len(rep.Cases))
				}
				return nil
			})
		},
	}
	mf.add(cmd)
	cmd.Flags().IntVar(&count, "count", 100, "runs of each case")
	return cmd
}

// bench runs case c count times.
func (s *subject) bench(ctx context.Context, c *fixtureCase, fuel uint64, count int) (benchResult, error) {
	start := time.Now()
	d, use, err := s.run(ctx, c, fuel)
	first := judge(c, d, use, err)
	b := benchResult{File: c.file, Name: c.Name, Code: first.Code, Runs: 1, FuelOp: use.Fuel, Failing: first.Failures}
	for ; b.Runs < count; b.Runs++ {
		if err := ctx.Err(); err != nil {
			return b, err
		}
		_, u, _ := s.run(ctx, c, fuel)
		if u.Fuel != b.FuelOp && len(b.Failing) == 0 {
			b.Failing = append(b.Failing, fmt.Sprintf("fuel not deterministic: run 1 used %d, run %d used %d", b.FuelOp, b.Runs+1, u.Fuel))
		}
	}
	b.NsOp = time.Since(start).Nanoseconds() / int64(b.Runs)
	b.Pass = len(b.Failing) == 0
	return b, nil
}

// writeBenchReport prints a bench report as a table.
func writeBenchReport(w io.Writer, rep benchReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tRUNS\tFUEL/OP\tNS/OP\tRESULT")
	for _, b := range rep.Cases {
		verdict := "PASS"
		if !b.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", b.Name, b.Runs, b.FuelOp, b.NsOp, verdict)
	}
	_ = tw.Flush()
	for _, b := range rep.Cases {
		for _, f := range b.Failing {
			fmt.Fprintf(w, "FAIL  %s: %s: %s\n", b.File, b.Name, f)
		}
	}
	fmt.Fprintln(w, "fuel/op is exact (the same on every machine); ns/op is wall time, informational")
}
