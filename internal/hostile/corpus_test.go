package hostile_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

var ctx = context.Background()

// Ids of the corpus world.
const (
	root     = "root"     // deploys the benign contract and the hostile executable
	victim   = "victim"   // holds victimBalance scrip; named as payer by hostile contracts
	mallory  = "mallory"  // where stolen scrip would go
	alice    = "alice"    // background principal
	bob      = "bob"      // background principal
	freeware = "freeware" // the genesis freeware contract: the benign contract of the world
	exeID    = "x/exe"    // testdata/exe.wasm; its "r" method invokes this id

	victimBalance   = 3
	attackerBalance = 10
	maxInstances    = 4 // host.Config.MaxInstancesPerModule
)

// background principals act concurrently with the corpus; their balances
// change, so snapshots leave them out and check only their sum.
var background = map[string]bool{alice: true, bob: true}

// How an attack is delivered.
type delivery int

const (
	// deploy writes the module as a new contract: it must be rejected.
	deploy delivery = iota
	// govern deploys the module as a contract (which must succeed), creates
	// an artifact it governs, then acts on that artifact.
	govern
	// invoke calls a method of the hostile executable exeID.
	invoke
)

// attack is one entry of the corpus.
type attack struct {
	name   string
	module string // testdata/<module>.wasm
	by     delivery
	// content replaces the module's bytes when set (deploy only).
	content []byte

	// govern: the action on the governed artifact (default read). For
	// invoke the governed artifact is an executable, else data.
	kind kernel.Kind
	// govern: the victim consents to the contract first, with these caps.
	consent *[2]int64
	// govern: after the consent, the attacker replaces the contract's code
	// with this module.
	rewrite string
	// govern: deploy the module as an executable instead of a contract,
	// governed by freeware, and invoke it.
	asExecutable bool

	// invoke: the method and its args (a host-call request).
	method, args string

	// The attacker's quotas, when not the default.
	cpu, memory int64

	code abi.Code
	msg  string // a substring the result's message must contain
}

