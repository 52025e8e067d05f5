package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/kernelhost/kernelhost/abi"
	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/internal/testenv"
)

// buildArgs is the README's build command, minus the output path.
var buildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid="}

// builtWith is the Go release that built the committed freeware.wasm; another
// release emits other bytes.
const builtWith = "go1.26.8"

// wantImports are the WASI functions the Go runtime and standard library
// import (SPEC section 1 allows them; the host makes them deterministic).
var wantImports = []string{
	"args_get", "args_sizes_get", "clock_time_get", "environ_get", "environ_sizes_get",
	"fd_close", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_prestat_dir_name", "fd_prestat_get",
	"fd_write", "poll_oneoff", "proc_exit", "random_get", "sched_yield",
}

// instance runs a contract module per SPEC section 1. It is not safe for
// concurrent use.
type instance struct {
	mod          api.Module
	alloc, check api.Function
	ptr, cap     uint32 // region from the last kh_alloc, reused while requests fit
}

// newInstance instantiates wasm in a fresh runtime with WASI, calls _initialize
// when exported, and checks kh_abi_version.
func newInstance(t *testing.T, wasm []byte) *instance {
	t.Helper()
	ctx := context.Background()
	// The shared compilation cache: the Go guest (2.7 MB) compiles once per
	// machine, not once per runtime (tens of seconds under -race).
	r := testenv.NewRuntime(ctx)
	t.Cleanup(func() { require.NoError(t, r.Close(ctx)) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	// NB: no start functions: a reactor is initialised with _initialize.
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	require.NoError(t, err)
	if initialize := mod.ExportedFunction("_initialize"); initialize != nil {
		_, err := initialize.Call(ctx)
		require.NoError(t, err)
	}
	res, err := mod.ExportedFunction("kh_abi_version").Call(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(abi.Version), res[0])
	return &instance{mod: mod, alloc: mod.ExportedFunction("kh_alloc"), check: mod.ExportedFunction("kh_check")}
}

// decide writes req into the guest, calls kh_check and decodes the decision.
func (g *instance) decide(t *testing.T, req []byte) abi.Decision {
	t.Helper()
	ctx := context.Background()
	if n := uint32(len(req)); n > g.cap || g.ptr == 0 {
		res, err := g.alloc.Call(ctx, api.EncodeU32(n))
		require.NoError(t, err)
		g.ptr, g.cap = api.DecodeU32(res[0]), n
		require.NotZero(t, g.ptr)
	}
	require.True(t, g.mod.Memory().Write(g.ptr, req))
	res, err := g.check.Call(ctx, api.EncodeU32(g.ptr), api.EncodeU32(uint32(len(req))))
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

func committed(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("freeware.wasm")
	require.NoError(t, err)
	return b
}

// Test_main loads the committed freeware.wasm and checks the freeware rule
// table, and that it decides exactly as the C freeware genesis contract.
func Test_main(t *testing.T) {
	goGuest := newInstance(t, committed(t))
	cGuest := newInstance(t, contracts.Freeware())
	ctrl := []abi.KV{{Key: "controller", Value: "alice"}}
	type who struct {
		name       string
		caller     string
		meta       []abi.KV
		controller bool
	}
	callers := []who{
		{"controller via metadata", "alice", ctrl, true},
		{"created_by fallback", "bob", nil, true},
		{"creator overridden by controller", "bob", ctrl, false},
		{"stranger", "mallory", ctrl, false},
		{"stranger without metadata", "mallory", nil, false},
	}
	tests := []struct {
		action abi.Action
		anyone bool // else controller only
	}{
		{abi.ActionRead, true},
		{abi.ActionInvoke, true},
		{abi.ActionWrite, false},
		{abi.ActionEdit, false},
		{abi.ActionDelete, false},
		{abi.ActionSetContract, false},
		{0, false},
		{99, false},
	}
	for _, tc := range tests {
		for _, c := range callers {
			t.Run(fmt.Sprintf("%d-%s/%s", tc.action, tc.action, c.name), func(t *testing.T) {
				var want abi.Decision
				switch {
				case !tc.action.Valid():
					want.Reason = "freeware: unknown action"
				case tc.anyone || c.controller:
					want.Allowed = true
				default:
					want.Reason = "freeware: only the controller may " + tc.action.String()
				}
				req := encode(t, abi.Request{Action: tc.action, TargetExists: true, Caller: c.caller,
					TargetID: "notes/1", TargetType: "data", CreatedBy: "bob", Metadata: c.meta})
				require.Equal(t, want, goGuest.decide(t, req))
				require.Equal(t, want, cGuest.decide(t, req), "the C freeware contract agrees")
			})
		}
	}
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"empty", nil},
		{"bad magic", []byte("KHXX0000")},
		{"truncated", encode(t, abi.Request{Action: abi.ActionRead, Caller: "alice"})[:50]},
		{"version 2", append([]byte("KHRQ\x02\x00"), make([]byte, 60)...)},
	} {
		t.Run("malformed/"+tc.name, func(t *testing.T) {
			want := abi.Decision{Reason: "malformed request"}
			require.Equal(t, want, goGuest.decide(t, tc.req))
			require.Equal(t, want, cGuest.decide(t, tc.req))
		})
	}
}

// TestImports checks that the Go guest imports only WASI functions, and
// which.
func TestImports(t *testing.T) {
	ctx := context.Background()
	r := testenv.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, committed(t))
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		require.Equal(t, wasi_snapshot_preview1.ModuleName, mod, name)
		seen[name] = true
	}
	var got []string
	for _, name := range wantImports {
		if seen[name] {
			got = append(got, name)
		}
	}
	require.Equal(t, wantImports, got)
	require.Len(t, seen, len(wantImports))
}

// TestReproducible rebuilds the contract with the README's command and
// requires the committed freeware.wasm byte for byte.
func TestReproducible(t *testing.T) {
	out := filepath.Join(t.TempDir(), "freeware.wasm")
	cmd := exec.Command("go", append(buildArgs, "-o", out, ".")...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", msg)
	rebuilt, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(committed(t), rebuilt),
		"freeware.wasm differs from a rebuild (%d vs %d bytes); it was built with %s, this test runs %s: rebuild with the README command and commit",
		len(committed(t)), len(rebuilt), builtWith, runtime.Version())
}
