package kernel_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

func mintRight(caller, id string, res kernel.Resource, amount int64) kernel.Action {
	return kernel.Action{Kind: kernel.KindMintRight, Caller: caller, Target: id, Resource: string(res), Amount: amount}
}

func transferRight(caller, id, to string) kernel.Action {
	return kernel.Action{Kind: kernel.KindTransferRight, Caller: caller, Target: id, To: to}
}

func splitRight(caller, id string, amounts []int64, ids ...string) kernel.Action {
	return kernel.Action{Kind: kernel.KindSplitRight, Caller: caller, Target: id, Amounts: amounts, IDs: ids}
}

func mergeRights(caller, into string, ids ...string) kernel.Action {
	return kernel.Action{Kind: kernel.KindMergeRights, Caller: caller, Target: into, IDs: ids}
}

func redeemRight(caller, id string) kernel.Action {
	return kernel.Action{Kind: kernel.KindRedeemRight, Caller: caller, Target: id}
}

// rightOf reads right id through Do as caller (judged by its contract) and
// decodes its content.
func rightOf(t *testing.T, w *kerneltest.World, caller, id string) (map[string]any, *kernel.ArtifactInfo) {
	t.Helper()
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: id})
	requireCode(t, abi.OK, res)
	var m map[string]any
	require.NoError(t, json.Unmarshal(res.Content, &m))
	return m, res.Artifact
}

// totals returns quota totals plus right totals per resource: the conserved
// quantity.
func totals(t *testing.T, w *kerneltest.World) map[kernel.Resource]int64 {
	t.Helper()
	q, err := w.K.QuotaTotals(ctx)
	require.NoError(t, err)
	r, err := w.K.RightTotals(ctx)
	require.NoError(t, err)
	out := map[kernel.Resource]int64{}
	for _, res := range kernel.Resources {
		out[res] = q[res] + r[res]
	}
	return out
}

func quota(t *testing.T, w *kerneltest.World, id string, res kernel.Resource) int64 {
	t.Helper()
	q, err := w.K.Quota(ctx, id, res)
	require.NoError(t, err)
	return q
}

func requireRightsSound(t *testing.T, w *kerneltest.World) {
	t.Helper()
	require.NoError(t, kernel.CheckRightIndex(w.K))
}

