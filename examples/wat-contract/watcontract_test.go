package watcontract_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/abi"
	watcontract "github.com/kernelhost/kernelhost/examples/wat-contract"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

var ctx = context.Background()

// world opens a kernel on an in-memory store with the package's wasm host and
// installs genesis with spec's principals.
func world(t *testing.T, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	return testworld.World(t, sharedHost, spec)
}

// Test_main freezes an artifact through the real kernel and wasm host: alice
// writes it under genesis/freeware, moves it to the frozen contract (which
// freeware lets its controller do), and from then on everyone may read it
// and nobody, alice included, may change it or its contract.
func Test_main(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice", Balance: 100}, {ID: "bob", Balance: 100}}})
	const frozen, notes = "alice/frozen", "notes/1"
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "alice", Target: frozen, Type: kernel.TypeContract, Content: watcontract.Frozen()},
		{Kind: kernel.KindWrite, Caller: "alice", Target: notes, Type: "data", Content: []byte("final version")},
		{Kind: kernel.KindWrite, Caller: "alice", Target: notes, Content: []byte("really final version")},
		{Kind: kernel.KindSetContract, Caller: "alice", Target: notes, Contract: frozen},
	} {
		res := k.Do(ctx, a)
		require.True(t, res.OK, "%s %s: %s", a.Kind, a.Target, res.Message)
	}

	tests := []struct {
		name   string
		action kernel.Action
		reason string // empty: allowed
	}{
		{"creator reads", kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: notes}, ""},
		{"anyone reads", kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: notes}, ""},
		{"creator writes", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: notes, Content: []byte("oops")}, watcontract.ReasonFrozen},
		{"creator edits", kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: notes, Metadata: map[string]string{"k": "v"}}, watcontract.ReasonFrozen},
		{"creator deletes", kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: notes}, watcontract.ReasonFrozen},
		{"creator thaws", kernel.Action{Kind: kernel.KindSetContract, Caller: "alice", Target: notes, Contract: genesis.Freeware}, watcontract.ReasonFrozen},
		{"stranger writes", kernel.Action{Kind: kernel.KindWrite, Caller: "bob", Target: notes, Content: []byte("mine")}, watcontract.ReasonFrozen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := k.Do(ctx, tc.action)
			require.NotNil(t, res.Decision, res.Message)
			if tc.reason == "" {
				require.True(t, res.OK, res.Message)
				require.Equal(t, "really final version", string(res.Content))
				require.Equal(t, abi.Decision{Allowed: true}, *res.Decision)
				return
			}
			require.Equal(t, abi.PermissionDenied, res.Code, res.Message)
			require.Equal(t, abi.Decision{Reason: tc.reason}, *res.Decision)
			require.Equal(t, fmt.Sprintf("%s of %q denied by %s: %s", tc.action.Kind, notes, frozen, tc.reason), res.Message)
		})
	}
	p, err := k.Principal(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, uint64(100), p.Balance, "reads are free")
}

// guest runs the module directly under wazero, as SPEC section 1 describes,
// for requests the kernel would never send. It is not safe for concurrent use.
type guest struct {
	mod          api.Module
	alloc, check api.Function
}

func newGuest(t *testing.T) *guest {
	t.Helper()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { require.NoError(t, r.Close(ctx)) })
	mod, err := r.Instantiate(ctx, watcontract.Frozen())
	require.NoError(t, err)
	res, err := mod.ExportedFunction("kh_abi_version").Call(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(abi.Version), res[0])
	return &guest{mod: mod, alloc: mod.ExportedFunction("kh_alloc"), check: mod.ExportedFunction("kh_check")}
}

// decide writes req into the guest's kh_alloc region, calls kh_check and
// decodes the decision.
func (g *guest) decide(t *testing.T, req []byte) abi.Decision {
	t.Helper()
	res, err := g.alloc.Call(ctx, api.EncodeU32(uint32(len(req))))
	require.NoError(t, err)
	ptr := api.DecodeU32(res[0])
	require.NotZero(t, ptr)
	require.True(t, g.mod.Memory().Write(ptr, req))
	res, err = g.check.Call(ctx, api.EncodeU32(ptr), api.EncodeU32(uint32(len(req))))
	require.NoError(t, err)
	out, ok := g.mod.Memory().Read(uint32(res[0]>>32), uint32(res[0]))
	require.True(t, ok)
	d, err := abi.DecodeDecision(out)
	require.NoError(t, err)
	return d
}

