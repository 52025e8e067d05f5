package host_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/host"
)

// TestStatefulContractIsDeterministic: a contract that counts its calls in
// memory and in a global, and allows only the first call of an instance
// (testdata/counter.wat; the Go guest's caller "counter" counts in memory),
// gives the same decision on 100 identical requests: sequential, concurrent
// over a pool of 4, each on a new instance, and on a fresh host. Before the
// reset the second call of every instance was denied.
func TestStatefulContractIsDeterministic(t *testing.T) {
	t.Parallel() // its hosts are its own; Go guests are slow under -race
	ctx := context.Background()
	modules := []struct {
		name string
		wasm func(testing.TB) []byte
		req  *abi.Request
	}{
		{"wat", func(tb testing.TB) []byte { return readWasm(tb, "counter") }, request(abi.ActionRead, "bob", "alice")},
		{"go", buildGoGuest, request(abi.ActionRead, "counter", "alice")},
	}
	for _, mod := range modules {
		t.Run(mod.name, func(t *testing.T) {
			t.Parallel() // hosts of its own
			wasm := mod.wasm(t)
			decide := func(h *host.Host, hash [32]byte) abi.Decision {
				d, _, err := h.Evaluate(ctx, hash, mod.req, abi.Limits{})
				require.NoError(t, err)
				return d
			}
			h := newHost(t, host.Config{MaxInstancesPerModule: 4, CacheDir: goCache()})
			hash, err := h.Prepare(ctx, wasm)
			require.NoError(t, err)
			first := decide(h, hash)
			require.True(t, first.Allowed, "the first call of an instance is allowed: %+v", first)
			for i := 0; i < 30; i++ {
				require.Equal(t, first, decide(h, hash), "sequential call %d", i)
			}
			var wg sync.WaitGroup
			got := make([]abi.Decision, 50)
			errs := make([]error, len(got))
			for i := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i], _, errs[i] = h.Evaluate(ctx, hash, mod.req, abi.Limits{})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				require.NoError(t, err, "concurrent call %d", i)
			}
			for i, d := range got {
				require.Equal(t, first, d, "concurrent call %d", i)
			}
			// Every call on another instance: a pool that keeps none.
			cold := newHost(t, host.Config{MaxPoolBytes: 1, CacheDir: goCache()})
			chash, err := cold.Prepare(ctx, wasm)
			require.NoError(t, err)
			for i := 0; i < 20; i++ {
				require.Equal(t, first, decide(cold, chash), "call %d on a new instance", i)
			}
			require.GreaterOrEqual(t, cold.Stats().Modules[chash].Instantiated, uint64(20))

			fresh := newHost(t, host.Config{CacheDir: goCache()})
			fhash, err := fresh.Prepare(ctx, wasm)
			require.NoError(t, err)
			require.Equal(t, first, decide(fresh, fhash), "a fresh host decides alike")
		})
	}
}

// fuelRun is one module and request of TestFuelDeterministic.
type fuelRun struct {
	name string
	wasm func(testing.TB) []byte
	// call runs one call and returns its fuel.
	call func(t *testing.T, h *host.Host, hash [32]byte) uint64
}

func checkFuel(req *abi.Request) func(*testing.T, *host.Host, [32]byte) uint64 {
	return func(t *testing.T, h *host.Host, hash [32]byte) uint64 {
		d, use, err := h.Evaluate(context.Background(), hash, req, abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed, "%+v", d)
		return use.Fuel
	}
}

// quotaReply answers the rights registry's quota query.
func quotaReply([]byte) []byte {
	return []byte(`{"ok":true,"quotas":[{"resource":"cpu_rate","quota":1000,"used":10,"available":990}]}`)
}

func getQuota(t *testing.T, h *host.Host, hash [32]byte) uint64 {
	req := invokeReq("get_quota", `{"resource":"cpu_rate"}`)
	res, use, err := h.Invoke(context.Background(), hash, req, abi.Limits{}, &fakeCalls{reply: quotaReply})
	require.NoError(t, err)
	require.True(t, res.OK, "%s", res.Output)
	require.True(t, strings.Contains(string(res.Output), `"available":990`), "%s", res.Output)
	return use.Fuel
}

