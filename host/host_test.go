package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

func readWasm(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	require.NoError(tb, err)
	return b
}

// newHost returns a Host closed at the end of the test.
// newHost opens a Host for a test. Tests that do not test deadlines get a
// generous one: under -race on a loaded 2-core machine, 100ms of wall clock
// can pass before a few instructions run.
func newHost(tb testing.TB, cfg host.Config) *host.Host {
	tb.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	h, err := host.New(context.Background(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, h.Close(context.Background())) })
	return h
}

// goCache is the compilation cache directory of the tests that prepare Go
// guests (modules of a few MB, which take tens of seconds of CPU each to
// compile under the race detector): shared by every test process on the
// machine (testenv.CacheDir), so that each module compiles once. Every host
// still makes its own instances; a fresh host is a fresh runtime whose
// compiled code comes from the cache, as a restarted server's does.
func goCache() string { return testenv.CacheDir() }

func prepare(tb testing.TB, h *host.Host, name string) [32]byte {
	tb.Helper()
	hash, err := h.Prepare(context.Background(), readWasm(tb, name))
	require.NoError(tb, err)
	return hash
}

func request(action abi.Action, caller, createdBy string) *abi.Request {
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
		Metadata:       []abi.KV{{Key: "title", Value: "notes"}},
	}
}

// behave returns a request that makes testdata/behave.wat do mode.
func behave(mode uint32) *abi.Request {
	r := request(abi.ActionRead, "alice", "alice")
	r.Depth = mode
	return r
}

func codeOf(err error) abi.Code {
	var c interface{ Code() abi.Code }
	if errors.As(err, &c) {
		return c.Code()
	}
	return abi.OK
}

func TestEvaluate_freeware(t *testing.T) {
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "freeware")
	tests := []struct {
		name    string
		req     *abi.Request
		allowed bool
		reason  string
	}{
		{"read by anyone", request(abi.ActionRead, "bob", "alice"), true, ""},
		{"invoke by anyone", request(abi.ActionInvoke, "bob", "alice"), true, ""},
		{"write by creator", request(abi.ActionWrite, "alice", "alice"), true, ""},
		{"delete by creator", request(abi.ActionDelete, "alice", "alice"), true, ""},
		{"write by other", request(abi.ActionWrite, "bob", "alice"), false, "caller is not the creator"},
		{"edit by prefix of creator", request(abi.ActionEdit, "ali", "alice"), false, "caller is not the creator"},
		{"set_contract by same-length other", request(abi.ActionSetContract, "alicf", "alice"), false, "caller is not the creator"},
		{"unknown action", request(abi.Action(99), "alice", "alice"), false, "unknown action"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, use, err := h.Evaluate(context.Background(), hash, tc.req, abi.Limits{})
			require.NoError(t, err)
			require.Equal(t, abi.Decision{Allowed: tc.allowed, Reason: tc.reason}, d)
			require.Equal(t, uint64(2*65536), use.MemoryBytes)
			require.Positive(t, use.Fuel, "metered calls report fuel used")
		})
	}
}

func TestEvaluate_poolReuse(t *testing.T) {
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "allow")
	for i := 0; i < 3; i++ {
		d, _, err := h.Evaluate(context.Background(), hash, request(abi.ActionRead, "a", "b"), abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		st := h.Stats().Modules[hash]
		require.Equal(t, host.ModuleStats{Live: 1, Idle: 1, Instantiated: 1, Peak: 1, SnapshotBytes: 2 * 65536}, st, "call %d", i)
	}
}

