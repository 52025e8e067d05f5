package hostile_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

// standingWorld is a genesis world on the real host with alice (100 scrip,
// a private note) and mallory (0 scrip), who deploys testdata/exe.wasm
// wherever a test says. exe's method "c" performs its args as a host call.
func standingWorld(t *testing.T) *kernel.Kernel {
	t.Helper()
	k := testworld.HostWorld(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: alice, Balance: 100}, {ID: mallory}}})
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: alice, Target: "alice/notes", Type: "data", Content: []byte("mine"), Contract: genesis.Freeware})
	require.True(t, res.OK, res.Message)
	return k
}

// hostCall invokes exe at id as caller with one host call of method "c".
func hostCall(k *kernel.Kernel, caller, id, call string) kernel.Result {
	return k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: id, Method: "c", Args: []byte(call)})
}

// TestNoStandingByArtifactID replays the squatting attacks of the first
// review: mallory deploys an executable under a principal's id ("alice",
// "genesis") and asks it to act as that principal, the old way (as_self)
// and the new way ("as"). Nothing about an id gives standing: every attempt
// fails and nothing changes. (The same attack over HTTP is in
// cmd/kernelhost/internal/server.)
func TestNoStandingByArtifactID(t *testing.T) {
	k := standingWorld(t)
	freeware0 := read(t, k, alice, genesis.Freeware)
	for _, id := range []string{alice, genesis.Principal} {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: id, Type: kernel.TypeExecutable, Content: readModule(t, "exe")})
		require.True(t, res.OK, "separate namespaces: the artifact id %q is free: %s", id, res.Message)
	}
	steal := `{"kind":"transfer","to":"mallory","amount":100}`
	overwrite := `{"kind":"write","target":"genesis/freeware","text":"pwned"}`
	for _, tc := range []struct {
		name, exe, call, want string
	}{
		{"as_self at id alice", alice, `{"action":` + steal + `,"as_self":true}`, `"error_code":"INVALID_ARGUMENT"`},
		{"as alice at id alice", alice, `{"action":` + steal + `,"as":"alice"}`, `"error_code":"NO_STANDING"`},
		{"as_self at id genesis", genesis.Principal, `{"action":` + overwrite + `,"as_self":true}`, `"error_code":"INVALID_ARGUMENT"`},
		{"as genesis at id genesis", genesis.Principal, `{"action":` + overwrite + `,"as":"genesis"}`, `"error_code":"NO_STANDING"`},
		{"plain call overwrites freeware", genesis.Principal, `{"action":` + overwrite + `}`, `"error_code":"PERMISSION_DENIED"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := hostCall(k, mallory, tc.exe, tc.call)
			require.Equal(t, abi.ExecutionFailed, res.Code, res.Message)
			require.Contains(t, res.Message, tc.want)
			require.Equal(t, uint64(100), balance(t, k, alice))
			require.Equal(t, uint64(0), balance(t, k, mallory))
			require.Equal(t, freeware0, read(t, k, alice, genesis.Freeware))
		})
	}
	// alice's notes stay hers: freeware was never replaced.
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "alice/notes", Content: []byte("x")})
	require.Equal(t, abi.PermissionDenied, res.Code, res.Message)
}

// TestAsSelfRequiresGrant: an executable acts as a principal only after that
// principal granted it standing itself, and only until it revokes it.
func TestAsSelfRequiresGrant(t *testing.T) {
	k := standingWorld(t)
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "m/exe", Type: kernel.TypeExecutable, Content: readModule(t, "exe")})
	require.True(t, res.OK, res.Message)
	pay := `{"action":{"kind":"transfer","to":"mallory","amount":7},"as":"alice"}`

	res = hostCall(k, mallory, "m/exe", pay)
	require.Equal(t, abi.ExecutionFailed, res.Code)
	require.Contains(t, res.Message, `"error_code":"NO_STANDING"`)

	// Only alice can grant standing over alice: mallory's grant is her own.
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindGrantStanding, Caller: mallory, Target: "m/exe"})
	require.True(t, res.OK, res.Message)
	res = hostCall(k, mallory, "m/exe", pay)
	require.Contains(t, res.Message, `"error_code":"NO_STANDING"`)
	require.Equal(t, uint64(100), balance(t, k, alice))

	// alice grants it: now the executable acts as her, for anyone who may
	// invoke it (the code is what she trusted).
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindGrantStanding, Caller: alice, Target: "m/exe"})
	require.True(t, res.OK, res.Message)
	res = hostCall(k, mallory, "m/exe", pay)
	require.True(t, res.OK, res.Message)
	require.Equal(t, uint64(93), balance(t, k, alice))

	// Revoked: refused again.
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRevokeStanding, Caller: alice, Target: "m/exe"})
	require.True(t, res.OK, res.Message)
	res = hostCall(k, mallory, "m/exe", pay)
	require.Contains(t, res.Message, `"error_code":"NO_STANDING"`)
	require.Equal(t, uint64(93), balance(t, k, alice))
	require.Equal(t, abi.NotFound, k.Do(ctx, kernel.Action{Kind: kernel.KindRevokeStanding, Caller: alice, Target: "m/exe"}).Code)

	// Standing is for executables only.
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindGrantStanding, Caller: alice, Target: "alice/notes"})
	require.Equal(t, abi.InvalidArgument, res.Code, res.Message)
	require.Equal(t, abi.NotFound, k.Do(ctx, kernel.Action{Kind: kernel.KindGrantStanding, Caller: alice, Target: "nope"}).Code)
	require.NoError(t, k.CheckLedger(ctx))
}

// TestStandingVoidedByCodeChange: a standing grant binds the executable's
// code and metadata as they were when granted. Rewriting the code (even to
// code that does the same) or editing its metadata voids it; granting again
// restores it.
func TestStandingVoidedByCodeChange(t *testing.T) {
	k := standingWorld(t)
	// mallory controls the executable; alice trusted version 1.
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "m/exe", Type: kernel.TypeExecutable, Content: readModule(t, "exe")})
	require.True(t, res.OK, res.Message)
	require.True(t, k.Do(ctx, kernel.Action{Kind: kernel.KindGrantStanding, Caller: alice, Target: "m/exe"}).OK)
	pay := `{"action":{"kind":"transfer","to":"mallory","amount":1},"as":"alice"}`
	require.True(t, hostCall(k, mallory, "m/exe", pay).OK)
	require.Equal(t, uint64(99), balance(t, k, alice))

	// A rewrite to other code (a custom section appended: same behaviour,
	// other bytes) voids the grant.
	v2 := append(readModule(t, "exe"), 0x00, 0x05, 0x03, 'k', 'h', '2', 0x01)
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "m/exe", Content: v2})
	require.True(t, res.OK, res.Message)
	res = hostCall(k, mallory, "m/exe", pay)
	require.Contains(t, res.Message, `"error_code":"NO_STANDING"`)
	require.Contains(t, res.Message, "changed since")

	// Back to version 1's bytes: the terms are those alice agreed to.
	require.True(t, k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "m/exe", Content: readModule(t, "exe")}).OK)
	require.True(t, hostCall(k, mallory, "m/exe", pay).OK)
	require.Equal(t, uint64(98), balance(t, k, alice))

	// A metadata edit is a change of configuration: void too.
	require.True(t, k.Do(ctx, kernel.Action{Kind: kernel.KindEdit, Caller: mallory, Target: "m/exe", Metadata: map[string]string{"mode": "drain"}}).OK)
	res = hostCall(k, mallory, "m/exe", pay)
	require.Contains(t, res.Message, `"error_code":"NO_STANDING"`)

	// Deleted and recreated under the same id: still void.
	require.True(t, k.Do(ctx, kernel.Action{Kind: kernel.KindDelete, Caller: mallory, Target: "m/exe"}).OK)
	require.True(t, k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "m/exe", Type: kernel.TypeExecutable, Content: v2}).OK)
	res = hostCall(k, mallory, "m/exe", pay)
	require.Contains(t, res.Message, `"error_code":"NO_STANDING"`)

	// Standings shows the grant, and that it no longer holds.
	sts, err := k.Standings(ctx, alice)
	require.NoError(t, err)
	require.Len(t, sts, 1)
	require.Equal(t, "m/exe", sts[0].Executable)
	require.False(t, sts[0].Valid)

	// alice agrees to the new terms: it works again.
	require.True(t, k.Do(ctx, kernel.Action{Kind: kernel.KindGrantStanding, Caller: alice, Target: "m/exe"}).OK)
	sts, err = k.Standings(ctx, alice)
	require.NoError(t, err)
	require.True(t, sts[0].Valid)
	require.True(t, hostCall(k, mallory, "m/exe", pay).OK)
	require.Equal(t, uint64(97), balance(t, k, alice))
	require.NoError(t, k.CheckLedger(ctx))
}

func balance(t *testing.T, k *kernel.Kernel, id string) uint64 {
	t.Helper()
	p, err := k.Principal(ctx, id)
	require.NoError(t, err)
	return p.Balance
}

func read(t *testing.T, k *kernel.Kernel, caller, id string) string {
	t.Helper()
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: id})
	require.True(t, res.OK, res.Message)
	return res.Artifact.Hash
}