// TestFuelDeterministic: 300 identical calls of the C freeware contract,
// the Go SDK contract and the rights registry's get_quota each use exactly
// one fuel amount, on a warm pool (one instance, sequential calls), a cold
// pool (every call on a new instance) and fresh hosts. Before the
// reset, get_quota used 79 distinct amounts (1,817,994 fuel first, ~207k
// later).
func TestFuelDeterministic(t *testing.T) {
	t.Parallel() // its hosts are its own; Go guests are slow under -race
	goWasm := func(tb testing.TB) []byte {
		b, err := os.ReadFile("../examples/go-contract/freeware.wasm")
		require.NoError(tb, err)
		return b
	}
	runs := []fuelRun{
		{"c-freeware", func(testing.TB) []byte { return contracts.Freeware() }, checkFuel(checkRequest())},
		{"go-sdk-freeware", goWasm, checkFuel(checkRequest())},
		{"rights-get_quota", func(testing.TB) []byte { return contracts.RightsRegistry() }, getQuota},
	}
	ctx := context.Background()
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			// Each run has hosts of its own: they run side by side.
			t.Parallel()
			wasm := run.wasm(t)
			seen := map[uint64]int{}
			// One compilation cache for the test's hosts (goCache): the Go
			// modules compile once, each host still makes its own
			// instances.
			cache := goCache()
			// Warm: one instance, 265 sequential calls.
			h := newHost(t, host.Config{MaxInstancesPerModule: 1, CacheDir: cache})
			hash, err := h.Prepare(ctx, wasm)
			require.NoError(t, err)
			for i := 0; i < 265; i++ {
				seen[run.call(t, h, hash)]++
			}
			require.Equal(t, uint64(1), h.Stats().Modules[hash].Instantiated)
			// Cold: a pool that keeps no instance (MaxPoolBytes 1), so that
			// each of 30 calls runs on a new one.
			cold := newHost(t, host.Config{MaxPoolBytes: 1, CacheDir: cache})
			chash, err := cold.Prepare(ctx, wasm)
			require.NoError(t, err)
			for i := 0; i < 30; i++ {
				seen[run.call(t, cold, chash)]++
			}
			require.GreaterOrEqual(t, cold.Stats().Modules[chash].Instantiated, uint64(30))
			// Fresh hosts: the first call of each.
			for i := 0; i < 5; i++ {
				fh, err := host.New(ctx, host.Config{CacheDir: cache})
				require.NoError(t, err)
				fhash, err := fh.Prepare(ctx, wasm)
				require.NoError(t, err)
				seen[run.call(t, fh, fhash)]++
				require.NoError(t, fh.Close(ctx))
			}
			require.Len(t, seen, 1, "300 identical calls, one fuel amount: %v", seen)
		})
	}
}

// TestNoStaleRequestBytes: a contract that reads its request region past
// the request's length (testdata/stale.wat) sees only zeros after a longer
// request on the same instance.
func TestNoStaleRequestBytes(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{MaxInstancesPerModule: 1})
	hash := prepare(t, h, "stale")
	short := request(abi.ActionRead, "bob", "alice")
	long := request(abi.ActionRead, "bob", "alice")
	long.Config = []abi.KV{{Key: "padding", Value: strings.Repeat("x", 2000)}}
	for i, req := range []*abi.Request{short, long, short, long, long, short} {
		d, _, err := h.Evaluate(ctx, hash, req, abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed, "call %d saw bytes of an earlier request past its own", i)
	}
	require.Equal(t, 1, h.Stats().Modules[hash].Live, "one instance served every call")
}

