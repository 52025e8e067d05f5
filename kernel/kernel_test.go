package kernel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

var ctx = context.Background()

// snapshot returns every key and value in st except the audit trail (events
// and the last event number) and rate-window usage (which every contract
// run adds to, allowed or not), so a test can assert that a failed action
// changed nothing.
func snapshot(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, st.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error {
			if !strings.HasPrefix(string(k), "e/") && string(k) != "l/seq" && !strings.HasPrefix(string(k), "w/") {
				out[string(k)] = string(v)
			}
			return nil
		})
	}))
	return out
}

func write(caller, id string, content string, meta map[string]string) kernel.Action {
	return kernel.Action{Kind: kernel.KindWrite, Caller: caller, Target: id, Type: "data", Content: []byte(content), Metadata: meta}
}

func requireCode(t *testing.T, want abi.Code, res kernel.Result) {
	t.Helper()
	require.Equal(t, want.String(), res.Code.String(), "message: %s", res.Message)
	require.Equal(t, want == abi.OK, res.OK)
	if want != abi.OK {
		require.Equal(t, want.String(), res.ErrorCode)
		require.Equal(t, want.Category(), res.Category)
		if want == abi.QuotaExceeded {
			// Retriable only when waiting helps, and then it says how long
			// (TestQuotaExceededRetriableOnlyIfWaitingHelps).
			require.Equal(t, res.RetryAfter > 0, res.Retriable)
		} else {
			require.Equal(t, want.Retriable(), res.Retriable)
		}
	}
}

func TestCreateReadWrite(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)

	res := w.Do(write("alice", "notes/1", "hello", map[string]string{"topic": "x"}))
	requireCode(t, abi.OK, res)
	require.Equal(t, uint64(1), res.Revision)

	res = w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "notes/1"})
	requireCode(t, abi.OK, res)
	require.Equal(t, "hello", string(res.Content))
	require.Equal(t, "alice", res.Artifact.CreatedBy)
	require.Equal(t, "freeware", res.Artifact.Contract, "default contract")
	require.Equal(t, map[string]string{"topic": "x"}, res.Artifact.Metadata)
	require.Equal(t, uint64(5), res.Artifact.Size)

	// bob may not write a freeware artifact he does not control.
	res = w.Do(write("bob", "notes/1", "mine", nil))
	requireCode(t, abi.PermissionDenied, res)
	require.Contains(t, res.Message, "only the controller")
	require.NotNil(t, res.Decision)
	require.False(t, res.Decision.Allowed)

	res = w.Do(write("alice", "notes/1", "v2", nil))
	requireCode(t, abi.OK, res)
	require.Equal(t, uint64(2), res.Revision)

	res = w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "notes/1", Metadata: map[string]string{"controller": "bob"}, Unset: []string{"topic"}})
	requireCode(t, abi.OK, res)
	// Control moved to bob through metadata: now bob may write, alice may not.
	requireCode(t, abi.OK, w.Do(write("bob", "notes/1", "bob's", nil)))
	requireCode(t, abi.PermissionDenied, w.Do(write("alice", "notes/1", "alice's", nil)))
	res = w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "notes/1"})
	require.Equal(t, "bob's", string(res.Content))
	require.Equal(t, map[string]string{"controller": "bob"}, res.Artifact.Metadata)
	require.Equal(t, "alice", res.Artifact.CreatedBy)
}

// TestDeleteViaContract: delete is decided by the contract like every action.
// Reference: docs/ARCHITECTURE.md "One action, end to end".
func TestDeleteViaContract(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "stranger", 0)
	// A contract that lets anyone delete.
	w.Deploy(t, "alice", "anyone-deletes", "private", func(req *abi.Request) (abi.Decision, error) {
		return abi.Decision{Allowed: true}, nil
	})
	a := write("alice", "open", "x", nil)
	a.Contract = "anyone-deletes"
	requireCode(t, abi.OK, w.Do(a))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "stranger", Target: "open"}))
	requireCode(t, abi.NotFound, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "open"}))

	// Freeware denies a non-controller delete, and allows the controller.
	requireCode(t, abi.OK, w.Do(write("alice", "closed", "x", nil)))
	before := snapshot(t, w.Store)
	res := w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "stranger", Target: "closed"})
	requireCode(t, abi.PermissionDenied, res)
	require.Equal(t, before, snapshot(t, w.Store))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "closed"}))
}

