package kernel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// priced is a contract that allows everything and charges what its own
// configuration (the contract artifact's metadata) says: "price" scrip, to
// "payee" (burned when unset), paid by "payer" (the caller when unset).
func priced(req *abi.Request) (abi.Decision, error) {
	d := abi.Decision{Allowed: true}
	for _, kv := range req.Config {
		switch kv.Key {
		case "price":
			d.Cost, _ = strconv.ParseUint(kv.Value, 10, 64)
		case "payee":
			d.Payee = kv.Value
		case "payer":
			d.Payer = kv.Value
		}
	}
	return d, nil
}

// pricedWorld has owner (controls the contract "priced" and the document
// "doc" it governs), alice with 1000 scrip, and the given config.
func pricedWorld(t *testing.T, config map[string]string) *kerneltest.World {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "owner", 0)
	w.Principal(t, "alice", 1000)
	w.Deploy(t, "owner", "priced", "freeware", priced)
	if len(config) > 0 {
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "owner", Target: "priced", Metadata: config}))
	}
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "owner", Target: "doc", Type: "data", Contract: "priced", Content: []byte("x")}))
	return w
}

func maxCost(n int64) *int64 { return &n }

func setPrice(t *testing.T, w *kerneltest.World, price string) {
	t.Helper()
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "owner", Target: "priced", Metadata: map[string]string{"price": price}}))
}