// TestFarApartPagesRestored: a contract with a 512 KiB memory
// (testdata/farpages.wat) that allows a call only when the bytes it is
// about to write are zero, then writes them, is allowed on every call of
// one instance: two bytes 350 KiB apart, and one byte in each of 300 pages
// (more than the guest's page list holds), are both restored. The restore
// copies the pages written (1 KiB each), not the range between them; with
// the reset off the second call is denied.
func TestFarApartPagesRestored(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{MaxInstancesPerModule: 1})
	hash := prepare(t, h, "farpages")
	require.True(t, host.TracksPages(h, hash), "a 512 KiB memory is tracked by pages")
	short := request(abi.ActionRead, "bob", "alice")
	long := request(abi.ActionRead, "bob", "alice")
	long.Config = []abi.KV{{Key: "padding", Value: strings.Repeat("x", 300)}}
	reqBytes := func(req *abi.Request) uint64 {
		b, err := abi.AppendRequest(nil, req)
		require.NoError(t, err)
		return uint64(len(b))
	}
	for i, tc := range []struct {
		req *abi.Request
		// the most the restore before the next call may copy: the
		// pages this call wrote (the decision's, and those the length
		// selects), plus the request the host wrote
		most uint64
	}{
		{short, 3*(1024+7) + reqBytes(short)},
		{long, 301*(1024+7) + reqBytes(long)},
		{short, 3*(1024+7) + reqBytes(short)},
		{short, 3*(1024+7) + reqBytes(short)},
		{long, 301*(1024+7) + reqBytes(long)},
		{long, 301*(1024+7) + reqBytes(long)},
		{short, 3*(1024+7) + reqBytes(short)},
	} {
		d, _, err := h.Evaluate(ctx, hash, tc.req, abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed, "call %d saw a byte an earlier call wrote", i)
		// A call to restore what this one wrote.
		_, _, err = h.Evaluate(ctx, hash, short, abi.Limits{})
		require.NoError(t, err)
		got, ok := host.RestoredBytes(h, hash)
		require.True(t, ok)
		require.LessOrEqual(t, got, tc.most, "call %d: the restore copies the pages written, not the range between them", i)
		require.Greater(t, got, tc.most-2*(1024+7), "call %d: every page written is copied", i)
	}
	st := h.Stats().Modules[hash]
	require.Equal(t, uint64(1), st.Instantiated, "one instance served every call")

	off := newHost(t, host.Config{MaxInstancesPerModule: 1})
	host.SetNoReset(off, true)
	ohash := prepare(t, off, "farpages")
	d, _, err := off.Evaluate(ctx, ohash, short, abi.Limits{})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, _, err = off.Evaluate(ctx, ohash, short, abi.Limits{})
	require.NoError(t, err)
	require.False(t, d.Allowed, "without the reset the second call sees the first's bytes")
}

// TestTrackingChosenByMemory: a module whose memory is at most 128 KiB
// once initialised has its writes tracked by one range, a larger one by
// pages, also when it declares a small memory and grows it during
// initialisation (instrumented again: preparing it reports the fuel of one
// initialisation, the same as its twin that declares a large memory), and
// every call of each is restored.
func TestTrackingChosenByMemory(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{MaxInstancesPerModule: 1})
	tests := []struct {
		name  string
		wasm  []byte
		pages bool
	}{
		{"allow, 128 KiB", readWasm(t, "allow"), false},
		{"C freeware, 64 KiB", contracts.Freeware(), false},
		{"init_moderate, 192 KiB", readWasm(t, "init_moderate"), true},
		{"grow_init_small, 64 KiB grown to 256 KiB", readWasm(t, "grow_init_small"), true},
		{"grow_init_big, 192 KiB grown to 384 KiB", readWasm(t, "grow_init_big"), true},
	}
	fuel := map[string]uint64{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hash, used, err := h.PrepareMetered(ctx, tc.wasm)
			require.NoError(t, err)
			fuel[tc.name] = used
			require.Equal(t, tc.pages, host.TracksPages(h, hash))
			for i := 0; i < 3; i++ {
				d, _, err := h.Evaluate(ctx, hash, request(abi.ActionRead, "bob", "alice"), abi.Limits{})
				require.NoError(t, err)
				require.True(t, d.Allowed, "call %d", i)
			}
		})
	}
	require.NotZero(t, fuel[tests[3].name])
	require.Equal(t, fuel[tests[4].name], fuel[tests[3].name], "one initialisation's fuel, not two")
}
