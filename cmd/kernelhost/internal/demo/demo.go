// Package demo is the scenario 'kernelhost demo' plays: a small world on a
// temporary Badger directory, printed as a transcript. It uses only the
// public API (kernel, host, store, genesis, abi), as an embedding program
// would.
package demo

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	market "github.com/kernelhost/kernelhost/examples/rights-market"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// PayPerRead is the demo's access contract (pay_per_read.wat): reads are
// allowed at the config's price, charged to the config's sponsor and
// credited to its payee; every other action needs the controller.
//
//go:embed pay_per_read.wasm
var PayPerRead []byte

// Ids the scenario uses.
const (
	payContract = "alice/pay-per-read"
	report      = "alice/report"
	diary       = "alice/diary"
	price       = 10
)

// CacheEnv names the environment variable that points every world at one
// shared wazero compilation cache, so that modules (the genesis rights
// registry is a 3.4 MB Go guest) compile once per machine rather than once
// per data directory.
const CacheEnv = "KERNELHOST_WAZERO_CACHE"

// CacheDir returns the compilation cache of the world in dataDir: $CacheEnv
// when set, else dataDir/wazero-cache.
func CacheDir(dataDir string) string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return filepath.Join(dataDir, "wazero-cache")
}

// Options change how RunWith plays the scenario.
type Options struct {
	// Record opens the kernel with kernel.Config.Record: the world keeps
	// every input in order (its R/ records), so that 'kernelhost replay
	// --recording-dir DIR' can re-execute it from the empty world and
	// prove it ends the same. Explain is refused while recording: the
	// scene that asks for it shows the refusal instead.
	Record bool
	// Serve, when set, is called once the scenario has played, with the
	// world still open, and the demo ends when it returns ('kernelhost demo
	// --serve' serves the world over HTTP until interrupted). From then on
	// the world's clock is the wall clock: the scenario's stands still.
	// t holds the tokens scene 9 issued (tokens.go).
	Serve func(ctx context.Context, k *kernel.Kernel, st store.Store, t Tokens) error
}

// Run plays the scenario in a new world under dir (which must be empty or
// missing) and writes the transcript to out. It fails if any step does not
// end as the scenario expects.
func Run(ctx context.Context, out io.Writer, dir string) error {
	return RunWith(ctx, out, dir, Options{})
}

// RunWith is Run with opts.
func RunWith(ctx context.Context, out io.Writer, dir string, opts Options) (err error) {
	st, err := store.OpenBadger(filepath.Join(dir, "store"), store.BadgerOptions{NoSync: true})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	h, err := host.New(ctx, host.DefaultConfig().WithCacheDir(CacheDir(dir)))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, h.Close(ctx)) }()
	// The demo's clock stands still at its start: the story's rate windows
	// (bob's llm_rate used up in scene 7 is still used in scene 8) must not
	// depend on how fast this machine plays it, and the transcript is the
	// same on every run.
	start := time.Now().Truncate(time.Second)
	var live atomic.Bool // Serve's world runs on the wall clock
	clock := func() time.Time {
		if live.Load() {
			return time.Now()
		}
		return start
	}
	k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: h, Clock: clock, DefaultContract: genesis.DefaultContract, Record: opts.Record})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, k.Close(ctx)) }()
	s := &scene{ctx: ctx, out: out, k: k, record: opts.Record, st: st, now: clock}
	fmt.Fprintf(out, "kernelhost demo: a world on a temporary Badger store in %s\n", dir)
	if opts.Record {
		fmt.Fprintln(out, "(recording: every input is kept, for 'kernelhost replay')")
	}
	if err := s.play(); err != nil || opts.Serve == nil {
		return err
	}
	live.Store(true)
	return opts.Serve(ctx, k, st, s.toks)
}

// scene is the running scenario.
type scene struct {
	ctx context.Context
	out io.Writer
	k   *kernel.Kernel
	err error // the first step that went other than planned
	// record: the kernel records (Options.Record), so Explain is refused.
	record bool
	// st and now are the world's store and clock; toks the tokens scene 9
	// issued (tokens.go).
	st   store.Store
	now  func() time.Time
	toks Tokens
}

func (s *scene) section(title string) { fmt.Fprintf(s.out, "\n== %s\n", title) }

func (s *scene) say(format string, args ...any) { fmt.Fprintf(s.out, "   "+format+"\n", args...) }