// Each primitive does exactly what it says, and each refusal changes
// nothing but the audit log.
func TestRightPrimitives(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	w.Principal(t, "carol", 0)
	before := totals(t, w)

	res := w.Do(mintRight("alice", "r1", kernel.LLMRate, 300))
	requireCode(t, abi.OK, res)
	require.Equal(t, uint64(1), res.Revision)
	require.Equal(t, int64(700), quota(t, w, "alice", kernel.LLMRate))
	m, info := rightOf(t, w, "bob", "r1")
	require.Equal(t, map[string]any{"resource": "llm_rate", "amount": float64(300), "holder": "alice"}, m)
	require.Equal(t, kernel.TypeRight, info.Type)
	require.Equal(t, "alice", info.CreatedBy)
	require.Equal(t, "freeware", info.Contract, "default contract")

	requireCode(t, abi.OK, w.Do(transferRight("alice", "r1", "bob")))
	res = w.Do(splitRight("bob", "r1", []int64{100, 150, 50}))
	requireCode(t, abi.OK, res)
	require.Equal(t, []string{"r1.1", "r1.2", "r1.3"}, res.IDs, "derived part ids")
	requireCode(t, abi.NotFound, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "r1"}))
	m, info = rightOf(t, w, "bob", "r1.2")
	require.Equal(t, float64(150), m["amount"])
	require.Equal(t, "bob", m["holder"])
	require.Equal(t, "alice", info.CreatedBy, "parts keep the minter")

	res = w.Do(splitRight("bob", "r1.1", []int64{60, 40}, "named-a", "named-b"))
	requireCode(t, abi.OK, res)
	require.Equal(t, []string{"named-a", "named-b"}, res.IDs)

	requireCode(t, abi.OK, w.Do(mergeRights("bob", "r1.2", "named-a", "r1.3")))
	m, info = rightOf(t, w, "carol", "r1.2")
	require.Equal(t, float64(260), m["amount"])
	require.Equal(t, uint64(2), info.Revision, "split made it, merge changed it")

	rs, err := w.K.Rights(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []kernel.Right{
		{ID: "named-b", Resource: kernel.LLMRate, Amount: 40, Holder: "bob", CreatedBy: "alice", Contract: "freeware", Revision: 1},
		{ID: "r1.2", Resource: kernel.LLMRate, Amount: 260, Holder: "bob", CreatedBy: "alice", Contract: "freeware", Revision: 2},
	}, rs)

	requireCode(t, abi.OK, w.Do(redeemRight("bob", "r1.2")))
	require.Equal(t, int64(1260), quota(t, w, "bob", kernel.LLMRate))
	require.Equal(t, before, totals(t, w))
	rt, err := w.K.RightTotals(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(40), rt[kernel.LLMRate])
	requireRightsSound(t, w)

	// Every resource can be minted; disk respects bytes stored.
	requireCode(t, abi.OK, w.Do(write("carol", "blob", "0123456789", nil)))
	requireCode(t, abi.OK, w.Do(mintRight("carol", "d1", kernel.Disk, 1_000_000-10-kernel.ArtifactOverheadBytes)))
	requireCode(t, abi.QuotaExceeded, w.Do(write("carol", "blob2", "x", nil)))
	require.NoError(t, w.K.SetQuota(ctx, "carol", kernel.LLMBudget, 500)) // administrative: changes the total
	before = totals(t, w)
	for _, r := range []kernel.Resource{kernel.CPURate, kernel.LLMBudget, kernel.Memory} {
		requireCode(t, abi.OK, w.Do(mintRight("carol", "m-"+string(r), r, 5)))
	}
	require.Equal(t, before, totals(t, w))
	requireRightsSound(t, w)

	// Evaluating contracts charges cpu_rate, so mint cpu_rate only as far as
	// it is unused; llm_budget spent is in use too.
	require.NoError(t, w.K.SetQuota(ctx, "carol", kernel.LLMBudget, 500))
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "carol", kernel.LLMBudget, 400))
	before = totals(t, w)

	requireCode(t, abi.OK, w.Do(mintRight("alice", "x", kernel.LLMRate, 10)))
	requireCode(t, abi.OK, w.Do(mintRight("alice", "y", kernel.Disk, 10)))
	requireCode(t, abi.OK, w.Do(write("alice", "plain", "x", nil)))
	for _, tc := range []struct {
		name string
		a    kernel.Action
		code abi.Code
	}{
		{"mint beyond quota", mintRight("alice", "big", kernel.LLMRate, 10_000), abi.QuotaExceeded},
		{"mint budget in use", mintRight("carol", "b", kernel.LLMBudget, 101), abi.QuotaExceeded},
		{"mint onto existing artifact", mintRight("alice", "plain", kernel.LLMRate, 1), abi.AlreadyExists},
		{"mint onto existing right", mintRight("alice", "x", kernel.LLMRate, 1), abi.AlreadyExists},
		{"mint zero", mintRight("alice", "z", kernel.LLMRate, 0), abi.InvalidArgument},
		{"mint negative", mintRight("alice", "z", kernel.LLMRate, -5), abi.InvalidArgument},
		{"mint unknown resource", mintRight("alice", "z", "gold", 5), abi.InvalidArgument},
		{"mint with unknown contract", kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "z", Resource: "llm_rate", Amount: 1, Contract: "nope"}, abi.NotFound},
		{"mint with content", kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "z", Resource: "llm_rate", Amount: 1, Content: []byte("x")}, abi.InvalidArgument},
		{"unknown caller", mintRight("mallory", "z", kernel.LLMRate, 1), abi.NotFound},
		{"transfer unknown right", transferRight("alice", "nope", "bob"), abi.NotFound},
		{"transfer non-right", transferRight("alice", "plain", "bob"), abi.InvalidArgument},
		{"transfer by non-holder", transferRight("bob", "x", "carol"), abi.PermissionDenied},
		{"transfer to unknown", transferRight("alice", "x", "nobody"), abi.NotFound},
		{"transfer to self", transferRight("alice", "x", "alice"), abi.InvalidArgument},
		{"transfer with amount", kernel.Action{Kind: kernel.KindTransferRight, Caller: "alice", Target: "x", To: "bob", Amount: 3}, abi.InvalidArgument},
		{"split sum too small", splitRight("alice", "x", []int64{3, 3}), abi.InvalidArgument},
		{"split sum too large", splitRight("alice", "x", []int64{5, 6}), abi.InvalidArgument},
		{"split one part", splitRight("alice", "x", []int64{10}), abi.InvalidArgument},
		{"split zero part", splitRight("alice", "x", []int64{10, 0}), abi.InvalidArgument},
		{"split negative part", splitRight("alice", "x", []int64{11, -1}), abi.InvalidArgument},
		{"split huge parts", splitRight("alice", "x", []int64{1 << 62, 1 << 62}), abi.InvalidArgument},
		{"split ids mismatch", splitRight("alice", "x", []int64{5, 5}, "p"), abi.InvalidArgument},
		{"split duplicate ids", splitRight("alice", "x", []int64{5, 5}, "p", "p"), abi.InvalidArgument},
		{"split into itself", splitRight("alice", "x", []int64{5, 5}, "x", "p"), abi.InvalidArgument},
		{"split onto existing", splitRight("alice", "x", []int64{5, 5}, "p", "plain"), abi.AlreadyExists},
		{"split by non-holder", splitRight("bob", "x", []int64{5, 5}), abi.PermissionDenied},
		{"split unknown", splitRight("alice", "nope", []int64{5, 5}), abi.NotFound},
		{"merge resources differ", mergeRights("alice", "x", "y"), abi.InvalidArgument},
		{"merge nothing", mergeRights("alice", "x"), abi.InvalidArgument},
		{"merge into itself", mergeRights("alice", "x", "x"), abi.InvalidArgument},
		{"merge unknown", mergeRights("alice", "x", "nope"), abi.NotFound},
		{"merge non-right", mergeRights("alice", "x", "plain"), abi.InvalidArgument},
		{"merge another's right", mergeRights("alice", "x", "named-b"), abi.PermissionDenied},
		{"merge into another's right", mergeRights("alice", "named-b", "x"), abi.PermissionDenied},
		{"redeem by non-holder", redeemRight("bob", "x"), abi.PermissionDenied},
		{"redeem unknown", redeemRight("alice", "nope"), abi.NotFound},
		{"redeem non-right", redeemRight("alice", "plain"), abi.InvalidArgument},
		{"redeem with ids", kernel.Action{Kind: kernel.KindRedeemRight, Caller: "alice", Target: "x", IDs: []string{"y"}}, abi.InvalidArgument},
		{"ids on a transfer", kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1, IDs: []string{"y"}}, abi.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := snapshot(t, w.Store)
			requireCode(t, tc.code, w.Do(tc.a))
			require.Equal(t, snap, snapshot(t, w.Store), "a refused primitive changes nothing")
		})
	}
	require.Equal(t, before, totals(t, w))
	requireRightsSound(t, w)

	// Redeeming never overflows a quota.
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMRate, 1<<60))
	requireCode(t, abi.InvalidArgument, w.Do(redeemRight("alice", "x")))

	// Every primitive leaves an audit event, allowed or not.
	evs, err := w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	kinds := map[kernel.Kind]int{}
	for _, ev := range evs {
		if ev.Allowed {
			kinds[ev.Kind]++
		}
	}
	require.Equal(t, 7, kinds[kernel.KindMintRight])
	require.Equal(t, 1, kinds[kernel.KindTransferRight])
	require.Equal(t, 2, kinds[kernel.KindSplitRight])
	require.Equal(t, 1, kinds[kernel.KindMergeRights])
	require.Equal(t, 1, kinds[kernel.KindRedeemRight])
	last := evs[len(evs)-1]
	require.Equal(t, kernel.KindRedeemRight, last.Kind)
	require.Equal(t, "INVALID_ARGUMENT", last.Code)
	require.Equal(t, "llm_rate", last.Resource)
	require.Equal(t, int64(10), last.Amount)
}