// TestCallerSpendingLimit: a caller pays at most its max_cost, or its
// default spending limit, for an action; a price above it, including one
// raised between the caller's look and its action, is COST_LIMIT_EXCEEDED
// (not retriable) and charges nothing.
func TestCallerSpendingLimit(t *testing.T) {
	w := pricedWorld(t, map[string]string{"price": "50", "payee": "owner"})
	read := func(max *int64) kernel.Result {
		return w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc", MaxCost: max})
	}

	// alice looks: the price is 50, within her default limit (100).
	ex, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"})
	require.NoError(t, err)
	require.Equal(t, uint64(50), ex.Decision.Cost)
	requireCode(t, abi.OK, read(maxCost(50)))
	require.Equal(t, uint64(950), w.Balance(t, "alice"))

	// The owner raises the price to 900 before alice's next read, which
	// says what she agreed to: denied, nothing charged.
	setPrice(t, w, "900")
	before := snapshotBut(t, w.Store, "e/")
	res := read(maxCost(50))
	requireCode(t, abi.CostLimitExceeded, res)
	require.False(t, res.Retriable)
	require.Contains(t, res.Message, "900")
	require.Contains(t, res.Message, "max_cost 50")
	require.Empty(t, res.Charges)
	require.Equal(t, before, snapshotBut(t, w.Store, "e/"), "only the audit event is new")

	// Without max_cost the default limit (100) holds.
	res = read(nil)
	requireCode(t, abi.CostLimitExceeded, res)
	require.Contains(t, res.Message, "spending limit 100")
	require.Equal(t, uint64(950), w.Balance(t, "alice"))

	// alice raises her own default; then the read goes through.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindSetSpendingLimit, Caller: "alice", Amount: 1000}))
	requireCode(t, abi.OK, read(nil))
	require.Equal(t, uint64(50), w.Balance(t, "alice"))
	require.Equal(t, uint64(950), w.Balance(t, "owner"))

	// A limit of 0 pays for nothing, but free actions still work.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindSetSpendingLimit, Caller: "alice"}))
	requireCode(t, abi.CostLimitExceeded, read(nil))
	setPrice(t, w, "0")
	requireCode(t, abi.OK, read(maxCost(0)))

	// A negative max_cost is malformed.
	requireCode(t, abi.InvalidArgument, read(maxCost(-1)))
	_, err = kernel.DecodeAction([]byte(`{"kind":"read","target":"doc","max_cost":-1}`))
	if err == nil {
		requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc", MaxCost: maxCost(-1)}))
	}
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestCallerSpendingLimitCoversInvocation: what an invocation tree debits
// from its caller (its decisions' prices and transfers made as the caller)
// stays within the invoke's limit; the step that would pass it fails and the
// whole invocation rolls back.
func TestCallerSpendingLimitCoversInvocation(t *testing.T) {
	w := pricedWorld(t, map[string]string{"price": "30", "payee": "owner"})
	w.DeployExecutable(t, "owner", "drain", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		for _, hc := range []map[string]any{
			act(map[string]any{"kind": "read", "target": "doc"}),
			act(map[string]any{"kind": "transfer", "to": "owner", "amount": 60}),
		} {
			if r := call(calls, hc); r["ok"] != true {
				return abi.InvokeResult{Output: []byte(fmt.Sprint(r["error_code"], ": ", r["message"]))}, nil
			}
		}
		return abi.InvokeResult{OK: true}, nil
	})
	inv := func(max *int64) kernel.Result {
		return w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "drain", MaxCost: max})
	}
	res := inv(nil) // 30 + 60 = 90: within the default 100
	requireCode(t, abi.OK, res)
	require.Equal(t, uint64(910), w.Balance(t, "alice"))

	res = inv(maxCost(80)) // the transfer would take the tree to 90
	requireCode(t, abi.ExecutionFailed, res)
	require.Contains(t, res.Message, "COST_LIMIT_EXCEEDED")
	require.Contains(t, res.Message, "50 left")
	require.Equal(t, uint64(910), w.Balance(t, "alice"), "rolled back")

	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindSetSpendingLimit, Caller: "alice", Amount: 89}))
	requireCode(t, abi.ExecutionFailed, inv(nil))
	requireCode(t, abi.OK, inv(maxCost(90)))
	require.Equal(t, uint64(820), w.Balance(t, "alice"))
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestConsentVoidedByConfigChange replays the examples/c-contract attack: a
// sponsor consents to a contract that charges 1, burned; its controller
// edits the contract's metadata to charge 50 to herself. The consent was to
// the contract's terms (code and configuration): it no longer covers it.
func TestConsentVoidedByConfigChange(t *testing.T) {
	w := pricedWorld(t, map[string]string{"price": "1", "payer": "sponsor"})
	w.Principal(t, "sponsor", 100)
	w.Principal(t, "mallory", 0)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "priced", PerCallCap: 100, TotalCap: 100}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}))
	require.Equal(t, uint64(99), w.Balance(t, "sponsor"))

	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "owner", Target: "priced", Metadata: map[string]string{"price": "50", "payee": "mallory"}}))
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"})
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Contains(t, res.Message, "other terms")
	require.Equal(t, uint64(99), w.Balance(t, "sponsor"))
	require.Equal(t, uint64(0), w.Balance(t, "mallory"))

	// Editing it back restores the terms the sponsor agreed to.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "owner", Target: "priced", Metadata: map[string]string{"price": "1"}, Unset: []string{"payee"}}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}))
	require.Equal(t, uint64(98), w.Balance(t, "sponsor"))

	// A consent given to the new terms covers them.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "owner", Target: "priced", Metadata: map[string]string{"price": "5"}}))
	requireCode(t, abi.PayerNotAuthorized, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "priced", PerCallCap: 5, TotalCap: 10}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}))
	require.Equal(t, uint64(93), w.Balance(t, "sponsor"))
	g, err := w.K.Consent(ctx, "sponsor", "priced")
	require.NoError(t, err)
	require.Len(t, g.Terms, 64)
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestSponsorCPUBounded: a sponsor that consented to pay an executable's
// invoke price lends nothing else: the invocation's CPU comes from the
// caller's cpu_rate, and a failing invocation rolls the sponsor's charge
// back completely.
func TestSponsorCPUBounded(t *testing.T) {
	w := pricedWorld(t, map[string]string{"price": "1", "payer": "sponsor"})
	w.Principal(t, "sponsor", 100)
	w.Principal(t, "mallory", 0)
	spin := func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		if req.Method == "fail" {
			return abi.InvokeResult{}, errors.New("trap")
		}
		return abi.InvokeResult{OK: true}, nil
	}
	w.DeployExecutable(t, "owner", "spin", "priced", spin)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "priced", PerCallCap: 1, TotalCap: 1}))
	cpu := func(id string) int64 {
		t.Helper()
		s, err := w.K.QuotaStatus(ctx, id, kernel.CPURate)
		require.NoError(t, err)
		return s.Used
	}
	sponsor0, mallory0 := cpu("sponsor"), cpu("mallory")

	requireCode(t, abi.ExecutionFailed, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "mallory", Target: "spin", Method: "fail"}))
	require.Equal(t, uint64(100), w.Balance(t, "sponsor"), "the failed invocation's price is rolled back")
	g, err := w.K.Consent(ctx, "sponsor", "priced")
	require.NoError(t, err)
	require.Zero(t, g.Spent)

	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "mallory", Target: "spin"}))
	require.Equal(t, uint64(99), w.Balance(t, "sponsor"))
	// The consent is spent: the next invoke cannot name the sponsor.
	requireCode(t, abi.PayerNotAuthorized, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "mallory", Target: "spin"}))

	require.Equal(t, sponsor0, cpu("sponsor"), "the sponsor's cpu_rate is never used")
	require.Greater(t, cpu("mallory"), mallory0, "the caller's cpu_rate pays for the runs")
	require.NoError(t, w.K.CheckLedger(ctx))
}