// TestPayerFromContract: a contract may name a payer, who is charged only if
// it consented to that contract.
// Reference: docs/ARCHITECTURE.md "One action, end to end".
func TestPayerFromContract(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "reader", 100)
	w.Principal(t, "sponsor", 1000)
	w.Deploy(t, "alice", "sponsored", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 10, Payer: "sponsor", Payee: "alice"}, nil
		}
		return abi.Decision{Allowed: req.Caller == req.CreatedBy}, nil
	})
	a := write("alice", "paper", "text", nil)
	a.Contract = "sponsored"
	requireCode(t, abi.OK, w.Do(a))
	read := kernel.Action{Kind: kernel.KindRead, Caller: "reader", Target: "paper"}

	// No consent: nobody is charged.
	before := snapshot(t, w.Store)
	res := w.Do(read)
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Nil(t, res.Content)
	require.Equal(t, before, snapshot(t, w.Store))

	// The sponsor consents (only the sponsor itself can).
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "sponsored", PerCallCap: 10, TotalCap: 25}))
	res = w.Do(read)
	requireCode(t, abi.OK, res)
	require.Equal(t, "text", string(res.Content))
	require.Equal(t, []kernel.Charge{{Payer: "sponsor", Payee: "alice", Amount: 10, Reason: "contract"}}, res.Charges)
	require.Equal(t, uint64(100), w.Balance(t, "reader"), "the caller is not charged")
	require.Equal(t, uint64(990), w.Balance(t, "sponsor"))
	require.Equal(t, uint64(110), w.Balance(t, "alice"))

	requireCode(t, abi.OK, w.Do(read))
	// The total cap (25) leaves 5: the third read is refused, nothing charged.
	res = w.Do(read)
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Contains(t, res.Message, "remains")
	require.Equal(t, uint64(980), w.Balance(t, "sponsor"))
	g, err := w.K.Consent(ctx, "sponsor", "sponsored")
	require.NoError(t, err)
	require.Equal(t, uint64(20), g.Spent)

	// Revoking ends it.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRevokeConsent, Caller: "sponsor", Contract: "sponsored"}))
	requireCode(t, abi.PayerNotAuthorized, w.Do(read))
	require.NoError(t, w.K.CheckLedger(ctx))
}

func TestConsentBindsToContractCode(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "author", 0)
	w.Principal(t, "sponsor", 100)
	rule := func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 1, Payer: "sponsor"}, nil
		}
		return abi.Decision{Allowed: req.Caller == req.CreatedBy}, nil
	}
	w.Deploy(t, "author", "billing", "freeware", rule)
	a := write("author", "doc", "x", nil)
	a.Contract = "billing"
	requireCode(t, abi.OK, w.Do(a))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "billing", PerCallCap: 5, TotalCap: 50}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "author", Target: "doc"}))

	// The author rewrites the contract: the old consent no longer covers it.
	v2 := []byte("fake:billing-v2")
	w.Eval.Register(v2, rule)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "author", Target: "billing", Content: v2}))
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "author", Target: "doc"})
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Contains(t, res.Message, "other terms")
	require.Equal(t, uint64(99), w.Balance(t, "sponsor"))
}