func TestEvaluate_failures(t *testing.T) {
	tests := []struct {
		name     string
		cfg      host.Config
		req      *abi.Request
		lim      abi.Limits
		sentinel error
		code     abi.Code
		msg      string
	}{
		{"trap", host.Config{}, behave(1), abi.Limits{}, host.ErrTrap, abi.ContractFailed, "unreachable"},
		{"infinite loop, unmetered", host.Config{Timeout: 50 * time.Millisecond, DisableMetering: true}, behave(2), abi.Limits{}, host.ErrTimeout, abi.ContractTimeout, "deadline"},
		{"infinite loop, unmetered, limit shortens timeout", host.Config{DisableMetering: true}, behave(2), abi.Limits{Timeout: 20 * time.Millisecond}, host.ErrTimeout, abi.ContractTimeout, "20ms"},
		{"infinite loop, metered", host.Config{CheckFuel: 1_000_000}, behave(2), abi.Limits{}, host.ErrOutOfFuel, abi.OutOfFuel, "budget of 1000000 fuel"},
		{"infinite loop, metered, limit lowers the budget", host.Config{}, behave(2), abi.Limits{Fuel: 5000}, host.ErrOutOfFuel, abi.OutOfFuel, "budget of 5000 fuel"},
		{"memory.grow bomb", host.Config{MemoryLimitBytes: 1 << 20}, behave(3), abi.Limits{}, host.ErrMemoryLimit, abi.ContractFailed, "1048576 bytes"},
		{"decision pointer out of memory", host.Config{}, behave(4), abi.Limits{}, host.ErrBadDecision, abi.ContractFailed, "outside memory"},
		{"oversized decision", host.Config{}, behave(5), abi.Limits{}, host.ErrBadDecision, abi.ContractFailed, "2000 bytes > 1308"},
		{"malformed decision", host.Config{}, behave(6), abi.Limits{}, host.ErrBadDecision, abi.ContractFailed, "bad magic"},
		{"memory over the call's limit", host.Config{}, behave(3), abi.Limits{MemoryBytes: 4 * 65536}, host.ErrMemoryLimit, abi.ContractFailed, "the limit is 262144"},
		{"decision runs past the end of memory", host.Config{}, behave(8), abi.Limits{}, host.ErrBadDecision, abi.ContractFailed, "outside memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, tc.cfg)
			hash := prepare(t, h, "behave")
			start := time.Now()
			_, _, err := h.Evaluate(context.Background(), hash, tc.req, tc.lim)
			require.ErrorIs(t, err, tc.sentinel)
			require.Equal(t, tc.code, codeOf(err))
			require.ErrorContains(t, err, tc.msg)
			require.Less(t, time.Since(start), 2*time.Second)

			// The failed instance was discarded; the next call gets a fresh one.
			d, _, err := h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			st := h.Stats().Modules[hash]
			require.Equal(t, 1, st.Live)
			require.Equal(t, uint64(1), st.Discarded)
			require.Equal(t, uint64(2), st.Instantiated)
		})
	}
}

func TestEvaluate_timeoutIsPrompt(t *testing.T) {
	h := newHost(t, host.Config{Timeout: 50 * time.Millisecond, DisableMetering: true})
	hash := prepare(t, h, "behave")
	start := time.Now()
	_, _, err := h.Evaluate(context.Background(), hash, behave(2), abi.Limits{})
	elapsed := time.Since(start)
	require.ErrorIs(t, err, host.ErrTimeout)
	require.GreaterOrEqual(t, elapsed, 50*time.Millisecond)
	require.Less(t, elapsed, 500*time.Millisecond)
}

func TestEvaluate_callerDeadline(t *testing.T) {
	// Deadlines interrupt only unmetered guests; metered ones stop on fuel.
	h := newHost(t, host.Config{DisableMetering: true})
	hash := prepare(t, h, "behave")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, _, err := h.Evaluate(ctx, hash, behave(2), abi.Limits{})
	require.ErrorIs(t, err, host.ErrTimeout)

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, _, err = h.Evaluate(cctx, hash, behave(0), abi.Limits{})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, abi.Unavailable, codeOf(err))
}

func TestEvaluate_alloc(t *testing.T) {
	tests := []struct{ name, module string }{
		{"kh_alloc returns 0", "alloc_zero"},
		{"kh_alloc returns a region past memory", "alloc_oob"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, host.Config{})
			hash := prepare(t, h, tc.module)
			_, _, err := h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
			require.ErrorIs(t, err, host.ErrBadAlloc)
			require.Equal(t, abi.ContractFailed, codeOf(err))
		})
	}
}

