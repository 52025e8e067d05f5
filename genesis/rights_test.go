package genesis_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// registryStatus is get_quota's output.
type registryStatus struct {
	Principal  string `json:"principal"`
	Resource   string `json:"resource"`
	Quota      int64  `json:"quota"`
	Used       int64  `json:"used"`
	Available  int64  `json:"available"`
	RetryAfter int64  `json:"retry_after_ns"`
}

// rights invokes a method of the rights registry as caller.
func rights(t *testing.T, k *kernel.Kernel, caller, method string, args any) kernel.Result {
	t.Helper()
	b, err := json.Marshal(args)
	require.NoError(t, err)
	return k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: genesis.RightsRegistry, Method: method, Args: b})
}

// standing is every principal's standing in every resource.
type standing map[string]map[kernel.Resource]kernel.QuotaStatus

func standingOf(t *testing.T, k *kernel.Kernel, ids ...string) standing {
	t.Helper()
	s := standing{}
	for _, id := range ids {
		s[id] = map[kernel.Resource]kernel.QuotaStatus{}
		for _, r := range kernel.Resources {
			st, err := k.QuotaStatus(ctx, id, r)
			require.NoError(t, err)
			s[id][r] = st
		}
	}
	return s
}

// withoutCPU drops the cpu_rate usage of invokers: every invocation is
// charged the CPU it used to its payer, which is no part of what the
// registry does. Their cpu_rate quota stays.
func (s standing) withoutCPU(invokers ...string) standing {
	out := standing{}
	for id, m := range s {
		out[id] = map[kernel.Resource]kernel.QuotaStatus{}
		for r, st := range m {
			if r == kernel.CPURate {
				for _, inv := range invokers {
					if inv == id {
						st = kernel.QuotaStatus{Resource: r, Quota: st.Quota}
					}
				}
			}
			out[id][r] = st
		}
	}
	return out
}

// rightsWorld is a genesis world with usage: alice has used llm_rate and
// llm_budget and stores bytes, bob has used all his llm_rate.
func rightsWorld(t *testing.T) *kernel.Kernel {
	t.Helper()
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{
		{ID: "alice", Balance: 100}, {ID: "bob", Balance: 100}, {ID: "carol"}, {ID: "asker"},
	}})
	require.NoError(t, k.SetQuota(ctx, "alice", kernel.LLMBudget, 5000))
	require.NoError(t, k.SetQuota(ctx, "bob", kernel.LLMRate, 400))
	for _, u := range []struct {
		id     string
		res    kernel.Resource
		amount int64
	}{
		{"alice", kernel.LLMRate, 300},
		{"alice", kernel.LLMBudget, 1200},
		{"bob", kernel.LLMRate, 400},
	} {
		res := k.ConsumeQuota(ctx, u.id, u.res, u.amount)
		require.True(t, res.OK, res.Message)
	}
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/notes", Type: "data", Content: make([]byte, 2500)})
	require.True(t, res.OK, res.Message)
	return k
}