// corpus is every attack. Each runs as a fresh principal "m-<name>".
func corpus() []attack {
	return []attack{
		// Rejected at deploy: CONTRACT_INVALID (SPEC.md sections 1 and 6).
		{name: "not wasm", by: deploy, content: []byte("\x00asm\x01\x00\x00\x00\xff\xff"), code: abi.ContractInvalid, msg: "not a WebAssembly module"},
		{name: "infinite loop in start function", module: "loop_start", by: deploy, code: abi.ContractInvalid, msg: "initialising the module failed"},
		{name: "infinite loop in _initialize", module: "loop_init", by: deploy, code: abi.ContractInvalid, msg: "initialising the module failed"},
		// Host calls cost fuel by their bytes, initialisation included:
		// 2000 calls of random_get(16 MiB) ran 30 s or more (issue 15).
		{name: "random_get loop in start function", module: "random_start", by: deploy, code: abi.ContractInvalid, msg: "initialisation ran out of fuel: the start function"},
		{name: "random_get loop in _initialize", module: "random_init", by: deploy, code: abi.ContractInvalid, msg: "initialisation ran out of fuel: _initialize"},
		{name: "wrong ABI version", module: "bad_version", by: deploy, code: abi.ContractInvalid, msg: "kh_abi_version returned 2"},
		{name: "missing kh_check", module: "no_check", by: deploy, code: abi.ContractInvalid, msg: `missing export "kh_check"`},
		{name: "missing memory export", module: "no_memory", by: deploy, code: abi.ContractInvalid, msg: `missing export "memory"`},
		{name: "kh_check of the wrong type", module: "wrong_sig", by: deploy, code: abi.ContractInvalid, msg: `export "kh_check" has type`},
		{name: "WASI filesystem import", module: "import_fs", by: deploy, code: abi.ContractInvalid, msg: `"path_open" is not allowed: contracts get no filesystem`},
		{name: "WASI socket import", module: "import_sock", by: deploy, code: abi.ContractInvalid, msg: `"sock_accept" is not allowed: contracts get no network`},
		{name: "import from an unknown module", module: "import_env", by: deploy, code: abi.ContractInvalid, msg: `import "env"."abort" is not allowed`},
		{name: "unknown kernel function", module: "import_kernel", by: deploy, code: abi.ContractInvalid, msg: "defines no such kernel function"},

		// Misbehaving checks: the action is denied (SPEC.md section 6).
		// Runaway guests stop on their fuel budget: the attacker's cpu_rate
		// (20ms, 20M fuel) is smaller than the host's check budget.
		{name: "infinite loop in check", module: "loop_check", by: govern, kind: kernel.KindDelete, cpu: 20_000, code: abi.OutOfFuel, msg: "budget of 20000000 fuel"},
		{name: "memory.grow bomb", module: "grow_bomb", by: govern, kind: kernel.KindWrite, code: abi.ContractFailed, msg: "memory limit"},
		{name: "memory beyond the caller's quota", module: "grow_allow", by: govern, memory: 1 << 20, code: abi.ContractFailed, msg: "the limit is 1048576"},
		{name: "stack exhaustion", module: "recurse", by: govern, kind: kernel.KindEdit, code: abi.ContractFailed, msg: "stack overflow"},
		{name: "unreachable", module: "trap", by: govern, code: abi.ContractFailed, msg: "unreachable"},
		{name: "kh_alloc returns 0", module: "alloc_zero", by: govern, code: abi.ContractFailed, msg: "kh_alloc"},
		{name: "kh_alloc outside memory", module: "alloc_oob", by: govern, code: abi.ContractFailed, msg: "kh_alloc"},
		{name: "decision pointer out of bounds", module: "decision_oob", by: govern, code: abi.ContractFailed, msg: "outside memory"},
		{name: "decision above the cap", module: "decision_big", by: govern, code: abi.ContractFailed, msg: "2000 bytes > 1308"},
		{name: "reason of megabytes", module: "reason_huge", by: govern, code: abi.ContractFailed, msg: "4194332 bytes > 1308"},
		{name: "reason length beyond the decision", module: "reason_huge", by: govern, kind: kernel.KindWrite, code: abi.ContractFailed, msg: "reason"},
		{name: "decision with bad magic", module: "bad_decision", by: govern, code: abi.ContractFailed, msg: "bad magic"},
		{name: "decision allowed byte 2", module: "bad_decision", by: govern, kind: kernel.KindWrite, code: abi.ContractFailed, msg: "allowed byte 2"},
		{name: "decision reserved byte set", module: "bad_decision", by: govern, kind: kernel.KindEdit, code: abi.ContractFailed, msg: "reserved byte 1"},
		{name: "decision version 2", module: "bad_decision", by: govern, kind: kernel.KindDelete, code: abi.ContractFailed, msg: "version 2"},
		{name: "decision with trailing byte", module: "bad_decision", by: govern, kind: kernel.KindInvoke, code: abi.ContractFailed, msg: "trailing"},
		{name: "decision payer too long", module: "bad_decision", by: govern, kind: kernel.KindSetContract, code: abi.ContractFailed, msg: "payer"},
		{name: "kernel call during a check", module: "kernel_in_check", by: govern, code: abi.PermissionDenied, msg: "kernel.call refused"},
		// A module of the wrong kind is refused at deploy: a contract must
		// export kh_check, an executable kh_invoke (SPEC.md section 8).
		{name: "executable deployed as a contract", module: "exe", by: deploy, code: abi.ContractInvalid, msg: "must export kh_check"},
		{name: "contract deployed as an executable", module: "trap", by: deploy, asExecutable: true, code: abi.ContractInvalid, msg: "must export kh_invoke"},

		// Payment: only consented payers, within caps and balance (SPEC.md
		// section 4; README "Consented payers only").
		{name: "payer who never consented", module: "pay_victim", by: govern, code: abi.PayerNotAuthorized, msg: "has not consented"},
		{name: "payer consent per-call cap", module: "pay_victim", by: govern, consent: &[2]int64{4, 100}, code: abi.PayerNotAuthorized, msg: "per-call cap 4"},
		{name: "payer consent total cap", module: "pay_victim", by: govern, consent: &[2]int64{10, 4}, code: abi.PayerNotAuthorized, msg: "what remains (4)"},
		{name: "consent to an earlier version", module: "trap", by: govern, consent: &[2]int64{100, 100}, rewrite: "pay_victim", code: abi.PayerNotAuthorized, msg: "other terms"},
		{name: "cost above the consenting payer's balance", module: "pay_victim", by: govern, consent: &[2]int64{100, 100}, code: abi.InsufficientFunds, msg: `payer "victim" has 3 scrip`},
		{name: "cost 2^64-1 paid by the caller", module: "cost_max", by: govern, code: abi.CostLimitExceeded, msg: "is 18446744073709551615 scrip, above the spending limit 100"},
		{name: "cost 2^64-1 paid by a consenting payer", module: "cost_max_victim", by: govern, consent: &[2]int64{math.MaxInt64, math.MaxInt64}, code: abi.PayerNotAuthorized, msg: "per-call cap"},
		{name: "payee who does not exist", module: "payee_ghost", by: govern, code: abi.ContractFailed, msg: `payee "ghost"`},

		// Executables (SPEC.md section 8).
		{name: "infinite loop in kh_invoke", by: invoke, method: "s", cpu: 300_000, code: abi.OutOfFuel, msg: "fuel"},
		// kh_alloc runs at initialisation, on its budget (issue 15): one
		// that burns 20M before it answers is refused at deploy, where it
		// used to run uncharged on every cold instance's first call.
		{name: "kh_alloc that loops", module: "alloc_burn", by: deploy, asExecutable: true, code: abi.ContractInvalid, msg: "initialisation ran out of fuel: kh_alloc"},
		{name: "trap after a transfer", by: invoke, method: "t", args: `{"action":{"kind":"transfer","to":"mallory","amount":5}}`, code: abi.ExecutionFailed, msg: "unreachable"},
		{name: "host call request outside memory", by: invoke, method: "o", code: abi.ExecutionFailed, msg: "outside memory"},
		{name: "host call output outside memory", by: invoke, method: "w", args: `{"query":"balance","principal":"victim"}`, code: abi.ExecutionFailed, msg: "outside memory"},
		{name: "host log outside memory", by: invoke, method: "l", code: abi.ExecutionFailed, msg: "outside memory"},
		{name: "host call flood", by: invoke, method: "f", args: `{"query":"balance","principal":"victim"}`, code: abi.ExecutionFailed, msg: "more than 10000 kernel calls"},
		{name: "as_self is refused", by: invoke, method: "c", args: `{"action":{"kind":"transfer","to":"mallory","amount":1},"as_self":true}`, code: abi.ExecutionFailed, msg: `"error_code":"INVALID_ARGUMENT"`},
		{name: "acting as a principal without its standing grant", by: invoke, method: "c", args: `{"action":{"kind":"transfer","to":"mallory","amount":1},"as":"victim"}`, code: abi.ExecutionFailed, msg: `"error_code":"NO_STANDING"`},
		{name: "acting as another principal", by: invoke, method: "c", args: `{"action":{"kind":"transfer","caller":"victim","to":"mallory","amount":1}}`, code: abi.ExecutionFailed, msg: `"error_code":"INVALID_ARGUMENT"`},
		{name: "setting created_by", by: invoke, method: "c", args: `{"action":{"kind":"edit","target":"x/exe","created_by":"mallory"}}`, code: abi.ExecutionFailed, msg: `"error_code":"IMMUTABLE_FIELD"`},
		// Every nested invocation reserves the invoke deadline (30s here)
		// of the payer's cpu_rate: the attacker has enough for the kernel's
		// depth limit to be what stops it.
		{name: "unbounded self-invocation", by: invoke, method: "r", cpu: 1_000_000_000, code: abi.ExecutionFailed, msg: "DEPTH_EXCEEDED"},
	}
}