// TestCreatedByImmutable: no path changes created_by.
// Reference: docs/ARCHITECTURE.md, created_by is immutable.
func TestCreatedByImmutable(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	a := write("alice", "doc", "x", map[string]string{"controller": "bob"})
	a.Contract = "allow-all"
	requireCode(t, abi.OK, w.Do(a))
	createdBy := func() string {
		res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"})
		requireCode(t, abi.OK, res)
		return res.Artifact.CreatedBy
	}
	steps := []struct {
		name string
		a    kernel.Action
	}{
		{"write by another", write("bob", "doc", "y", map[string]string{"created_by": "bob"})},
		{"edit content", kernel.Action{Kind: kernel.KindEdit, Caller: "bob", Target: "doc", Content: []byte("z")}},
		{"edit metadata", kernel.Action{Kind: kernel.KindEdit, Caller: "bob", Target: "doc", Metadata: map[string]string{"created_by": "bob", "owner": "bob"}}},
		{"set_contract", kernel.Action{Kind: kernel.KindSetContract, Caller: "bob", Target: "doc", Contract: "freeware"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res := w.Do(s.a)
			requireCode(t, abi.OK, res)
			require.Equal(t, "alice", createdBy())
		})
	}
	t.Run("json field", func(t *testing.T) {
		_, err := kernel.DecodeAction([]byte(`{"kind":"edit","target":"doc","created_by":"bob","content":"eA=="}`))
		require.ErrorIs(t, err, kernel.ErrImmutableField)
		require.Equal(t, "alice", createdBy())
	})
	t.Run("type is immutable too", func(t *testing.T) {
		a := write("bob", "doc", "y", nil)
		a.Type = "other"
		requireCode(t, abi.ImmutableField, w.Do(a))
	})
}

// TestNoKernelOwnerBypass (a): a contract that denies the creator and allows
// another principal is obeyed both ways for every action.
// Reference: docs/ARCHITECTURE.md: the kernel never interprets created_by.
func TestNoKernelOwnerBypass(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "creator", 0)
	w.Principal(t, "other", 0)
	w.Deploy(t, "other", "only-other", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Caller == "other" {
			return abi.Decision{Allowed: true}, nil
		}
		return abi.Decision{Reason: "only other"}, nil
	})
	mk := func(id string) {
		a := write("creator", id, "x", nil)
		a.Contract = "only-other"
		requireCode(t, abi.OK, w.Do(a))
	}
	actions := []struct {
		name string
		a    func(caller, id string) kernel.Action
	}{
		{"read", func(c, id string) kernel.Action { return kernel.Action{Kind: kernel.KindRead, Caller: c, Target: id} }},
		{"write", func(c, id string) kernel.Action { return write(c, id, "y", nil) }},
		{"edit", func(c, id string) kernel.Action {
			return kernel.Action{Kind: kernel.KindEdit, Caller: c, Target: id, Metadata: map[string]string{"k": "v"}}
		}},
		{"set_contract", func(c, id string) kernel.Action {
			return kernel.Action{Kind: kernel.KindSetContract, Caller: c, Target: id, Contract: "freeware"}
		}},
		{"delete", func(c, id string) kernel.Action { return kernel.Action{Kind: kernel.KindDelete, Caller: c, Target: id} }},
	}
	for i, act := range actions {
		t.Run(act.name, func(t *testing.T) {
			id := "art" + string(rune('a'+i))
			mk(id)
			before := snapshot(t, w.Store)
			requireCode(t, abi.PermissionDenied, w.Do(act.a("creator", id)))
			require.Equal(t, before, snapshot(t, w.Store), "the creator's denied action changed state")
			requireCode(t, abi.OK, w.Do(act.a("other", id)))
		})
	}
}