// The actions' JSON shapes, as clients and executables send them.
func TestRightActionJSON(t *testing.T) {
	for _, tc := range []struct {
		json string
		want kernel.Action
	}{
		{`{"kind":"mint_right","target":"r1","resource":"llm_rate","amount":100,"contract":"private"}`,
			kernel.Action{Kind: kernel.KindMintRight, Target: "r1", Resource: "llm_rate", Amount: 100, Contract: "private"}},
		{`{"kind":"transfer_right","target":"r1","to":"bob"}`, kernel.Action{Kind: kernel.KindTransferRight, Target: "r1", To: "bob"}},
		{`{"kind":"split_right","target":"r1","amounts":[30,70],"ids":["a","b"]}`,
			kernel.Action{Kind: kernel.KindSplitRight, Target: "r1", Amounts: []int64{30, 70}, IDs: []string{"a", "b"}}},
		{`{"kind":"merge_rights","target":"r1","ids":["r2","r3"]}`, kernel.Action{Kind: kernel.KindMergeRights, Target: "r1", IDs: []string{"r2", "r3"}}},
		{`{"kind":"redeem_right","target":"r1"}`, kernel.Action{Kind: kernel.KindRedeemRight, Target: "r1"}},
	} {
		t.Run(string(tc.want.Kind), func(t *testing.T) {
			a, err := kernel.DecodeAction([]byte(tc.json))
			require.NoError(t, err)
			require.Equal(t, tc.want, a)
			b, err := kernel.EncodeAction(a)
			require.NoError(t, err)
			require.JSONEq(t, tc.json, string(b))
		})
	}
}