func encode(t *testing.T, r abi.Request) []byte {
	t.Helper()
	b, err := abi.AppendRequest(nil, &r)
	require.NoError(t, err)
	return b
}

// TestDecisions checks every action value, malformed requests, and a request
// large enough to make kh_alloc grow memory.
func TestDecisions(t *testing.T) {
	g := newGuest(t)
	for _, tc := range []struct {
		action abi.Action
		want   abi.Decision
	}{
		{abi.ActionRead, abi.Decision{Allowed: true}},
		{abi.ActionInvoke, abi.Decision{Allowed: true}},
		{abi.ActionWrite, abi.Decision{Reason: watcontract.ReasonFrozen}},
		{abi.ActionEdit, abi.Decision{Reason: watcontract.ReasonFrozen}},
		{abi.ActionDelete, abi.Decision{Reason: watcontract.ReasonFrozen}},
		{abi.ActionSetContract, abi.Decision{Reason: watcontract.ReasonFrozen}},
		{0, abi.Decision{Reason: watcontract.ReasonUnknown}},
		{7, abi.Decision{Reason: watcontract.ReasonUnknown}},
		{0xffff, abi.Decision{Reason: watcontract.ReasonUnknown}},
	} {
		t.Run(fmt.Sprintf("%d-%s", tc.action, tc.action), func(t *testing.T) {
			req := encode(t, abi.Request{Action: tc.action, TargetExists: true, Caller: "bob",
				TargetID: "notes/1", TargetType: "data", CreatedBy: "alice"})
			require.Equal(t, tc.want, g.decide(t, req))
		})
	}
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"empty", nil},
		{"short header", []byte("KHRQ\x01\x00\x01\x00")},
		{"bad magic", append([]byte("KHXQ\x01\x00\x01\x00"), make([]byte, 60)...)},
		{"version 2", append([]byte("KHRQ\x02\x00\x01\x00"), make([]byte, 60)...)},
	} {
		t.Run("malformed/"+tc.name, func(t *testing.T) {
			require.Equal(t, abi.Decision{Reason: watcontract.ReasonMalformed}, g.decide(t, tc.req))
		})
	}
	t.Run("large request grows memory", func(t *testing.T) {
		req := encode(t, abi.Request{Action: abi.ActionRead, Caller: "bob", TargetID: "x", TargetType: "executable",
			Method: "run", Args: bytes.Repeat([]byte{'a'}, 200_000)})
		require.Equal(t, abi.Decision{Allowed: true}, g.decide(t, req))
		require.GreaterOrEqual(t, g.mod.Memory().Size(), uint32(1024+len(req)))
	})
	t.Run("kh_alloc refuses what cannot fit", func(t *testing.T) {
		res, err := g.alloc.Call(ctx, api.EncodeU32(0xffff_fff0))
		require.NoError(t, err)
		require.Zero(t, api.DecodeU32(res[0]))
	})
}

// TestReproducible rebuilds frozen.wasm with the README's wat2wasm command and
// requires the committed bytes. Without wat2wasm it skips, unless
// KERNELHOST_REQUIRE_TOOLCHAIN=1 makes that a failure.
func TestReproducible(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		msg := "wat2wasm not found: install wabt (apt-get install -y wabt) to rebuild the contract"
		if os.Getenv("KERNELHOST_REQUIRE_TOOLCHAIN") == "1" {
			t.Fatalf("%s (KERNELHOST_REQUIRE_TOOLCHAIN=1)", msg)
		}
		t.Skipf("%s; set KERNELHOST_REQUIRE_TOOLCHAIN=1 to make this a failure", msg)
	}
	dst := filepath.Join(t.TempDir(), "frozen.wasm")
	out, err := exec.Command("wat2wasm", "-o", dst, "frozen.wat").CombinedOutput()
	require.NoError(t, err, "wat2wasm: %s", out)
	rebuilt, err := os.ReadFile(dst)
	require.NoError(t, err)
	committed := watcontract.Frozen()
	require.True(t, bytes.Equal(committed, rebuilt),
		"frozen.wasm differs from a rebuild (%d vs %d bytes): run `wat2wasm -o frozen.wasm frozen.wat` (or `make examples`) and commit", len(committed), len(rebuilt))
}