func TestContractsCannotDangle(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Deploy(t, "alice", "mine", "freeware", kerneltest.AllowAll)
	a := write("alice", "doc", "x", nil)
	a.Contract = "mine"
	requireCode(t, abi.OK, w.Do(a))

	res := w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "mine"})
	requireCode(t, abi.ContractInUse, res)
	require.Contains(t, res.Message, `"doc"`)

	a = write("alice", "doc2", "x", nil)
	a.Contract = "missing"
	requireCode(t, abi.NotFound, w.Do(a))
	a.Contract = "doc" // not a contract
	requireCode(t, abi.InvalidArgument, w.Do(a))
	requireCode(t, abi.NotFound, w.Do(kernel.Action{Kind: kernel.KindSetContract, Caller: "alice", Target: "doc", Contract: "missing"}))
	requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindSetContract, Caller: "alice", Target: "doc", Contract: "doc"}))

	// Move the artifact away; then the contract can go.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindSetContract, Caller: "alice", Target: "doc", Contract: "freeware"}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "mine"}))
}

func TestContractFailureDenies(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 10)
	w.Deploy(t, "alice", "broken", "freeware", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{}, errors.New("trap: unreachable")
	})
	w.Deploy(t, "alice", "slow", "freeware", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{}, &kerneltest.CodedError{C: abi.ContractTimeout, Msg: "deadline"}
	})
	w.Deploy(t, "alice", "bad-payee", "freeware", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{Allowed: true, Cost: 1, Payee: "nobody"}, nil
	})
	w.Deploy(t, "alice", "greedy", "freeware", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{Allowed: true, Cost: 1 << 63}, nil
	})
	for _, tc := range []struct {
		contract string
		want     abi.Code
	}{
		{"broken", abi.ContractFailed},
		{"slow", abi.ContractTimeout},
		{"bad-payee", abi.ContractFailed},
		{"greedy", abi.CostLimitExceeded}, // a price above the caller's limit is refused first
	} {
		t.Run(tc.contract, func(t *testing.T) {
			id := "doc-" + tc.contract
			a := write("alice", id, "x", nil)
			a.Contract = tc.contract
			requireCode(t, abi.OK, w.Do(a)) // creation is judged by the kernel
			before := snapshot(t, w.Store)
			requireCode(t, tc.want, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: id}))
			require.Equal(t, before, snapshot(t, w.Store))
		})
	}
	require.Equal(t, uint64(10), w.Balance(t, "alice"))
}

func TestTransfer(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 0)
	res := w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 30})
	requireCode(t, abi.OK, res)
	require.Equal(t, []kernel.Charge{{Payer: "alice", Payee: "bob", Amount: 30, Reason: "transfer"}}, res.Charges)
	require.Equal(t, uint64(70), w.Balance(t, "alice"))
	require.Equal(t, uint64(30), w.Balance(t, "bob"))
	requireCode(t, abi.InsufficientFunds, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "bob", To: "alice", Amount: 31}))
	require.NoError(t, w.K.CheckLedger(ctx))
}