// do runs a, prints what happened, and records a failure when the code is
// not the one expected.
func (s *scene) do(what string, a kernel.Action, want string) kernel.Result {
	res := s.k.Do(s.ctx, a)
	line := fmt.Sprintf("%-38s -> %s", what, res.Code)
	if res.OK {
		switch {
		case a.Kind == kernel.KindRead:
			line += fmt.Sprintf(": %q", res.Content)
		case a.Kind == kernel.KindInvoke:
			line += ": " + truncate(string(res.Output), 120)
		case res.Revision > 0:
			line += fmt.Sprintf(" (revision %d)", res.Revision)
		}
		if len(res.Charges) > 0 {
			line += " [" + charges(res.Charges) + "]"
		}
	} else {
		line += ": " + res.Message
		if res.Retriable {
			line += " [retriable]"
		}
	}
	s.say("%s", line)
	if res.Code.String() != want && s.err == nil {
		s.err = fmt.Errorf("demo: %s: got %s, want %s: %s", what, res.Code, want, res.Message)
	}
	return res
}

func (s *scene) check(err error) {
	if err != nil && s.err == nil {
		s.err = err
	}
}

func charges(cs []kernel.Charge) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.Payee == "" {
			parts = append(parts, fmt.Sprintf("%s paid %d, burned", c.Payer, c.Amount))
		} else {
			parts = append(parts, fmt.Sprintf("%s paid %d to %s", c.Payer, c.Amount, c.Payee))
		}
	}
	return strings.Join(parts, "; ")
}

func (s *scene) balances(ids ...string) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		p, err := s.k.Principal(s.ctx, id)
		s.check(err)
		parts = append(parts, fmt.Sprintf("%s %d", id, p.Balance))
	}
	return strings.Join(parts, ", ")
}