// TestRightTypeImmutable: no action or API turns an artifact into a right or
// a right into anything else; writing an artifact of type right through
// ordinary write is refused.
// Reference: issue 10, gate 1.
func TestRightTypeImmutable(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	w.Principal(t, "forger", 0) // the principal the executable forger acts as
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "{\"resource\":\"llm_rate\",\"amount\":5,\"holder\":\"alice\"}", nil)))
	requireCode(t, abi.OK, w.Do(mintRight("alice", "r", kernel.LLMRate, 50)))
	w.DeployExecutable(t, "alice", "forger", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		var a map[string]any
		_ = json.Unmarshal(req.Args, &a)
		r := call(calls, map[string]any{"action": a, "as": "forger"})
		if r["ok"] != true {
			return abi.InvokeResult{Output: []byte(r["error_code"].(string))}, nil
		}
		return abi.InvokeResult{OK: true}, nil
	})
	w.GrantStanding(t, "forger", "forger")
	before := snapshot(t, w.Store)
	tot := totals(t, w)

	for _, tc := range []struct {
		name string
		a    kernel.Action
		code abi.Code
	}{
		{"create a right by write", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "fake", Type: kernel.TypeRight, Content: []byte(`{"resource":"llm_rate","amount":5,"holder":"alice"}`)}, abi.KernelProtected},
		{"create a right by write, allow-all contract", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "fake", Type: kernel.TypeRight, Contract: "allow-all"}, abi.KernelProtected},
		{"retype data as right by write", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "doc", Type: kernel.TypeRight, Content: []byte("x")}, abi.ImmutableField},
		{"retype data as right by edit", kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "doc", Type: kernel.TypeRight, Content: []byte("x")}, abi.ImmutableField},
		{"retype right as data by write", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "r", Type: "data", Content: []byte("x")}, abi.KernelProtected},
		{"retype right as data by edit", kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "r", Type: "data", Content: []byte("x")}, abi.KernelProtected},
		{"retype right as contract", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "r", Type: kernel.TypeContract, Content: []byte("fake:allow-all")}, abi.KernelProtected},
		{"mint over data", mintRight("alice", "doc", kernel.LLMRate, 5), abi.AlreadyExists},
		{"transfer data as a right", transferRight("alice", "doc", "bob"), abi.InvalidArgument},
		{"redeem data as a right", redeemRight("alice", "doc"), abi.InvalidArgument},
		{"merge data into a right", mergeRights("alice", "r", "doc"), abi.InvalidArgument},
		{"split data as a right", splitRight("alice", "doc", []int64{2, 3}), abi.InvalidArgument},
		{"executable creates a right", invokeArgs("alice", "forger", `{"kind":"write","target":"fake","type":"right","text":"{}"}`), abi.ExecutionFailed},
		{"executable retypes a right", invokeArgs("alice", "forger", `{"kind":"write","target":"r","type":"data","text":"{}"}`), abi.ExecutionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireCode(t, tc.code, w.Do(tc.a))
			require.Equal(t, before, snapshot(t, w.Store))
		})
	}

	// A right created by a write of type "right" sent as JSON is refused too.
	a, err := kernel.DecodeAction([]byte(`{"kind":"write","target":"fake","type":"right","text":"{}"}`))
	require.NoError(t, err)
	a.Caller = "alice"
	requireCode(t, abi.KernelProtected, w.Do(a))

	// After every primitive, the right is still a right, the data still data.
	requireCode(t, abi.OK, w.Do(transferRight("alice", "r", "bob")))
	requireCode(t, abi.OK, w.Do(splitRight("bob", "r", []int64{20, 30}, "r-a", "r-b")))
	requireCode(t, abi.OK, w.Do(mergeRights("bob", "r-a", "r-b")))
	_, info := rightOf(t, w, "alice", "r-a")
	require.Equal(t, kernel.TypeRight, info.Type)
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"})
	require.Equal(t, "data", res.Artifact.Type)
	require.Equal(t, tot, totals(t, w))
	requireRightsSound(t, w)
}

