package genesis_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

var ctx = context.Background()

// sharedHost runs the contracts of every world of the package's tests
// (world): each module, the 3.4 MB rights registry among them, is then
// instrumented and loaded once per run, not once per test (about a second
// of CPU each under the race detector).
var sharedHost *host.Host

func TestMain(m *testing.M) { os.Exit(testworld.RunWithHost(m, &sharedHost)) }

// world opens a kernel with the real wasm host and installs genesis.
func world(t *testing.T, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	return testworld.World(t, sharedHost, spec)
}

// TestGenesisContracts runs every rule of every genesis contract through the
// full kernel path with the real C modules under wazero.
func TestGenesisContracts(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice"}, {ID: "bob"}, {ID: "carol"}, {ID: "selfie"}}})
	do := func(a kernel.Action) kernel.Result { return k.Do(ctx, a) }
	mk := func(id, contract string, meta map[string]string) {
		res := do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: id, Type: "data", Contract: contract, Content: []byte("v"), Metadata: meta})
		require.True(t, res.OK, res.Message)
	}
	mk("fw", genesis.Freeware, nil)
	mk("fw-ctl", genesis.Freeware, map[string]string{"controller": "bob"})
	mk("priv", genesis.Private, nil)
	mk("pub", genesis.Public, nil)

	read := func(c, id string) kernel.Action { return kernel.Action{Kind: kernel.KindRead, Caller: c, Target: id} }
	wr := func(c, id string) kernel.Action {
		return kernel.Action{Kind: kernel.KindWrite, Caller: c, Target: id, Content: []byte("w-" + c)}
	}
	edit := func(c, id string) kernel.Action {
		return kernel.Action{Kind: kernel.KindEdit, Caller: c, Target: id, Metadata: map[string]string{"by": c}}
	}
	del := func(c, id string) kernel.Action { return kernel.Action{Kind: kernel.KindDelete, Caller: c, Target: id} }
	setc := func(c, id string) kernel.Action {
		return kernel.Action{Kind: kernel.KindSetContract, Caller: c, Target: id, Contract: genesis.Public}
	}
	tests := []struct {
		name string
		a    kernel.Action
		ok   bool
	}{
		{"freeware: stranger reads", read("carol", "fw"), true},
		{"freeware: stranger writes", wr("carol", "fw"), false},
		{"freeware: stranger edits", edit("carol", "fw"), false},
		{"freeware: stranger deletes", del("carol", "fw"), false},
		{"freeware: stranger sets contract", setc("carol", "fw"), false},
		{"freeware: creator writes", wr("alice", "fw"), true},
		{"freeware: controller metadata wins", wr("bob", "fw-ctl"), true},
		{"freeware: creator is not controller when metadata says so", wr("alice", "fw-ctl"), false},
		{"private: stranger reads", read("carol", "priv"), false},
		{"private: controller reads", read("alice", "priv"), true},
		{"public: stranger writes", wr("carol", "pub"), true},
		{"public: stranger edits", edit("carol", "pub"), true},
		{"public: stranger deletes", del("carol", "pub"), false},
		{"public: stranger sets contract", setc("carol", "pub"), false},
		{"public: controller deletes", del("alice", "pub"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := do(tc.a)
			if tc.ok {
				require.True(t, res.OK, res.Message)
				return
			}
			require.Equal(t, abi.PermissionDenied, res.Code, res.Message)
			require.NotEmpty(t, res.Decision.Reason)
		})
	}
}

// TestGenesisContractsAreProtected: nobody but genesis may change a genesis
// contract. Every write carries a valid contract module (one that would let
// anyone do anything, if it replaced freeware), so that it passes module
// preparation and the permission check is what stops it; mallory's write of
// the same module to an artifact she controls shows that it would pass.
func TestGenesisContractsAreProtected(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "mallory", Balance: 10}}})
	before := map[string]kernel.Result{}
	for id := range genesis.Contracts() {
		before[id] = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "mallory", Target: id})
		require.True(t, before[id].OK, before[id].Message)
	}
	// Writing a larger module needs disk of the creator, genesis, which has
	// none spare: mallory gives it some, so that the quota check cannot be
	// what stops her writes.
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindTransferQuota, Caller: "mallory", To: genesis.Principal,
		Resource: string(kernel.Disk), Amount: 100_000})
	require.True(t, res.OK, res.Message)
	// replacement is a valid contract module other than id's own.
	replacement := func(id string) []byte {
		if id == genesis.Public {
			return genesis.Contracts()[genesis.Freeware]
		}
		return genesis.Contracts()[genesis.Public]
	}
	for id := range genesis.Contracts() {
		for _, a := range []kernel.Action{
			{Kind: kernel.KindWrite, Caller: "mallory", Target: id, Content: replacement(id)},
			{Kind: kernel.KindWrite, Caller: "mallory", Target: id, Type: kernel.TypeContract, Content: replacement(id)},
			{Kind: kernel.KindEdit, Caller: "mallory", Target: id, Metadata: map[string]string{"controller": "mallory"}},
			{Kind: kernel.KindDelete, Caller: "mallory", Target: id},
			{Kind: kernel.KindSetContract, Caller: "mallory", Target: id, Contract: genesis.Public},
		} {
			res := k.Do(ctx, a)
			require.False(t, res.OK, "%s %s", a.Kind, id)
			require.Equal(t, abi.PermissionDenied, res.Code, "%s %s: %s", a.Kind, id, res.Message)
			require.NotEmpty(t, res.Decision.Reason, "%s %s: the contract denied it", a.Kind, id)
		}
	}
	// The same modules are valid: mallory may write them where she controls.
	for _, id := range []string{genesis.Freeware, genesis.Public} {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "mallory/" + id,
			Type: kernel.TypeContract, Content: replacement(id)})
		require.True(t, res.OK, "%s: %s", id, res.Message)
	}
	// Anyone may read a genesis contract's code: they are freeware. Nothing
	// changed.
	for id, mod := range genesis.Contracts() {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "mallory", Target: id})
		require.True(t, res.OK, res.Message)
		require.Equal(t, mod, res.Content)
		require.Equal(t, genesis.Freeware, res.Artifact.Contract)
		require.Equal(t, genesis.Principal, res.Artifact.CreatedBy)
		require.Equal(t, before[id].Artifact, res.Artifact, id)
	}
	require.NoError(t, k.CheckLedger(ctx))
}

func TestInstallTwice(t *testing.T) {
	k := world(t, genesis.Spec{})
	require.ErrorIs(t, genesis.Install(ctx, k, genesis.Spec{}), genesis.ErrInstalled)
}