func (s *scene) play() error {
	ctx, k := s.ctx, s.k

	s.section("1. Agents")
	spec := genesis.Spec{Principals: []genesis.PrincipalSpec{
		{ID: "alice", Balance: 1000}, {ID: "bob", Balance: 100}, {ID: "carol", Balance: 100},
		{ID: "sponsor", Balance: 5000}, {ID: "mallory", Balance: 0},
	}}
	if err := genesis.Install(ctx, k, spec); err != nil {
		return err
	}
	s.say("genesis installed the contracts genesis/freeware, genesis/private, genesis/public")
	s.say("agents: %s", s.balances("alice", "bob", "carol", "sponsor", "mallory"))

	s.section("2. alice deploys a custom WASM contract that charges for reads")
	sum := sha256.Sum256(PayPerRead)
	s.say("pay_per_read.wasm: %d bytes, sha256 %s…; its config names price, sponsor and payee", len(PayPerRead), hex.EncodeToString(sum[:8]))
	s.do("alice deploys "+payContract, kernel.Action{
		Kind: kernel.KindWrite, Caller: "alice", Target: payContract, Type: kernel.TypeContract, Content: PayPerRead,
		Metadata: map[string]string{"price": fmt.Sprint(price), "sponsor": "sponsor", "payee": "alice"},
	}, "OK")
	s.do("alice writes "+report, kernel.Action{
		Kind: kernel.KindWrite, Caller: "alice", Target: report, Type: "text", Contract: payContract,
		Content: []byte("Q1: revenue up 12%"),
	}, "OK")

	s.section("3. Reads are paid by the sponsor, once it has consented")
	s.do("bob reads "+report, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: report}, "PAYER_NOT_AUTHORIZED")
	s.say("(a contract can name a payer, but never charge one that did not consent)")
	s.do("sponsor consents: <=10/read, <=100 total", kernel.Action{
		Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: payContract, PerCallCap: price, TotalCap: 100,
	}, "OK")
	s.do("bob reads "+report, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: report}, "OK")
	s.do("carol reads "+report, kernel.Action{Kind: kernel.KindRead, Caller: "carol", Target: report}, "OK")
	s.say("balances: %s", s.balances("sponsor", "alice", "bob", "carol"))
	if g, err := k.Consent(ctx, "sponsor", payContract); err == nil {
		s.say("sponsor's consent: %d of %d spent", g.Spent, g.TotalCap)
	} else {
		s.check(err)
	}

	s.section("4. A stranger is denied")
	s.do("mallory overwrites "+report, kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: report, Content: []byte("pwned")}, "PERMISSION_DENIED")
	s.do("mallory moves "+report+" to public", kernel.Action{Kind: kernel.KindSetContract, Caller: "mallory", Target: report, Contract: genesis.Public}, "PERMISSION_DENIED")
	s.do("mallory deletes the contract", kernel.Action{Kind: kernel.KindDelete, Caller: "mallory", Target: payContract}, "PERMISSION_DENIED")

	s.section("5. A private artifact stays private")
	s.do("alice writes "+diary+" (private)", kernel.Action{
		Kind: kernel.KindWrite, Caller: "alice", Target: diary, Type: "text", Contract: genesis.Private,
		Content: []byte("dear diary"), Metadata: map[string]string{"mood": "secret"},
	}, "OK")
	s.do("bob reads "+diary, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: diary}, "PERMISSION_DENIED")
	ex, err := k.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: diary})
	var ke *kernel.Error
	switch {
	case s.record && errors.As(err, &ke) && ke.Code == abi.Unavailable:
		s.say("bob asks why (explain) -> %s: %s", ke.Code, ke.Msg)
	case s.record:
		s.check(fmt.Errorf("demo: explain while recording: got %v, want UNAVAILABLE", err))
	default:
		s.check(err)
	}
	if err == nil && !s.record {
		s.say("bob asks why (explain): decision allowed=%t, metadata shown: %t (withheld: %s)",
			ex.Decision != nil && ex.Decision.Allowed, len(ex.Request.Metadata) > 0, strings.Join(ex.Redacted, ", "))
	}
	s.do("alice reads "+diary, kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: diary}, "OK")

	s.section("6. Rate quotas: exhausted, then topped up by another agent")
	s.check(k.SetQuota(ctx, "bob", kernel.LLMRate, 100))
	s.say("bob's llm_rate quota: 100 tokens per rolling window")
	use := kernel.Action{Kind: kernel.KindConsumeQuota, Caller: "bob", Resource: string(kernel.LLMRate), Amount: 60}
	s.do("bob uses 60 LLM tokens", use, "OK")
	s.do("bob uses 60 LLM tokens", use, "QUOTA_EXCEEDED")
	s.do("carol gives bob 50 llm_rate", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "carol", To: "bob", Resource: string(kernel.LLMRate), Amount: 50}, "OK")
	s.do("bob uses 60 LLM tokens", use, "OK")
	if st, err := k.QuotaStatus(ctx, "bob", kernel.LLMRate); err == nil {
		s.say("bob's llm_rate: quota %d, used %d, available %d", st.Quota, st.Used, st.Available)
	} else {
		s.check(err)
	}

	s.section("7. The audit trail")
	evs, err := k.Events(ctx, 0, 1000)
	if err != nil {
		return err
	}
	for _, e := range evs {
		s.say("%s", eventLine(e))
	}
	t, err := k.Totals(ctx)
	s.check(err)
	s.check(k.CheckLedger(ctx))
	s.say("ledger: minted %d = balances + burned %d: consistent", t.Minted, t.Burned)

	if err := s.market(); err != nil {
		return err
	}
	if err := s.grants(); err != nil { // tokens.go
		return err
	}
	if s.err != nil {
		return s.err
	}
	fmt.Fprintln(s.out, "\ndemo finished: every step ended as expected")
	return nil
}

func eventLine(e kernel.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%-3d %-8s %-14s", e.Seq, e.Caller, e.Kind)
	switch {
	case e.Target != "":
		fmt.Fprintf(&b, " %-20s", e.Target)
	case e.To != "":
		fmt.Fprintf(&b, " -> %-17s", e.To)
	default:
		fmt.Fprintf(&b, " %-20s", "")
	}
	fmt.Fprintf(&b, " %s", e.Code)
	if e.Resource != "" {
		fmt.Fprintf(&b, " (%d %s)", e.Amount, e.Resource)
	}
	if len(e.Charges) > 0 {
		fmt.Fprintf(&b, " (%s)", charges(e.Charges))
	}
	return b.String()
}

// truncate shortens s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// escrow is the market executable's id; marketP the principal it acts as,
// which grants it standing. Ids imply nothing: the two are unrelated names.
const (
	escrow  = "escrow/market"
	marketP = "market"
)