func invokeArgs(caller, target, args string) kernel.Action {
	return kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: target, Args: []byte(args)}
}

// TestRightNoDirectWrite: write, edit, delete and set_contract on a right
// fail with KERNEL_PROTECTED whatever its access contract says; only the
// primitives change it. Reads go through the contract.
// Reference: issue 10, gate 2.
func TestRightNoDirectWrite(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	w.Principal(t, "runner", 0)
	a := mintRight("alice", "open", kernel.LLMRate, 100)
	a.Contract = "allow-all" // the contract would allow anything
	requireCode(t, abi.OK, w.Do(a))
	a = mintRight("alice", "closed", kernel.LLMRate, 100)
	a.Contract = "private"
	requireCode(t, abi.OK, w.Do(a))
	w.DeployExecutable(t, "alice", "runner", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		var a map[string]any
		_ = json.Unmarshal(req.Args, &a)
		hc := map[string]any{"action": a}
		if req.Method == "self" {
			hc["as"] = "runner"
		}
		if r := call(calls, hc); r["ok"] != true {
			return abi.InvokeResult{Output: []byte(r["error_code"].(string))}, nil
		}
		return abi.InvokeResult{OK: true}, nil
	})
	w.GrantStanding(t, "runner", "runner")
	before := snapshot(t, w.Store)
	for _, id := range []string{"open", "closed"} {
		for _, caller := range []string{"alice", "bob"} {
			for _, tc := range []struct {
				name string
				a    kernel.Action
			}{
				{"write", kernel.Action{Kind: kernel.KindWrite, Target: id, Content: []byte(`{"resource":"llm_rate","amount":999999,"holder":"bob"}`)}},
				{"write same type", kernel.Action{Kind: kernel.KindWrite, Target: id, Type: kernel.TypeRight, Content: []byte("x")}},
				{"edit content", kernel.Action{Kind: kernel.KindEdit, Target: id, Content: []byte(`{"resource":"llm_rate","amount":999999,"holder":"bob"}`)}},
				{"edit metadata", kernel.Action{Kind: kernel.KindEdit, Target: id, Metadata: map[string]string{"controller": "bob"}}},
				{"delete", kernel.Action{Kind: kernel.KindDelete, Target: id}},
				{"set_contract", kernel.Action{Kind: kernel.KindSetContract, Target: id, Contract: "allow-all"}},
				{"set_contract private", kernel.Action{Kind: kernel.KindSetContract, Target: id, Contract: "private"}},
				{"invoke", kernel.Action{Kind: kernel.KindInvoke, Target: id, Method: "run"}},
			} {
				t.Run(id+"/"+caller+"/"+tc.name, func(t *testing.T) {
					tc.a.Caller = caller
					res := w.Do(tc.a)
					requireCode(t, abi.KernelProtected, res)
					require.Nil(t, res.Decision, "no contract is asked")
					require.Equal(t, before, snapshot(t, w.Store))
					// Through an executable, as the caller and as itself.
					b, err := kernel.EncodeAction(tc.a)
					require.NoError(t, err)
					for _, method := range []string{"caller", "self"} {
						inv := invokeArgs(caller, "runner", string(b))
						inv.Method = method
						res = w.Do(inv)
						requireCode(t, abi.ExecutionFailed, res)
						require.Contains(t, res.Message, "KERNEL_PROTECTED")
						require.Equal(t, before, snapshot(t, w.Store))
					}
				})
			}
		}
	}

	// Reads are judged by the right's contract: allow-all lets bob read,
	// private (controller: the minter) does not.
	m, _ := rightOf(t, w, "bob", "open")
	require.Equal(t, "alice", m["holder"])
	requireCode(t, abi.PermissionDenied, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "closed"}))
	rightOf(t, w, "alice", "closed")

	// A contract that governs a right cannot be deleted.
	w.Deploy(t, "alice", "mine", "allow-all", kerneltest.AllowAll)
	a = mintRight("alice", "governed", kernel.LLMRate, 1)
	a.Contract = "mine"
	requireCode(t, abi.OK, w.Do(a))
	requireCode(t, abi.ContractInUse, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "mine"}))
	requireCode(t, abi.OK, w.Do(redeemRight("alice", "governed")))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "mine"}))
	requireRightsSound(t, w)
}