// conflictStore makes the next n Updates that would commit fail with
// ErrConflict instead, as a concurrent writer would.
type conflictStore struct {
	store.Store
	n atomic.Int32
}

func (s *conflictStore) Update(fn func(store.Txn) error) error {
	if s.n.Load() <= 0 {
		return s.Store.Update(fn)
	}
	if err := s.Store.View(func(tx store.Txn) error { return fn(readOnly{tx}) }); err != nil {
		return err
	}
	s.n.Add(-1)
	return fmt.Errorf("injected: %w", store.ErrConflict)
}

// readOnly lets an attempt run its writes against a snapshot that is then
// dropped (a conflicting transaction's writes never land).
type readOnly struct{ store.Txn }

func (readOnly) Set(_, _ []byte) error { return nil }
func (readOnly) Delete([]byte) error   { return nil }

// TestConflictRetriesNotBilled: an action whose transaction is retried after
// conflicts pays for its contract's run once: the retry reuses the decision
// of the identical request instead of running (and billing) the contract
// again.
func TestConflictRetriesNotBilled(t *testing.T) {
	var cs *conflictStore
	w := kerneltest.NewWorld(t, func(c *kernel.Config) {
		cs = &conflictStore{Store: c.Store}
		c.Store = cs
	})
	w.Principal(t, "alice", 0)
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
	cpu0, err := w.K.QuotaStatus(ctx, "alice", kernel.CPURate)
	require.NoError(t, err)
	calls0 := w.Eval.Calls()

	// A write: reads run on a snapshot and commit nothing, so they never
	// conflict.
	cs.n.Store(5)
	res := w.Do(write("alice", "doc", "y", nil))
	requireCode(t, abi.OK, res)
	require.Zero(t, cs.n.Load(), "five attempts conflicted")
	require.Equal(t, calls0+1, w.Eval.Calls(), "the contract ran once")
	cpu1, err := w.K.QuotaStatus(ctx, "alice", kernel.CPURate)
	require.NoError(t, err)
	require.Equal(t, int64(1), cpu1.Used-cpu0.Used, "billed once (1µs)")
	evs, err := w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	require.Equal(t, int64(1), evs[len(evs)-1].CPU, "the event records the one charge")

	// More conflicts than retries: CONFLICT, still billed once.
	cs.n.Store(1000)
	res = w.Do(write("alice", "doc", "z", nil))
	requireCode(t, abi.Conflict, res)
	require.Equal(t, calls0+2, w.Eval.Calls())
	cpu2, err := w.K.QuotaStatus(ctx, "alice", kernel.CPURate)
	require.NoError(t, err)
	require.Equal(t, int64(1), cpu2.Used-cpu1.Used)
	cs.n.Store(0)
}