func TestEvaluate_requestTooLargeForGuest(t *testing.T) {
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "allow")
	req := request(abi.ActionInvoke, "a", "b")
	req.Args = make([]byte, 70_000) // allow.wat's region is 64 KiB
	_, _, err := h.Evaluate(context.Background(), hash, req, abi.Limits{})
	require.ErrorIs(t, err, host.ErrBadAlloc)
}

func TestEvaluate_invalidRequest(t *testing.T) {
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "allow")
	req := request(abi.ActionRead, strings.Repeat("x", abi.MaxIDLen+1), "b")
	_, _, err := h.Evaluate(context.Background(), hash, req, abi.Limits{})
	require.ErrorIs(t, err, abi.ErrTooLarge)
	require.Equal(t, abi.InvalidArgument, codeOf(err))
	require.Equal(t, 1, h.Stats().Modules[hash].Live, "the instance is kept")
}

func TestEvaluate_notPrepared(t *testing.T) {
	h := newHost(t, host.Config{})
	_, _, err := h.Evaluate(context.Background(), [32]byte{1}, behave(0), abi.Limits{})
	require.ErrorIs(t, err, host.ErrNotPrepared)
}

func TestEvaluate_closed(t *testing.T) {
	h, err := host.New(context.Background(), host.Config{})
	require.NoError(t, err)
	hash := prepare(t, h, "allow")
	require.NoError(t, h.Close(context.Background()))
	require.NoError(t, h.Close(context.Background()), "second Close is a no-op")
	_, _, err = h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
	require.ErrorIs(t, err, host.ErrClosed)
	require.Equal(t, abi.Unavailable, codeOf(err))
	_, err = h.Prepare(context.Background(), readWasm(t, "allow"))
	require.ErrorIs(t, err, host.ErrClosed)
	require.ErrorIs(t, h.Validate(context.Background(), readWasm(t, "allow")), host.ErrClosed)
}

func TestEvaluate_closeWhileRunning(t *testing.T) {
	h, err := host.New(context.Background(), host.Config{Timeout: 5 * time.Second, DisableMetering: true})
	require.NoError(t, err)
	hash := prepare(t, h, "behave")
	errc := make(chan error, 1)
	go func() {
		_, _, err := h.Evaluate(context.Background(), hash, behave(2), abi.Limits{})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, h.Close(context.Background()))
	select {
	case err := <-errc:
		require.ErrorIs(t, err, host.ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not stop a running call")
	}
}

func TestEvaluate_memoryLimitReplacesGrownInstance(t *testing.T) {
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "behave")
	// Unlimited call grows the warm instance to 6 pages.
	_, use, err := h.Evaluate(context.Background(), hash, behave(7), abi.Limits{})
	require.NoError(t, err)
	require.Equal(t, uint64(6*65536), use.MemoryBytes)
	// A capped caller does not pay for that growth: it gets a fresh instance.
	_, use, err = h.Evaluate(context.Background(), hash, behave(0), abi.Limits{MemoryBytes: 4 * 65536})
	require.NoError(t, err)
	require.Equal(t, uint64(2*65536), use.MemoryBytes)
}

func TestEvaluate_deterministicWASI(t *testing.T) {
	reason := func() string {
		h := newHost(t, host.Config{})
		hash := prepare(t, h, "wasi")
		d, _, err := h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		// A warm instance sees the same clock and random stream again.
		d2, _, err := h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
		require.NoError(t, err)
		require.Equal(t, d, d2)
		return d.Reason
	}
	r1, r2 := reason(), reason()
	require.Equal(t, r1, r2)
	require.Len(t, r1, 16)
	clock := uint64(0)
	for i := 0; i < 8; i++ {
		clock |= uint64(r1[8+i]) << (8 * i)
	}
	require.Equal(t, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, int64(clock)).UTC())
}