// TestRightHolderDistinctFromCreator: after a transfer the new holder can
// split and redeem and the minter cannot; created_by is unchanged.
// Reference: issue 10, gate 3.
func TestRightHolderDistinctFromCreator(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	w.Principal(t, "carol", 0)
	tot := totals(t, w)
	requireCode(t, abi.OK, w.Do(mintRight("alice", "r", kernel.LLMRate, 100)))
	requireCode(t, abi.OK, w.Do(mintRight("alice", "mine", kernel.LLMRate, 10)))
	requireCode(t, abi.OK, w.Do(transferRight("alice", "r", "bob")))

	// The minter has no power over the right it made.
	for _, a := range []kernel.Action{
		transferRight("alice", "r", "carol"),
		splitRight("alice", "r", []int64{50, 50}),
		redeemRight("alice", "r"),
		mergeRights("alice", "mine", "r"),
		mergeRights("alice", "r", "mine"),
	} {
		snap := snapshot(t, w.Store)
		res := w.Do(a)
		requireCode(t, abi.PermissionDenied, res)
		require.Contains(t, res.Message, "only its holder may use a right")
		require.NotContains(t, res.Message, "bob", "the holder is not named to a non-holder")
		require.Equal(t, snap, snapshot(t, w.Store))
	}
	m, info := rightOf(t, w, "carol", "r")
	require.Equal(t, "bob", m["holder"])
	require.Equal(t, "alice", info.CreatedBy)

	// The holder can: split, pass a part on, redeem.
	requireCode(t, abi.OK, w.Do(splitRight("bob", "r", []int64{60, 40})))
	requireCode(t, abi.OK, w.Do(transferRight("bob", "r.2", "carol")))
	requireCode(t, abi.PermissionDenied, w.Do(redeemRight("bob", "r.2")))
	requireCode(t, abi.OK, w.Do(redeemRight("carol", "r.2")))
	requireCode(t, abi.OK, w.Do(redeemRight("bob", "r.1")))
	require.Equal(t, int64(890), quota(t, w, "alice", kernel.LLMRate))
	require.Equal(t, int64(1060), quota(t, w, "bob", kernel.LLMRate))
	require.Equal(t, int64(1040), quota(t, w, "carol", kernel.LLMRate))

	// A right moved back to its minter is the minter's to use again;
	// created_by stayed the minter throughout.
	requireCode(t, abi.OK, w.Do(transferRight("alice", "mine", "bob")))
	requireCode(t, abi.OK, w.Do(transferRight("bob", "mine", "alice")))
	_, info = rightOf(t, w, "bob", "mine")
	require.Equal(t, "alice", info.CreatedBy)
	require.Equal(t, uint64(3), info.Revision)
	requireCode(t, abi.OK, w.Do(redeemRight("alice", "mine")))
	require.Equal(t, tot, totals(t, w))
	requireRightsSound(t, w)
}