// TestKernelCallLimitPerTree: the 10,000 kernel calls of an invocation are
// counted over its whole tree, not per level: a parent and a nested child
// of 6,000 calls each cannot together make 12,000.
func TestKernelCallLimitPerTree(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 10)
	var made atomic.Int64
	w.DeployExecutable(t, "alice", "nest", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		for i := 0; i < 6000; i++ {
			r := call(calls, map[string]any{"query": "balance", "principal": "alice"})
			if r["ok"] != true {
				return abi.InvokeResult{Output: []byte(fmt.Sprint(r["message"]))}, nil
			}
			made.Add(1)
		}
		if req.Method == "parent" {
			if r := call(calls, act(map[string]any{"kind": "invoke", "target": "nest", "method": "child"})); r["ok"] != true {
				return abi.InvokeResult{Output: []byte(fmt.Sprint(r["message"]))}, nil
			}
		}
		return abi.InvokeResult{OK: true}, nil
	})
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "nest", Method: "child"}))
	made.Store(0)
	res := w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "nest", Method: "parent"})
	requireCode(t, abi.ExecutionFailed, res)
	require.Contains(t, res.Message, "more than 10000 kernel calls")
	require.Equal(t, int64(9999), made.Load(), "6000 + 3999 queries, then the child's invoke made the 6001st call")
}

// TestRejectedModuleWritesDoNotGrow (kernel side): a module write that the
// kernel refuses before authority (unknown caller, a contract that denies
// the write, too little disk or cpu_rate) never reaches the Evaluator's
// Prepare, so no module is compiled, cached or instantiated for it. The
// real host's heap and module count are checked in internal/hostile.
func TestRejectedModuleWritesDoNotGrow(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "mallory", 0)
	w.Deploy(t, "alice", "c/alice", "private", kerneltest.AllowAll)
	require.NoError(t, w.K.SetQuota(ctx, "mallory", kernel.Disk, 10))
	p0 := w.Eval.Prepares()
	mod := func(i int) []byte { return []byte(fmt.Sprintf("fake:module-%04d-%s", i, "padding-for-disk")) }
	for i := 0; i < 300; i++ {
		w.Eval.Register(mod(i), kerneltest.AllowAll)
		for _, tc := range []struct {
			a    kernel.Action
			code abi.Code
		}{
			{kernel.Action{Kind: kernel.KindWrite, Caller: "nobody", Target: fmt.Sprintf("n/%d", i), Type: kernel.TypeContract, Content: mod(i)}, abi.NotFound},
			{kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "c/alice", Content: mod(i)}, abi.PermissionDenied},
			{kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: fmt.Sprintf("m/%d", i), Type: kernel.TypeContract, Content: mod(i)}, abi.QuotaExceeded},
		} {
			res := w.Do(tc.a)
			require.Equal(t, tc.code, res.Code, res.Message)
		}
	}
	require.Equal(t, p0, w.Eval.Prepares(), "nothing was compiled for a refused write")

	// With disk but no cpu_rate for the compile charge: refused, not compiled.
	require.NoError(t, w.K.SetQuota(ctx, "mallory", kernel.Disk, 1<<20))
	require.NoError(t, w.K.SetQuota(ctx, "mallory", kernel.CPURate, 0))
	res := w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "m/x", Type: kernel.TypeContract, Content: mod(0)})
	require.Equal(t, abi.QuotaExceeded, res.Code, res.Message)
	require.Equal(t, "cpu_rate", res.Resource)
	require.Equal(t, p0, w.Eval.Prepares())

	// An accepted write compiles once and is charged for it (250µs per KiB,
	// rounded up), on top of what mallory's denied writes cost her (each
	// ran the contract that denied it).
	compile := (int64(len(mod(0)))*250 + 1023) / 1024
	require.NoError(t, w.K.SetQuota(ctx, "mallory", kernel.CPURate, 1_000_000))
	used := func() int64 {
		s, err := w.K.QuotaStatus(ctx, "mallory", kernel.CPURate)
		require.NoError(t, err)
		return s.Used
	}
	u0 := used()
	res = w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "m/x", Type: kernel.TypeContract, Content: mod(0)})
	requireCode(t, abi.OK, res)
	require.Equal(t, p0+1, w.Eval.Prepares())
	require.Equal(t, u0+compile, used(), "the compile charge of a %d-byte module", len(mod(0)))

	// A module that does not compile is charged too, and recorded.
	res = w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "m/bad", Type: kernel.TypeContract, Content: []byte("not a module")})
	requireCode(t, abi.ContractInvalid, res)
	require.NotZero(t, res.Event, "an attributable failure has an audit event")
	require.Equal(t, u0+compile+(12*250+1023)/1024, used())
}

// snapshotBut is the store's contents without the keys under prefix.
func snapshotBut(t *testing.T, st store.Store, prefix string) map[string]string {
	t.Helper()
	out := snapshot(t, st)
	for k := range out {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(out, k)
		}
	}
	return out
}