// llmTotal is the world's llm_rate: every principal's quota plus every
// outstanding right, conserved by every action.
func (s *scene) llmTotal() int64 {
	q, err := s.k.QuotaTotals(s.ctx)
	s.check(err)
	r, err := s.k.RightTotals(s.ctx)
	s.check(err)
	return q[kernel.LLMRate] + r[kernel.LLMRate]
}

// market is scene 8: alice sells bob a right on part of her llm_rate
// through the escrow of examples/rights-market, a Go executable with
// standing, in one atomic invoke; bob redeems it and his action that was
// QUOTA_EXCEEDED succeeds.
func (s *scene) market() error {
	ctx, k := s.ctx, s.k
	s.section("8. A market in rights: alice sells bob llm_rate through an escrow, atomically")
	// The operator creates the market's principal with room for a Go
	// module; it deploys the escrow (so no trader controls its code),
	// configured to act as itself, and grants it standing: bound to this
	// code and configuration.
	if err := k.CreatePrincipal(ctx, marketP, 0); err != nil {
		return err
	}
	s.check(k.SetQuota(ctx, marketP, kernel.Disk, 8<<20))
	before := s.llmTotal()
	sum := sha256.Sum256(market.Escrow)
	s.say("escrow.wasm (examples/rights-market, Go): %d bytes, sha256 %s…", len(market.Escrow), hex.EncodeToString(sum[:8]))
	s.do(marketP+" deploys the escrow as "+escrow, kernel.Action{
		Kind: kernel.KindWrite, Caller: marketP, Target: escrow, Type: kernel.TypeExecutable, Content: market.Escrow,
		Metadata: map[string]string{"principal": marketP},
	}, "OK")
	s.do(marketP+" grants "+escrow+" standing", kernel.Action{Kind: kernel.KindGrantStanding, Caller: marketP, Target: escrow}, "OK")
	use := kernel.Action{Kind: kernel.KindConsumeQuota, Caller: "bob", Resource: string(kernel.LLMRate), Amount: 60}
	s.do("bob uses 60 LLM tokens", use, "QUOTA_EXCEEDED")
	const right = "alice/llm-100"
	s.do("alice mints right "+right, kernel.Action{
		Kind: kernel.KindMintRight, Caller: "alice", Target: right, Resource: string(kernel.LLMRate), Amount: 100,
	}, "OK")
	if q, err := k.Quota(ctx, "alice", kernel.LLMRate); err == nil {
		s.say("(100 of alice's llm_rate are now a right she can sell; her quota is %d)", q)
	} else {
		s.check(err)
	}
	invoke := func(caller, method, args string) kernel.Action {
		return kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: escrow, Method: method, Args: []byte(args)}
	}
	s.do("alice lists it with the escrow for 25", invoke("alice", "sell", `{"right":"`+right+`","price":25}`), "OK")
	s.do("mallory (0 scrip) buys it", invoke("mallory", "buy", `{"right":"`+right+`","price":25}`), "EXECUTION_FAILED")
	if rs, err := k.Rights(ctx, marketP); err == nil && len(rs) == 1 && rs[0].ID == right {
		s.say("(nothing moved: %s is still the escrow's, the failed payment rolled back the whole invoke)", right)
	} else {
		s.check(fmt.Errorf("demo: after a failed buy the escrow holds %v (err %v), want %s", rs, err, right))
	}
	s.do("bob buys it for 25", invoke("bob", "buy", `{"right":"`+right+`","price":25}`), "OK")
	s.say("balances: %s", s.balances("alice", "bob", marketP))
	s.do("alice redeems "+right, kernel.Action{Kind: kernel.KindRedeemRight, Caller: "alice", Target: right}, "PERMISSION_DENIED")
	s.do("bob redeems "+right, kernel.Action{Kind: kernel.KindRedeemRight, Caller: "bob", Target: right}, "OK")
	s.do("bob uses 60 LLM tokens", use, "OK")
	after := s.llmTotal()
	s.say("llm_rate, quotas + rights: %d before, %d after: conserved=%t", before, after, before == after)
	if before != after {
		s.check(fmt.Errorf("demo: llm_rate total changed from %d to %d", before, after))
	}
	s.check(k.CheckLedger(ctx))
	t, err := k.Totals(ctx)
	s.check(err)
	s.say("ledger: minted %d = balances + burned %d: consistent", t.Minted, t.Burned)
	return nil
}