// TestEvaluate_hammer runs one module from 16 goroutines: every decision must
// match the request it answers.
func TestEvaluate_hammer(t *testing.T) {
	h := newHost(t, host.Config{MaxInstancesPerModule: 4})
	hash := prepare(t, h, "freeware")
	const goroutines, calls = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				caller := fmt.Sprintf("p%d-%d", g, i)
				createdBy := caller
				want := true
				if (g+i)%3 == 0 {
					createdBy = caller + "x"
					want = false
				}
				d, _, err := h.Evaluate(context.Background(), hash, request(abi.ActionWrite, caller, createdBy), abi.Limits{})
				if err != nil {
					errs <- err
					return
				}
				if d.Allowed != want {
					errs <- fmt.Errorf("goroutine %d call %d: allowed=%v, want %v", g, i, d.Allowed, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := h.Stats().Modules[hash]
	require.LessOrEqual(t, st.Live, 4)
	require.Equal(t, st.Live, st.Idle)
	require.Zero(t, st.Discarded)
}

func TestEvaluate_waitIsContextAware(t *testing.T) {
	h := newHost(t, host.Config{MaxInstancesPerModule: 1, Timeout: time.Second, DisableMetering: true})
	hash := prepare(t, h, "behave")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = h.Evaluate(context.Background(), hash, behave(2), abi.Limits{Timeout: 300 * time.Millisecond})
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := h.Evaluate(ctx, hash, behave(0), abi.Limits{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, host.ErrTimeout)
	<-done
	d, _, err := h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
	require.NoError(t, err)
	require.True(t, d.Allowed)
}

func TestPrepare_idempotent(t *testing.T) {
	h := newHost(t, host.Config{})
	wasm := readWasm(t, "allow")
	h1, err := h.Prepare(context.Background(), wasm)
	require.NoError(t, err)
	h2, err := h.Prepare(context.Background(), wasm)
	require.NoError(t, err)
	require.Equal(t, h1, h2)
	require.Len(t, h.Stats().Modules, 1)
	// Validate of a prepared module's bytes must not disturb it.
	require.NoError(t, h.Validate(context.Background(), wasm))
	_, _, err = h.Evaluate(context.Background(), h1, behave(0), abi.Limits{})
	require.NoError(t, err)
}

func TestPrepare_cacheDir(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		h := newHost(t, host.Config{CacheDir: dir})
		hash := prepare(t, h, "freeware")
		d, _, err := h.Evaluate(context.Background(), hash, request(abi.ActionRead, "a", "b"), abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		module string
		cfg    host.Config
		msg    string // empty: valid
	}{
		{"allow", "allow", host.Config{}, ""},
		{"freeware", "freeware", host.Config{}, ""},
		{"wasi subset", "wasi", host.Config{}, ""},
		{"filesystem import", "import_fs", host.Config{}, `import "wasi_snapshot_preview1"."path_open" is not allowed: contracts get no filesystem`},
		{"env import", "import_env", host.Config{}, `import "env"."abort" is not allowed: contracts may import only from "kernel" and "wasi_snapshot_preview1"`},
		{"unknown kernel import", "import_kernel", host.Config{}, `import "kernel"."get_balance" is not allowed`},
		{"imported memory", "import_memory", host.Config{}, `import "env"."memory" is a memory: a contract must define and export its own memory`},
		{"missing kh_check", "no_check", host.Config{}, `missing export "kh_check"`},
		{"missing memory", "no_memory", host.Config{}, `missing export "memory"`},
		{"wrong signature", "wrong_sig", host.Config{}, `export "kh_check" has type (i32, i32) -> (i32), want (i32, i32) -> (i64)`},
		{"wrong abi version", "bad_version", host.Config{}, "kh_abi_version returned 2, this host speaks ABI version 1"},
		{"command module", "command", host.Config{}, `exports "_start": build a reactor`},
		{"initial memory too large", "big_memory", host.Config{}, "memory declares 1024 initial pages"},
		{"module too large", "freeware", host.Config{MaxModuleBytes: 100}, "the limit is 100"},
		{"too many functions", "freeware", host.Config{MaxFunctions: 2}, "module has 5 functions, the limit is 2"},
		{"_initialize loops, unmetered", "loop_init", host.Config{InitTimeout: 50 * time.Millisecond, DisableMetering: true}, "initialising the module failed"},
		{"start function loops, unmetered", "loop_start", host.Config{InitTimeout: 50 * time.Millisecond, DisableMetering: true}, "ran past its 50ms deadline"},
		{"_initialize loops, metered", "loop_init", host.Config{InitFuel: 100_000}, "ran out of fuel: _initialize used its 100000 fuel"},
		{"start function loops, metered", "loop_start", host.Config{InitFuel: 100_000}, "ran out of fuel: the start function used its 100000 fuel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, tc.cfg)
			start := time.Now()
			err := h.Validate(context.Background(), readWasm(t, tc.module))
			require.Less(t, time.Since(start), 2*time.Second)
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, host.ErrInvalidModule)
			require.Equal(t, abi.ContractInvalid, codeOf(err))
			require.ErrorContains(t, err, tc.msg)
			// Prepare rejects what Validate rejects and keeps nothing.
			_, err = h.Prepare(context.Background(), readWasm(t, tc.module))
			require.ErrorIs(t, err, host.ErrInvalidModule)
			require.Empty(t, h.Stats().Modules)
		})
	}
}

func TestValidate_garbage(t *testing.T) {
	h := newHost(t, host.Config{})
	for _, b := range [][]byte{nil, []byte("hello"), []byte("\x00asm\x02\x00\x00\x00"), []byte("\x00asm\x01\x00\x00\x00\x01\xff")} {
		err := h.Validate(context.Background(), b)
		require.ErrorIs(t, err, host.ErrInvalidModule)
	}
}

// TestTestdataReproducible rebuilds every testdata/*.wat with wat2wasm and
// compares the result with the committed .wasm.
func TestTestdataReproducible(t *testing.T) {
	testenv.CheckWATs(t, "testdata", nil, "run make testdata")
}

// TestValidate_allocationBombs feeds tiny modules whose counts would make the
// decoder allocate gigabytes: they must be refused quickly.
func TestValidate_allocationBombs(t *testing.T) {
	tests := []struct {
		name, wasm, msg string
	}{
		{"export count", "\x00asm\x01\x00\x00\x00\x07\x05\xff\xff\xff\xff\x0f", "export section: vector of 4294967295 elements"},
		{"locals", "\x00asm\x01\x00\x00\x00" +
			"\x01\x04\x01\x60\x00\x00" + // type () -> ()
			"\x03\x02\x01\x00" + // one function
			"\x0a\x0a\x01\x08\x01\xff\xff\xff\xff\x0f\x7f\x0b", // 2^32-1 i32 locals
			"function body 0 declares 4294967295 locals, the limit is 50000"},
		{"function name map", "\x00asm\x01\x00\x00\x00\x00\x0c\x04name\x01\x05\xff\xff\xff\xff\x0f", "function names: vector of 4294967295 elements"},
	}
	h := newHost(t, host.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := h.Validate(context.Background(), []byte(tc.wasm))
			require.ErrorIs(t, err, host.ErrInvalidModule)
			require.ErrorContains(t, err, tc.msg)
			require.Less(t, time.Since(start), time.Second)
		})
	}
}