// TestHostCallEnvelopeStrict: a host call's envelope is decoded as strictly
// as an action: "as" given twice (one reader could take the first, another
// the last), in another case, or an unknown field, is INVALID_ARGUMENT, and
// nothing moves.
func TestHostCallEnvelopeStrict(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 50)
	w.Principal(t, "vault", 500)
	var got []string
	w.DeployExecutable(t, "alice", "probe", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		got = got[:0]
		for _, raw := range []string{
			`{"action":{"kind":"transfer","to":"alice","amount":5},"as":"alice","as":"vault"}`,
			`{"action":{"kind":"transfer","to":"alice","amount":5},"AS":"vault"}`,
			`{"action":{"kind":"transfer","to":"alice","amount":5},"as":"vault","sudo":true}`,
			`{"query":"balance","principal":"vault","principal":"alice"}`,
		} {
			var r map[string]any
			if err := json.Unmarshal(calls.Call([]byte(raw)), &r); err != nil {
				return abi.InvokeResult{}, err
			}
			got = append(got, fmt.Sprint(r["error_code"]))
		}
		return abi.InvokeResult{OK: true}, nil
	})
	w.GrantStanding(t, "vault", "probe")
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "probe"}))
	require.Equal(t, []string{"INVALID_ARGUMENT", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "INVALID_ARGUMENT"}, got)
	require.Equal(t, uint64(500), w.Balance(t, "vault"))
	require.Equal(t, uint64(50), w.Balance(t, "alice"))
}

// TestExecutableCannotGrantAuthority: an executable acts for its invoker,
// but it cannot hand out the invoker's authority to act later: a grant of
// standing (another executable could then act as the invoker whenever it
// likes), of consent (a contract could then charge the invoker), of LLM
// consent, or a new spending limit, made by an executable as its invoker
// (or as a principal whose standing it holds) is PERMISSION_DENIED and
// stores nothing. Before, a victim who invoked a "useful" executable once
// could be left with a standing grant to the attacker's executable.
func TestExecutableCannotGrantAuthority(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "victim", 500)
	w.Principal(t, "mallory", 50)
	w.Principal(t, "vault", 500)
	w.Deploy(t, "mallory", "m-toll", "private", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{Allowed: true, Cost: 400, Payer: "victim", Payee: "mallory"}, nil
	})
	w.DeployExecutable(t, "mallory", "m-rider", "allow-all", func(*abi.Request, abi.HostCalls) (abi.InvokeResult, error) {
		return abi.InvokeResult{OK: true}, nil
	})
	var got []string
	w.DeployExecutable(t, "mallory", "m-service", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		got = got[:0]
		for _, raw := range []string{
			`{"action":{"kind":"grant_standing","target":"m-rider"}}`,
			`{"action":{"kind":"grant_consent","contract":"m-toll","per_call_cap":1000,"total_cap":100000}}`,
			`{"action":{"kind":"grant_llm_consent","to":"mallory","per_call_cap":1000,"total_cap":100000,"amount":100000}}`,
			`{"action":{"kind":"set_spending_limit","amount":100000}}`,
			`{"action":{"kind":"grant_standing","target":"m-rider"},"as":"vault"}`,
		} {
			var r map[string]any
			if err := json.Unmarshal(calls.Call([]byte(raw)), &r); err != nil {
				return abi.InvokeResult{}, err
			}
			got = append(got, fmt.Sprint(r["error_code"]))
		}
		return abi.InvokeResult{OK: true}, nil
	})
	w.GrantStanding(t, "vault", "m-service")
	before := snapshotBut(t, w.Store, "e/")
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "victim", Target: "m-service"}))
	require.Equal(t, []string{"PERMISSION_DENIED", "PERMISSION_DENIED", "PERMISSION_DENIED", "PERMISSION_DENIED", "PERMISSION_DENIED"}, got)
	require.Equal(t, before, snapshotBut(t, w.Store, "e/"), "no grant, no limit stored")
	_, err := w.K.Consent(ctx, "victim", "m-toll")
	require.Error(t, err)
	// The victim can still grant itself, at the top level.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindSetSpendingLimit, Caller: "victim", Amount: 5}))
}
