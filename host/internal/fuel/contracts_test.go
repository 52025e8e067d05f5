package fuel

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/abi"
)

// contractRequests is a table of requests for the genesis contracts: every
// action, by the creator, by a controller named in metadata, by others.
func contractRequests() []*abi.Request {
	base := func(action abi.Action, caller, createdBy string, meta ...abi.KV) *abi.Request {
		return &abi.Request{
			Action:         action,
			TargetExists:   true,
			Time:           1_700_000_000_000_000_000,
			Caller:         caller,
			TargetID:       "doc-1",
			TargetType:     "data",
			CreatedBy:      createdBy,
			AccessContract: "freeware",
			Size:           12,
			Revision:       3,
			Metadata:       meta,
			Config:         []abi.KV{{Key: "price", Value: "5"}},
		}
	}
	var reqs []*abi.Request
	for a := abi.Action(0); a <= 7; a++ {
		reqs = append(reqs,
			base(a, "alice", "alice"),
			base(a, "bob", "alice"),
			base(a, "bob", "alice", abi.KV{Key: "controller", Value: "bob"}),
			base(a, "alice", "alice", abi.KV{Key: "controller", Value: "bob"}, abi.KV{Key: "title", Value: "notes"}),
		)
	}
	inv := base(abi.ActionInvoke, "carol", "alice")
	inv.Method, inv.Args = "run", []byte("some arguments")
	self := base(abi.ActionWrite, "doc-1", "alice")
	return append(reqs, inv, self)
}

// contract is an instance of a contract, instrumented or not.
type contract struct {
	mod  api.Module
	fuel api.MutableGlobal // nil when not instrumented
}

// fixedRequest is the request whose fuel TestFuel_contractDeterministic
// reports: bob reads alice's artifact.
func fixedRequest() *abi.Request { return contractRequests()[5] }

// check runs one check per SPEC section 1 (kh_alloc, write, kh_check, read)
// with budget fuel for each of the two calls when instrumented, and returns
// the decision and the fuel kh_check used.
func (c contract) check(tb testing.TB, req *abi.Request, budget int64) (abi.Decision, int64) {
	tb.Helper()
	ctx := context.Background()
	b, err := abi.AppendRequest(nil, req)
	require.NoError(tb, err)
	if c.fuel != nil {
		c.fuel.Set(uint64(budget))
	}
	res, err := c.mod.ExportedFunction("kh_alloc").Call(ctx, uint64(len(b)))
	require.NoError(tb, err)
	ptr := uint32(res[0])
	require.NotZero(tb, ptr)
	require.True(tb, c.mod.Memory().Write(ptr, b))
	if c.fuel != nil {
		c.fuel.Set(uint64(budget))
	}
	res, err = c.mod.ExportedFunction("kh_check").Call(ctx, uint64(ptr), uint64(len(b)))
	require.NoError(tb, err)
	var used int64
	if c.fuel != nil {
		used = budget - int64(c.fuel.Get())
	}
	out, ok := c.mod.Memory().Read(uint32(res[0]>>32), uint32(res[0]))
	require.True(tb, ok)
	d, err := abi.DecodeDecision(out)
	require.NoError(tb, err)
	return d, used
}

// newContract instantiates wasm (with WASI, calling _initialize) and checks
// kh_abi_version.
func newContract(tb testing.TB, wasm []byte, instrumented bool) contract {
	tb.Helper()
	r := newRuntime(tb)
	c := contract{mod: instantiate(tb, r, compile(tb, r, wasm))}
	if instrumented {
		c.fuel = fuelGlobal(tb, c.mod)
		c.fuel.Set(1e9)
	}
	res, err := c.mod.ExportedFunction("kh_abi_version").Call(context.Background())
	require.NoError(tb, err)
	require.Equal(tb, uint64(abi.Version), res[0])
	return c
}

// shippedConfig is how the host instruments the contract at path: with
// write tracking, by pages for the Go contract's 3 MiB memory, by one range
// for the C contracts' 64 KiB (host/reset.go).
func shippedConfig(path string) Config {
	if path == freewareGo {
		return pagesConfig
	}
	return Config{TrackWrites: true}
}

// TestContracts_sameDecisions runs every genesis contract and the Go SDK
// contract, original and instrumented as the host instruments them, over a
// table of requests and compares the decisions.
func TestContracts_sameDecisions(t *testing.T) {
	for _, p := range contractPaths {
		t.Run(p[len("../../../"):], func(t *testing.T) {
			if p == freewareGo && testing.Short() {
				t.Skip("compiling the Go contract is slow")
			}
			in := readFile(t, p)
			out, _ := mustInstrument(t, in, shippedConfig(p))
			orig, inst := newContract(t, in, false), newContract(t, out, true)
			allowed := 0
			for i, req := range contractRequests() {
				want, _ := orig.check(t, req, 0)
				got, used := inst.check(t, req, 1e9)
				require.Equal(t, want, got, "request %d", i)
				require.Positive(t, used)
				if got.Allowed {
					allowed++
				}
			}
			require.Positive(t, allowed)
		})
	}
}

// TestFuel_contractDeterministic runs the fixed request 100 times, each on
// a fresh instance and again on one warm instance, and checks that kh_check
// uses the same fuel every time. It logs the number.
func TestFuel_contractDeterministic(t *testing.T) {
	for _, tc := range []struct{ name, path string }{{"freeware-c", freewareC}, {"freeware-go", freewareGo}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == freewareGo && testing.Short() {
				t.Skip("compiling the Go contract is slow")
			}
			out, _ := mustInstrument(t, readFile(t, tc.path), shippedConfig(tc.path))
			r := newRuntime(t)
			compiled := compile(t, r, out)
			req := fixedRequest()
			// _initialize (the Go runtime's start-up; none in C) runs on the
			// fuel the host sets before it, like any call.
			var initFuel []int64
			for i := 0; i < 3; i++ {
				mod, err := r.InstantiateModule(context.Background(), compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
				require.NoError(t, err)
				if f := mod.ExportedFunction("_initialize"); f != nil {
					m := metered{mod: mod, fuel: fuelGlobal(t, mod)}
					_, used, err := m.call("_initialize", 1e9)
					require.NoError(t, err)
					initFuel = append(initFuel, used)
				}
				require.NoError(t, mod.Close(context.Background()))
			}
			if len(initFuel) > 0 {
				require.Equal(t, []int64{initFuel[0], initFuel[0], initFuel[0]}, initFuel)
				t.Logf("%s: _initialize uses %d fuel", tc.name, initFuel[0])
			}
			var first int64
			warm := contract{mod: instantiate(t, r, compiled)}
			warm.fuel = fuelGlobal(t, warm.mod)
			for i := 0; i < 100; i++ {
				fresh := contract{mod: instantiate(t, r, compiled)}
				fresh.fuel = fuelGlobal(t, fresh.mod)
				_, used := fresh.check(t, req, 1e9)
				_, usedWarm := warm.check(t, req, 1e9)
				if i == 0 {
					first = used
					t.Logf("%s: kh_check(%s by %s) uses %d fuel", tc.name, req.Action, req.Caller, used)
				}
				require.Equal(t, first, used, "run %d", i)
				if tc.path == freewareC {
					// NB: the Go runtime's allocator and GC make a warm
					// instance's later calls differ from a fresh one's; the
					// C contract has no such state.
					require.Equal(t, first, usedWarm, "warm run %d", i)
				}
				require.NoError(t, fresh.mod.Close(context.Background()))
			}
		})
	}
}