// unmeteredCorpus are the runaway attacks for a host without fuel metering
// (host.Config.DisableMetering), where deadlines stop guests: the attacker's
// remaining cpu_rate for checks and invocations, InitTimeout at deploy.
func unmeteredCorpus() []attack {
	return []attack{
		{name: "infinite loop in start function", module: "loop_start", by: deploy, code: abi.ContractInvalid, msg: "ran past its 500ms deadline"},
		{name: "infinite loop in _initialize", module: "loop_init", by: deploy, code: abi.ContractInvalid, msg: "ran past its 500ms deadline"},
		{name: "random_get loop in start function", module: "random_start", by: deploy, code: abi.ContractInvalid, msg: "ran past its 500ms deadline"},
		{name: "random_get loop in _initialize", module: "random_init", by: deploy, code: abi.ContractInvalid, msg: "ran past its 500ms deadline"},
		{name: "infinite loop in check", module: "loop_check", by: govern, cpu: 20_000, code: abi.ContractTimeout, msg: "kh_check ran past its 20ms deadline"},
		{name: "infinite loop in kh_invoke", by: invoke, method: "s", cpu: 300_000, code: abi.ContractTimeout, msg: "kh_invoke ran past its"},
		{name: "host call flood", by: invoke, method: "f", args: `{"query":"balance","principal":"victim"}`, code: abi.ExecutionFailed, msg: "more than 10000 kernel calls"},
	}
}