// Bad actions return a stable code and change nothing.
func TestBadActionsChangeNothing(t *testing.T) {
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.MaxContentBytes, c.MaxModuleBytes = 1000, 2000 })
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 0)
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
	manyMeta := map[string]string{}
	for i := 0; i <= abi.MaxMetaPairs; i++ {
		manyMeta[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name string
		a    kernel.Action
		want abi.Code
	}{
		{"no kind", kernel.Action{Caller: "alice"}, abi.InvalidArgument},
		{"unknown kind", kernel.Action{Kind: "teleport", Caller: "alice"}, abi.InvalidArgument},
		{"unknown caller", kernel.Action{Kind: kernel.KindRead, Caller: "ghost", Target: "doc"}, abi.NotFound},
		{"bad caller id", kernel.Action{Kind: kernel.KindRead, Caller: "a b", Target: "doc"}, abi.InvalidArgument},
		{"empty caller", kernel.Action{Kind: kernel.KindRead, Target: "doc"}, abi.InvalidArgument},
		{"unknown target", kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "nope"}, abi.NotFound},
		{"bad target id", kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "/etc/passwd"}, abi.InvalidArgument},
		{"negative transfer", kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: -5}, abi.InvalidArgument},
		{"zero transfer", kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob"}, abi.InvalidArgument},
		{"self transfer", kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "alice", Amount: 1}, abi.InvalidArgument},
		{"transfer to ghost", kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "ghost", Amount: 1}, abi.NotFound},
		{"overdraft", kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 101}, abi.InsufficientFunds},
		{"oversized content", write("alice", "big", strings.Repeat("x", 1001), nil), abi.InvalidArgument},
		{"oversized content on replace", write("alice", "doc", strings.Repeat("x", 1001), nil), abi.InvalidArgument},
		{"oversized module", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "m", Type: kernel.TypeExecutable, Content: make([]byte, 2001)}, abi.InvalidArgument},
		{"over every limit", write("alice", "big", strings.Repeat("x", 2001), nil), abi.InvalidArgument},
		{"too much metadata", write("alice", "meta", "", manyMeta), abi.InvalidArgument},
		{"huge metadata value", write("alice", "meta", "", map[string]string{"k": strings.Repeat("v", abi.MaxMetaValueLen+1)}), abi.InvalidArgument},
		{"create without type", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "t"}, abi.InvalidArgument},
		{"bad type", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "t", Type: "Bad Type"}, abi.InvalidArgument},
		{"create a right", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "t", Type: kernel.TypeRight}, abi.KernelProtected},
		{"malformed contract", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "c", Type: kernel.TypeContract, Content: []byte("\x00asm garbage")}, abi.ContractInvalid},
		{"edit nothing", kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "doc"}, abi.InvalidArgument},
		{"read with content", kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc", Content: []byte("x")}, abi.InvalidArgument},
		{"write changes contract", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "doc", Contract: "private"}, abi.InvalidArgument},
		{"consent without caps", kernel.Action{Kind: kernel.KindGrantConsent, Caller: "alice", Contract: "freeware"}, abi.InvalidArgument},
		{"consent to non-contract", kernel.Action{Kind: kernel.KindGrantConsent, Caller: "alice", Contract: "doc", PerCallCap: 1, TotalCap: 1}, abi.InvalidArgument},
		{"revoke absent consent", kernel.Action{Kind: kernel.KindRevokeConsent, Caller: "alice", Contract: "freeware"}, abi.NotFound},
		{"invoke not yet", kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "doc"}, abi.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, w.Store)
			res := w.Do(tc.a)
			requireCode(t, tc.want, res)
			require.NotEmpty(t, res.Message)
			require.Equal(t, before, snapshot(t, w.Store))
		})
	}
	require.NoError(t, w.K.CheckLedger(ctx))
}

func TestAdmin(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	require.NoError(t, w.K.CreatePrincipal(ctx, "alice", 5))
	require.ErrorIs(t, w.K.CreatePrincipal(ctx, "alice", 5), kernel.ErrAlreadyExists)
	require.ErrorIs(t, w.K.CreatePrincipal(ctx, "bad id", 5), kernel.ErrInvalidArgument)
	require.ErrorIs(t, w.K.Mint(ctx, "alice", 0), kernel.ErrInvalidArgument)
	require.ErrorIs(t, w.K.Mint(ctx, "alice", -1), kernel.ErrInvalidArgument)
	require.ErrorIs(t, w.K.Mint(ctx, "ghost", 1), kernel.ErrNotFound)
	require.NoError(t, w.K.Mint(ctx, "alice", 10))
	require.Equal(t, uint64(15), w.Balance(t, "alice"))
	// The supply is bounded, so no sum of balances can wrap around.
	require.ErrorIs(t, w.K.CreatePrincipal(ctx, "whale", 1<<63), kernel.ErrInvalidArgument)
	require.ErrorIs(t, w.K.Mint(ctx, "alice", int64(kernel.MaxSupply)), kernel.ErrInvalidArgument)
	require.NoError(t, w.K.Mint(ctx, "alice", int64(kernel.MaxSupply-15)))
	require.ErrorIs(t, w.K.Mint(ctx, "alice", 1), kernel.ErrInvalidArgument)
	require.ErrorIs(t, w.K.CreatePrincipal(ctx, "late", 1), kernel.ErrInvalidArgument)
	require.NoError(t, w.K.CheckLedger(ctx))
	tot, err := w.K.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, kernel.Totals{Minted: kernel.MaxSupply}, tot)
	ps, err := w.K.Principals(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 2) // genesis, alice
	_, err = w.K.Principal(ctx, "ghost")
	require.ErrorIs(t, err, kernel.ErrNotFound)
	var ke *kernel.Error
	require.ErrorAs(t, err, &ke)
	require.Equal(t, abi.NotFound, ke.Code)
}