// TestMetering_deterministic: with metering, the same module and request use
// the same fuel on every call, warm or fresh, and a runaway stops at the same
// point: the whole budget.
func TestMetering_deterministic(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "freeware")
	req := request(abi.ActionWrite, "alice", "alice")
	var first uint64
	for i := 0; i < 100; i++ {
		d, use, err := h.Evaluate(ctx, hash, req, abi.Limits{})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.NotZero(t, use.Fuel)
		if i == 0 {
			first = use.Fuel
		}
		require.Equal(t, first, use.Fuel, "run %d", i)
	}
	loop := prepare(t, h, "behave")
	for i := 0; i < 5; i++ {
		_, use, err := h.Evaluate(ctx, loop, behave(2), abi.Limits{Fuel: 123_456})
		require.ErrorIs(t, err, host.ErrOutOfFuel)
		require.Equal(t, uint64(123_456), use.Fuel)
	}
	// A budget too small for the check itself fails closed the same way.
	_, _, err := h.Evaluate(ctx, hash, req, abi.Limits{Fuel: first - 1})
	require.ErrorIs(t, err, host.ErrOutOfFuel)
	d, use, err := h.Evaluate(ctx, hash, req, abi.Limits{Fuel: first})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, first, use.Fuel, "exactly enough fuel is enough")
}