// readModule returns testdata/<name>.wasm.
func readModule(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	require.NoError(t, err)
	return b
}

// world is a kernel with the real host on an in-memory store.
type world struct {
	k  *kernel.Kernel
	h  *host.Host
	st store.Store
}

// newWorld opens the corpus world: principals, the freeware contract (which
// governs itself and is the default), the hostile executable exeID and the
// background artifact "bg/doc". Deadlines are generous (the CI machine is 2
// slow cores under -race): where a deadline is the attack, the attacker's
// cpu_rate quota sets it. The clock is fixed, so that repeated actions send
// identical requests.
func newWorld(t *testing.T, metered bool) *world {
	t.Helper()
	h, err := host.New(ctx, host.Config{
		Timeout:               30 * time.Second,
		InvokeTimeout:         30 * time.Second,
		InitTimeout:           500 * time.Millisecond, // the attack of the unmetered initialisation loops
		DisableMetering:       !metered,
		MaxInstancesPerModule: maxInstances,
		// Enough for every module of the corpus (reason_huge declares 5
		// MiB); small, so that the memory.grow bomb reaches it quickly.
		MemoryLimitBytes: 16 << 20,
	})
	require.NoError(t, err)
	st := store.NewMem()
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: h, Clock: kerneltest.NewClock(kerneltest.Start).Now,
		DefaultContract: freeware, ContractTimeout: 30 * time.Second, InvokeTimeout: 30 * time.Second,
	})
	require.NoError(t, err)
	w := &world{k: k, h: h, st: st}
	for id, bal := range map[string]uint64{root: 0, victim: victimBalance, mallory: 0, alice: 1000, bob: 1000} {
		require.NoError(t, k.CreatePrincipal(ctx, id, bal))
	}
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: freeware, Type: kernel.TypeContract, Contract: freeware, Content: genesis.Contracts()[genesis.Freeware]})
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: exeID, Type: kernel.TypeExecutable, Content: readModule(t, "exe")})
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: "bg/doc", Type: "data", Content: []byte("shared")})
	return w
}

// close closes the kernel, the host and the store, in that order.
func (w *world) close(t *testing.T) {
	t.Helper()
	require.NoError(t, w.k.Close(ctx))
	require.NoError(t, w.h.Close(ctx))
	require.NoError(t, w.st.Close())
}

func (w *world) ok(t *testing.T, a kernel.Action) kernel.Result {
	t.Helper()
	res := w.k.Do(ctx, a)
	require.True(t, res.OK, "%s %s by %s: %s %s", a.Kind, a.Target, a.Caller, res.ErrorCode, res.Message)
	return res
}

// snapshot is what no denied action may change.
type snapshot struct {
	Balances   map[string]uint64 // principals but the background ones
	Background uint64            // sum of the background principals' balances
	Totals     kernel.Totals
	Quotas     map[kernel.Resource]int64
	Stored     map[string]int64 // disk and llm_budget used, per principal but the background ones
	Artifacts  []string
	Consents   map[string]kernel.Grant
}