// Contracts see how much the caller holds in rights (abi.Request's
// CallerRights, summed per resource over the caller's rights, sorted), so
// "only holders of at least 100 llm_rate may read" is a contract's rule.
// Reference: abi/SPEC.md section 3, caller_rights.
func TestRightCallerRights(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	var seen []abi.RightAmount
	w.Deploy(t, "alice", "holders-only", "private", func(req *abi.Request) (abi.Decision, error) {
		// The request the kernel built encodes: the list fits the ABI.
		b, err := abi.AppendRequest(nil, req)
		if err != nil {
			return abi.Decision{}, err
		}
		var v abi.RequestView
		if err := v.Parse(b); err != nil {
			return abi.Decision{}, err
		}
		seen = req.CallerRights
		if req.Action == abi.ActionRead && v.CallerRight("llm_rate") >= 100 {
			return abi.Decision{Allowed: true}, nil
		}
		return abi.Decision{Reason: "holders of 100 llm_rate only"}, nil
	})
	a := write("alice", "club", "members only", nil)
	a.Contract = "holders-only"
	requireCode(t, abi.OK, w.Do(a))
	read := func(caller string) abi.Code {
		return w.Do(kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: "club"}).Code
	}
	require.Equal(t, abi.PermissionDenied, read("alice"))
	require.Nil(t, seen, "no rights, no list")

	requireCode(t, abi.OK, w.Do(mintRight("alice", "pass", kernel.LLMRate, 150)))
	requireCode(t, abi.OK, w.Do(mintRight("alice", "space", kernel.Disk, 10)))
	require.Equal(t, abi.OK, read("alice"))
	require.Equal(t, []abi.RightAmount{{Resource: "disk", Amount: 10}, {Resource: "llm_rate", Amount: 150}}, seen)

	// The right carries the capacity, wherever it goes.
	requireCode(t, abi.OK, w.Do(transferRight("alice", "pass", "bob")))
	require.Equal(t, abi.PermissionDenied, read("alice"))
	require.Equal(t, []abi.RightAmount{{Resource: "disk", Amount: 10}}, seen)
	require.Equal(t, abi.OK, read("bob"))
	requireCode(t, abi.OK, w.Do(splitRight("bob", "pass", []int64{60, 90})))
	require.Equal(t, abi.OK, read("bob"), "parts add up")
	require.Equal(t, []abi.RightAmount{{Resource: "llm_rate", Amount: 150}}, seen)
	requireCode(t, abi.OK, w.Do(redeemRight("bob", "pass.2")))
	require.Equal(t, abi.PermissionDenied, read("bob"))
	require.Equal(t, []abi.RightAmount{{Resource: "llm_rate", Amount: 60}}, seen)
}