// TestGenesisRightsDelegatesToKernel shows that the genesis rights registry,
// a Go executable run by the real host, is no more than the kernel: (a) its
// answers equal the kernel's, (b) a transfer through it changes kernel state
// exactly as the kernel primitive does, (c) it cannot move quota out of
// anyone but the invoking caller, and a transfer the kernel refuses fails
// with the kernel's code and changes nothing.
func TestGenesisRightsDelegatesToKernel(t *testing.T) {
	principals := []string{"alice", "bob", "carol", "asker"}
	k := rightsWorld(t)

	t.Run("answers equal the kernel's", func(t *testing.T) {
		before := standingOf(t, k, principals...)
		type query struct {
			principal string
			res       kernel.Resource
		}
		var queries []query
		for _, p := range principals {
			for _, r := range kernel.Resources {
				// NB: while asker's invocation runs, the kernel holds a
				// reservation of asker's cpu_rate for it, so asker's own
				// cpu_rate is not the same question inside and outside.
				if p == "asker" && r == kernel.CPURate {
					continue
				}
				queries = append(queries, query{p, r})
			}
		}
		require.Less(t, before["alice"][kernel.LLMRate].Available, before["alice"][kernel.LLMRate].Quota, "usage makes available < quota")
		require.Zero(t, before["bob"][kernel.LLMRate].Available)
		for _, q := range queries {
			t.Run(q.principal+"/"+string(q.res), func(t *testing.T) {
				want := before[q.principal][q.res]
				args := map[string]string{"principal": q.principal, "resource": string(q.res)}

				res := rights(t, k, "asker", "get_quota", args)
				require.True(t, res.OK, res.Message)
				var got registryStatus
				require.NoError(t, json.Unmarshal(res.Output, &got))
				require.Equal(t, registryStatus{
					Principal: q.principal, Resource: string(q.res), Quota: want.Quota, Used: want.Used,
					Available: want.Available, RetryAfter: int64(want.RetryAfter),
				}, got)
				quota, err := k.Quota(ctx, q.principal, q.res)
				require.NoError(t, err)
				require.Equal(t, quota, got.Quota)

				res = rights(t, k, "asker", "available_capacity", args)
				require.True(t, res.OK, res.Message)
				var capacity struct {
					Principal string `json:"principal"`
					Resource  string `json:"resource"`
					Available int64  `json:"available"`
				}
				require.NoError(t, json.Unmarshal(res.Output, &capacity))
				avail, err := k.AvailableCapacity(ctx, q.principal, q.res)
				require.NoError(t, err)
				require.Equal(t, avail, capacity.Available)
				require.Equal(t, q.principal, capacity.Principal)
			})
		}
		t.Run("principal defaults to the caller", func(t *testing.T) {
			res := rights(t, k, "alice", "get_quota", map[string]string{"resource": "llm_budget"})
			require.True(t, res.OK, res.Message)
			var got registryStatus
			require.NoError(t, json.Unmarshal(res.Output, &got))
			want := before["alice"][kernel.LLMBudget]
			require.Equal(t, registryStatus{Principal: "alice", Resource: "llm_budget", Quota: 5000, Used: 1200, Available: 3800}, got)
			require.Equal(t, want.Available, got.Available)
		})
		errs := []struct {
			name   string
			method string
			args   any
			want   string
		}{
			{"unknown principal", "get_quota", map[string]string{"principal": "nobody", "resource": "disk"}, "NOT_FOUND"},
			{"unknown resource", "available_capacity", map[string]string{"principal": "alice", "resource": "gold"}, "INVALID_ARGUMENT"},
			{"unknown method", "mint_quota", map[string]string{}, `unknown method "mint_quota"`},
		}
		for _, tc := range errs {
			t.Run(tc.name, func(t *testing.T) {
				res := rights(t, k, "asker", tc.method, tc.args)
				require.Equal(t, abi.ExecutionFailed, res.Code, res.Message)
				require.Contains(t, res.Message, tc.want)
			})
		}
		require.Equal(t, before.withoutCPU("asker", "alice"), standingOf(t, k, principals...).withoutCPU("asker", "alice"), "queries change nothing")
	})

	t.Run("a transfer equals the kernel primitive", func(t *testing.T) {
		// Two worlds in the same state: one transfers through the
		// registry, the other with kernel.TransferQuota.
		viaRegistry, viaKernel := rightsWorld(t), rightsWorld(t)
		totals, err := viaRegistry.QuotaTotals(ctx)
		require.NoError(t, err)
		transfers := []struct {
			from, to string
			res      kernel.Resource
			amount   int64
		}{
			{"alice", "bob", kernel.LLMRate, 500},
			{"alice", "carol", kernel.Disk, 4000},
			{"alice", "carol", kernel.LLMBudget, 3800}, // all that is unspent
			{"bob", "carol", kernel.Memory, 1},
		}
		for _, tr := range transfers {
			res := rights(t, viaRegistry, tr.from, "transfer_quota", map[string]any{"to": tr.to, "resource": tr.res, "amount": tr.amount})
			require.True(t, res.OK, res.Message)
			var out kernel.Result
			require.NoError(t, json.Unmarshal(res.Output, &out))
			require.True(t, out.OK, "the output is the kernel's result")

			want := viaKernel.TransferQuota(ctx, tr.from, tr.to, tr.res, tr.amount)
			require.True(t, want.OK, want.Message)
			require.Equal(t, want.Charges, out.Charges)
		}
		got := standingOf(t, viaRegistry, principals...).withoutCPU("alice", "bob")
		want := standingOf(t, viaKernel, principals...).withoutCPU("alice", "bob")
		require.Equal(t, want, got)
		require.Equal(t, int64(1000-500), got["alice"][kernel.LLMRate].Quota)
		require.Equal(t, int64(400+500), got["bob"][kernel.LLMRate].Quota)
		for _, w := range []*kernel.Kernel{viaRegistry, viaKernel} {
			after, err := w.QuotaTotals(ctx)
			require.NoError(t, err)
			require.Equal(t, totals, after, "quota is conserved")
			require.NoError(t, w.CheckLedger(ctx))
		}
	})

	t.Run("only the caller's quota moves", func(t *testing.T) {
		before := standingOf(t, k, principals...)
		tests := []struct {
			name   string
			caller string
			args   map[string]any
			code   string // in the failure's message; "" for success
		}{
			{"a from naming the victim is refused", "bob",
				map[string]any{"from": "alice", "to": "bob", "resource": "llm_rate", "amount": 10}, `unknown field "from"`},
			{"a caller naming the victim is refused", "bob",
				map[string]any{"caller": "alice", "to": "bob", "resource": "llm_rate", "amount": 10}, `unknown field "caller"`},
			{"bob has no llm_rate left to move", "bob",
				map[string]any{"to": "carol", "resource": "llm_rate", "amount": 10}, "QUOTA_EXCEEDED"},
			{"over-transfer: more than alice's unused quota", "alice",
				map[string]any{"to": "carol", "resource": "llm_rate", "amount": 701}, "QUOTA_EXCEEDED"},
			{"over-transfer: more than alice's quota", "alice",
				map[string]any{"to": "carol", "resource": "llm_rate", "amount": 5000}, "QUOTA_EXCEEDED"},
			{"to oneself", "alice",
				map[string]any{"to": "alice", "resource": "llm_rate", "amount": 1}, "INVALID_ARGUMENT"},
			{"to nobody", "alice",
				map[string]any{"to": "nobody", "resource": "llm_rate", "amount": 1}, "NOT_FOUND"},
			{"zero", "alice",
				map[string]any{"to": "bob", "resource": "llm_rate", "amount": 0}, "INVALID_ARGUMENT"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := rights(t, k, tc.caller, "transfer_quota", tc.args)
				require.Equal(t, abi.ExecutionFailed, res.Code, res.Message)
				require.Contains(t, res.Message, tc.code)
				require.Equal(t, before.withoutCPU("asker", "alice", "bob"), standingOf(t, k, principals...).withoutCPU("asker", "alice", "bob"), "nothing changed")
			})
		}
		// The kernel primitive refuses the same over-transfer with the
		// same code.
		res := k.TransferQuota(ctx, "alice", "carol", kernel.LLMRate, 701)
		require.Equal(t, abi.QuotaExceeded, res.Code, res.Message)

		// bob's transfer moves bob's quota, never alice's.
		res = rights(t, k, "bob", "transfer_quota", map[string]any{"to": "carol", "resource": "disk", "amount": 10})
		require.True(t, res.OK, res.Message)
		after := standingOf(t, k, principals...)
		require.Equal(t, before["alice"][kernel.Disk], after["alice"][kernel.Disk])
		require.Equal(t, before["bob"][kernel.Disk].Quota-10, after["bob"][kernel.Disk].Quota)
		require.Equal(t, before["carol"][kernel.Disk].Quota+10, after["carol"][kernel.Disk].Quota)
	})

	t.Run("no privilege", func(t *testing.T) {
		// No standing: as_self would find no principal.
		_, err := k.Principal(ctx, genesis.RightsRegistry)
		require.ErrorIs(t, err, kernel.ErrNotFound)
		info := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "carol", Target: genesis.RightsRegistry})
		require.True(t, info.OK, info.Message)
		require.Equal(t, kernel.TypeExecutable, info.Artifact.Type)
		require.Equal(t, genesis.Freeware, info.Artifact.Contract)
		require.Equal(t, genesis.Executables()[genesis.RightsRegistry], info.Content)
		for _, a := range []kernel.Action{
			{Kind: kernel.KindWrite, Caller: "carol", Target: genesis.RightsRegistry, Content: genesis.Executables()[genesis.RightsRegistry]},
			{Kind: kernel.KindEdit, Caller: "carol", Target: genesis.RightsRegistry, Metadata: map[string]string{"controller": "carol"}},
			{Kind: kernel.KindDelete, Caller: "carol", Target: genesis.RightsRegistry},
			{Kind: kernel.KindSetContract, Caller: "carol", Target: genesis.RightsRegistry, Contract: genesis.Public},
		} {
			res := k.Do(ctx, a)
			require.Equal(t, abi.PermissionDenied, res.Code, "%s: %s", a.Kind, res.Message)
		}
	})
	require.NoError(t, k.CheckLedger(ctx))
}

// TestInstallNeedsRoomForExecutables: a kernel whose MaxModuleBytes is
// below the rights registry's size cannot hold genesis, and Install says
// which module did not fit.
func TestInstallNeedsRoomForExecutables(t *testing.T) {
	h, err := host.New(ctx, testworld.HostConfig())
	require.NoError(t, err)
	st := store.NewMem()
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: h, Clock: func() time.Time { return time.Unix(1_700_000_000, 0) },
		DefaultContract: genesis.DefaultContract, ContractTimeout: 10 * time.Second, MaxModuleBytes: 1 << 20,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = k.Close(ctx)
		_ = h.Close(ctx)
		_ = st.Close()
	})
	err = genesis.Install(ctx, k, genesis.Spec{})
	require.ErrorContains(t, err, "genesis: install genesis/rights: INVALID_ARGUMENT")
	for id, mod := range genesis.Executables() {
		require.LessOrEqual(t, len(mod), genesis.MinContentBytes, id)
	}
}