func (w *world) snapshot(t *testing.T, consents ...string) snapshot {
	t.Helper()
	s := snapshot{Balances: map[string]uint64{}, Stored: map[string]int64{}, Consents: map[string]kernel.Grant{}}
	ps, err := w.k.Principals(ctx)
	require.NoError(t, err)
	for _, p := range ps {
		if background[p.ID] {
			s.Background += p.Balance
			continue
		}
		s.Balances[p.ID] = p.Balance
		qs, err := w.k.Quotas(ctx, p.ID)
		require.NoError(t, err)
		for _, q := range qs {
			if q.Resource == kernel.Disk || q.Resource == kernel.LLMBudget {
				s.Stored[p.ID+" "+string(q.Resource)] = q.Used
			}
		}
	}
	s.Totals, err = w.k.Totals(ctx)
	require.NoError(t, err)
	s.Quotas, err = w.k.QuotaTotals(ctx)
	require.NoError(t, err)
	s.Artifacts, err = w.k.ArtifactIDs(ctx)
	require.NoError(t, err)
	for _, c := range consents {
		g, err := w.k.Consent(ctx, victim, c)
		require.NoError(t, err)
		s.Consents[c] = g
	}
	return s
}

// event waits (boundedly: concurrent actions hold the watermark back) for the
// audit event seq and returns it.
func (w *world) event(t *testing.T, seq uint64) kernel.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := w.k.Events(ctx, seq-1, 1)
		require.NoError(t, err)
		if len(evs) == 1 {
			require.Equal(t, seq, evs[0].Seq)
			return evs[0]
		}
		require.True(t, time.Now().Before(deadline), "event %d never became visible", seq)
		time.Sleep(time.Millisecond)
	}
}

// lastEventOf returns the number of the last event of caller's actions of
// kind, 0 if there is none.
func (w *world) lastEventOf(t *testing.T, caller string, kind kernel.Kind) uint64 {
	t.Helper()
	var last, since uint64
	for {
		evs, err := w.k.Events(ctx, since, 1000)
		require.NoError(t, err)
		if len(evs) == 0 {
			return last
		}
		for _, ev := range evs {
			if ev.Caller == caller && ev.Kind == kind {
				last = ev.Seq
			}
		}
		since = evs[len(evs)-1].Seq
	}
}

// prepare sets up attack a for principal attacker and returns the action
// that delivers it, and the contracts the victim consented to.
func (w *world) prepare(t *testing.T, a attack, attacker string) (kernel.Action, []string) {
	t.Helper()
	require.NoError(t, w.k.CreatePrincipal(ctx, attacker, attackerBalance))
	if a.cpu > 0 {
		require.NoError(t, w.k.SetQuota(ctx, attacker, kernel.CPURate, a.cpu))
		// Setting up an attack uses cpu_rate (deploying a module costs
		// its compile charge): the attack itself gets exactly a.cpu.
		defer func() {
			s, err := w.k.QuotaStatus(ctx, attacker, kernel.CPURate)
			require.NoError(t, err)
			require.NoError(t, w.k.SetQuota(ctx, attacker, kernel.CPURate, a.cpu+s.Used))
		}()
	}
	if a.memory > 0 {
		require.NoError(t, w.k.SetQuota(ctx, attacker, kernel.Memory, a.memory))
	}
	var code []byte
	if a.module != "" {
		code = readModule(t, a.module)
	}
	if a.content != nil {
		code = a.content
	}
	contract := "c/" + attacker
	switch a.by {
	case deploy:
		typ := kernel.TypeContract
		if a.asExecutable {
			typ = kernel.TypeExecutable
		}
		return kernel.Action{Kind: kernel.KindWrite, Caller: attacker, Target: contract, Type: typ, Content: code}, nil
	case invoke:
		return kernel.Action{Kind: kernel.KindInvoke, Caller: attacker, Target: exeID, Method: a.method, Args: []byte(a.args)}, nil
	}
	target := "d/" + attacker
	if a.asExecutable {
		w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: attacker, Target: target, Type: kernel.TypeExecutable, Content: code})
		return kernel.Action{Kind: kernel.KindInvoke, Caller: attacker, Target: target}, nil
	}
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: attacker, Target: contract, Type: kernel.TypeContract, Content: code})
	var consents []string
	if a.consent != nil {
		w.ok(t, kernel.Action{Kind: kernel.KindGrantConsent, Caller: victim, Contract: contract, PerCallCap: a.consent[0], TotalCap: a.consent[1]})
		consents = append(consents, contract)
	}
	if a.rewrite != "" {
		w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: attacker, Target: contract, Content: readModule(t, a.rewrite)})
	}
	kind := a.kind
	if kind == "" {
		kind = kernel.KindRead
	}
	if kind == kernel.KindInvoke {
		w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: attacker, Target: target, Type: kernel.TypeExecutable, Contract: contract, Content: readModule(t, "exe")})
	} else {
		w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: attacker, Target: target, Type: "data", Contract: contract, Content: []byte("x")})
	}
	act := kernel.Action{Kind: kind, Caller: attacker, Target: target}
	switch kind {
	case kernel.KindWrite:
		act.Content = []byte("y")
	case kernel.KindEdit:
		act.Metadata = map[string]string{"k": "v"}
	case kernel.KindSetContract:
		act.Contract = freeware
	}
	return act, consents
}