func TestEvents(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 10)
	w.Principal(t, "bob", 0)
	start, err := w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	n := uint64(len(start))
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
	requireCode(t, abi.PermissionDenied, w.Do(write("bob", "doc", "y", nil)))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 3}))
	requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: -3}))

	evs, err := w.K.Events(ctx, start[n-1].Seq, 0)
	require.NoError(t, err)
	require.Len(t, evs, 3, "invalid input appends no event")
	require.Equal(t, "OK", evs[0].Code)
	require.Equal(t, kernel.KindWrite, evs[0].Kind)
	require.Equal(t, "PERMISSION_DENIED", evs[1].Code)
	require.False(t, evs[1].Allowed)
	require.Contains(t, evs[1].Reason, "only the controller")
	require.Equal(t, "bob", evs[1].Caller)
	require.Equal(t, []kernel.Charge{{Payer: "alice", Payee: "bob", Amount: 3, Reason: "transfer"}}, evs[2].Charges)
	require.Equal(t, kerneltest.Start, evs[2].Time)
	for i := 1; i < len(evs); i++ {
		require.Greater(t, evs[i].Seq, evs[i-1].Seq)
	}
	limited, err := w.K.Events(ctx, 0, 2)
	require.NoError(t, err)
	require.Len(t, limited, 2)
}

func TestOpenChecksSchema(t *testing.T) {
	st := store.NewMem()
	require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Set([]byte("m/schema"), []byte("999")) }))
	_, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: kerneltest.NewEvaluator(), Clock: kerneltest.NewClock(kerneltest.Start).Now})
	require.ErrorContains(t, err, `schema version "999"`)

	_, err = kernel.Open(ctx, kernel.Config{Store: st, Evaluator: kerneltest.NewEvaluator()})
	require.ErrorContains(t, err, "Clock is nil")
}

// TestOpenUpgradesSchema3: a store of schema 3 (no l/seq, one key per
// ledger total) opens, is marked schema 4, and numbers the next event after
// its last one.
func TestOpenUpgradesSchema3(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 10)
	w.Principal(t, "bob", 0)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1}))
	evs, err := w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	last := evs[len(evs)-1].Seq
	require.NoError(t, w.K.Close(ctx))
	require.NoError(t, w.Store.Update(func(tx store.Txn) error {
		if err := tx.Delete([]byte("l/seq")); err != nil {
			return err
		}
		return tx.Set([]byte("m/schema"), []byte("3"))
	}))
	k, err := kernel.Open(ctx, kernel.Config{Store: w.Store, Evaluator: w.Eval, Clock: w.Clock.Now, DefaultContract: "freeware"})
	require.NoError(t, err)
	defer k.Close(ctx)
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1})
	requireCode(t, abi.OK, res)
	require.Equal(t, last+1, res.Event)
	require.NoError(t, w.Store.View(func(tx store.Txn) error {
		v, err := tx.Get([]byte("m/schema"))
		require.Equal(t, kernel.SchemaVersion, string(v))
		return err
	}))
	require.NoError(t, k.CheckLedger(ctx))
}

func TestClosedKernel(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	require.NoError(t, w.K.Close(ctx))
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "genesis", Target: "freeware"})
	requireCode(t, abi.Unavailable, res)
	_, err := w.K.Principal(ctx, "genesis")
	require.ErrorIs(t, err, kernel.ErrClosed)
}