// backgroundLoad runs actions of the background principals with the benign
// contract until stop is closed: reads of "bg/doc", writes of each one's own
// artifact and transfers between them. It returns how many actions ran and
// the failures.
func (w *world) backgroundLoad(stop <-chan struct{}) (n int, failures []string) {
	do := func(a kernel.Action) {
		n++
		if res := w.k.Do(ctx, a); !res.OK {
			failures = append(failures, fmt.Sprintf("%s %s by %s: %s %s", a.Kind, a.Target, a.Caller, res.ErrorCode, res.Message))
		}
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return n, failures
		default:
		}
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		do(kernel.Action{Kind: kernel.KindRead, Caller: from, Target: "bg/doc"})
		do(kernel.Action{Kind: kernel.KindWrite, Caller: from, Target: "bg/" + from, Type: "data", Content: []byte{byte(i)}})
		do(kernel.Action{Kind: kernel.KindTransfer, Caller: from, To: to, Amount: 1})
		time.Sleep(time.Millisecond) // leave the 2-core CI machine to the corpus
	}
}

// TestCorpus deploys every attack of the corpus through kernel.Do with the
// real host, while background principals keep acting. Each attack must be
// denied or rejected with its documented code and change no balance, quota,
// consent or artifact; the ledger must balance after each. Then the pools
// must be bounded and, once kernel, host and store are closed, the
// goroutines back to their number before the world.
//
// Reference: abi/SPEC.md sections 1, 4, 6, 7 and 8.
func TestCorpus(t *testing.T) { runCorpus(t, true, corpus()) }

// TestCorpus_unmetered runs the runaway attacks on a host without fuel
// metering, where deadlines stop them, as TestCorpus does.
//
// Reference: abi/SPEC.md sections 1, 6 and 8.
func TestCorpus_unmetered(t *testing.T) { runCorpus(t, false, unmeteredCorpus()) }

// runCorpus runs attacks on a new world (see TestCorpus).
func runCorpus(t *testing.T, metered bool, attacks []attack) {
	baseline := runtime.NumGoroutine()
	w := newWorld(t, metered)
	closed := false
	t.Cleanup(func() {
		if !closed {
			w.close(t)
		}
	})
	// The background principals' own artifacts exist before any snapshot.
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: alice, Target: "bg/" + alice, Type: "data", Content: []byte{0}})
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: bob, Target: "bg/" + bob, Type: "data", Content: []byte{0}})

	stop := make(chan struct{})
	var (
		bgWG       sync.WaitGroup
		bgN        int
		bgFailures []string
	)
	bgWG.Add(1)
	go func() {
		defer bgWG.Done()
		bgN, bgFailures = w.backgroundLoad(stop)
	}()
	stopBackground := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		bgWG.Wait()
	}
	t.Cleanup(stopBackground)

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			attacker := "m-" + strings.ReplaceAll(a.name, " ", "-")
			attacker = strings.NewReplacer("'", "", "^", "", "_", "-").Replace(attacker)
			act, consents := w.prepare(t, a, attacker)
			before := w.snapshot(t, consents...)
			start := time.Now()
			res := w.k.Do(ctx, act)
			took := time.Since(start)
			require.False(t, res.OK, "the attack succeeded: %+v", res)
			require.Equal(t, a.code, res.Code, "%s: %s", res.ErrorCode, res.Message)
			require.Equal(t, a.code.String(), res.ErrorCode)
			require.Contains(t, res.Message, a.msg)
			require.Empty(t, res.Charges)
			after := w.snapshot(t, consents...)
			require.Equal(t, before, after, "the denied action changed the world")
			require.NoError(t, w.k.CheckLedger(ctx))
			seq := res.Event
			if seq == 0 && act.Kind == kernel.KindRead {
				// A read's result carries no number: its event is
				// numbered when the committer writes it.
				seq = w.lastEventOf(t, attacker, act.Kind)
			}
			if seq != 0 {
				ev := w.event(t, seq)
				require.Equal(t, a.code.String(), ev.Code)
				require.Equal(t, attacker, ev.Caller)
				require.Empty(t, ev.Charges)
			} else {
				// Only rejections before any transaction leave no event.
				require.Equal(t, deploy, a.by, "no audit event for a denied %s", act.Kind)
			}
			t.Logf("%s -> %s in %v: %.200s", a.name, res.ErrorCode, took.Round(time.Millisecond), res.Message)
		})
	}

	t.Run("nondeterminism attempt", func(t *testing.T) {
		testFlip(t, w)
	})

	stopBackground()
	require.Empty(t, bgFailures, "background actions failed during the corpus")
	require.Greater(t, bgN, 0)
	t.Logf("background: %d actions, all succeeded", bgN)

	stats := w.h.Stats()
	require.NotEmpty(t, stats.Modules)
	for hash, m := range stats.Modules {
		require.LessOrEqual(t, m.Live, maxInstances, "module %x", hash[:4])
		require.LessOrEqual(t, m.Idle, m.Live, "module %x", hash[:4])
	}

	closed = true
	w.close(t)
	requireGoroutines(t, baseline)
}

// testFlip deploys flip.wasm, which decides on a bit of random_get and the
// clocks, and checks that 50 identical reads, from 5 goroutines (so from
// several pooled instances), all get the same answer.
//
// Reference: abi/SPEC.md section 7.
func testFlip(t *testing.T, w *world) {
	const reader = "d-reader"
	require.NoError(t, w.k.CreatePrincipal(ctx, reader, 0))
	// Each run reserves up to the world's ContractTimeout (30 s) of
	// cpu_rate: five concurrent readers need room for five reservations,
	// or a read that overlaps another is refused with QUOTA_EXCEEDED.
	require.NoError(t, w.k.SetQuota(ctx, reader, kernel.CPURate, 6*30_000_000))
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: reader, Target: "c/flip", Type: kernel.TypeContract, Content: readModule(t, "flip")})
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: reader, Target: "d/flip", Type: "data", Contract: "c/flip", Content: []byte("coin")})
	before := w.snapshot(t)
	const goroutines, each = 5, 10
	results := make([]kernel.Result, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				results[g*each+i] = w.k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: reader, Target: "d/flip"})
			}
		}()
	}
	wg.Wait()
	first := results[0]
	require.NotNil(t, first.Decision, "%s %s", first.ErrorCode, first.Message)
	for i, res := range results {
		require.Equal(t, first.Code, res.Code, "call %d: %s", i, res.Message)
		require.NotNil(t, res.Decision, "call %d: %s", i, res.Message)
		require.Equal(t, *first.Decision, *res.Decision, "call %d decided differently", i)
	}
	require.Equal(t, before, w.snapshot(t))
	require.NoError(t, w.k.CheckLedger(ctx))
	t.Logf("flip decided allowed=%v on all %d calls", first.Decision.Allowed, len(results))
}

// requireGoroutines waits (boundedly) for the number of goroutines to fall to
// baseline, and fails with every goroutine's stack if it does not.
func requireGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines after closing, %d before the world:\n%s", runtime.NumGoroutine(), baseline, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
