package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/kernelhost/kernelhost/abi"
)

// Host runs access contracts. It owns one wazero runtime, the compiled
// modules keyed by sha256 and a bounded pool of warm instances per module.
//
// A Host is safe for concurrent use by multiple goroutines; each instance it
// pools is used by one call at a time.
type Host struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache // nil without CacheDir
	// wasiDefs are the functions of the deterministic WASI host module, by
	// name, to check import signatures against.
	wasiDefs map[string]api.FunctionDefinition

	closed  atomic.Bool
	closing chan struct{} // closed by Close, wakes callers waiting for an instance

	// modules maps a module's sha256 to it. Calls load it without a lock;
	// Prepare and Close replace it with a copy under mu (copy on write: a
	// world prepares a handful of modules and runs millions of calls).
	mu      sync.Mutex
	modules atomic.Pointer[map[[32]byte]*module]

	// The watchdog (watchdog.go); tick is 0 when it is off.
	tick       time.Duration
	checkTicks uint64        // ticks(Config.Timeout), the common case
	epoch      atomic.Uint64 // ticks since New, from 1
	watchDone  chan struct{} // closed when the watchdog goroutine has ended
	stopped    atomic.Uint64 // calls the watchdog stopped
	// checking holds the modules Validate and Prepare are initialising,
	// not yet in modules, for the watchdog to see (watchdog.go).
	checkMu  sync.Mutex
	checking map[*module]struct{}

	// The bounds of the caches (cache.go): poolBytes is the memory of every
	// live instance (memcap.go), lru the compiled modules' bookkeeping,
	// under mu.
	poolBytes atomic.Int64
	lru       moduleCache
	cleaning  sync.Mutex // held by the on-disk cache's cleaner

	// noReset turns the per-call reset off (reset.go), for benchmarks of
	// its cost only; set by a test hook before any module is prepared.
	noReset bool
}

// newCacheMu serialises wazero.NewCompilationCacheWithDir: in wazero v1.11
// its first call fills an unsynchronised global (the version string), so two
// Hosts created at once race.
var newCacheMu sync.Mutex

// Stats is a snapshot of a Host's pools, for metrics and tests.
type Stats struct {
	// Modules has one entry per prepared module, keyed by its sha256.
	Modules map[[32]byte]ModuleStats
	// WatchdogStops counts the calls the watchdog stopped for running
	// Config.Watchdog past their deadline.
	WatchdogStops uint64
	// PoolBytes is what every live instance holds (memory plus 8 bytes
	// per table element; Config.MaxPoolBytes), CodeBytes the estimated
	// size of the compiled modules kept (Config.MaxCodeBytes), Evicted the
	// modules the cache evicted since New.
	PoolBytes, CodeBytes, Evicted uint64
}

// ModuleStats describes the instance pool of one prepared module.
type ModuleStats struct {
	Live         int    // instances alive: in use by a call, or idle
	Idle         int    // warm instances waiting for a call
	Instantiated uint64 // instances created since Prepare
	Discarded    uint64 // instances closed: after a failure or a memory cap, or by Close
	Peak         int    // the most instances alive at once since Prepare
	// SnapshotBytes is the post-initialisation state the module's
	// instances are restored to before every call (reset.go), held once
	// for the module: its linear memory and mutable globals. An instance
	// whose initialisation differed holds a snapshot of its own, not
	// counted here (none is known: initialisation is deterministic).
	SnapshotBytes uint64
}

// New returns a Host configured by cfg, whose zero fields take their
// defaults (see Config). Close it to release the runtime and its instances.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc := wazero.NewRuntimeConfigCompiler().
		// Metered guests stop themselves; only unmetered ones need wazero to
		// watch every call's context.
		WithCloseOnContextDone(cfg.DisableMetering).
		WithMemoryLimitPages(cfg.memoryLimitPages())
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		var err error
		newCacheMu.Lock() // see newCacheMu
		cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		newCacheMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	// Every call of a WASI function is charged fuel by its bytes
	// (hostcall.go): the listener runs before wazero's implementation.
	wasi, err := wasi_snapshot_preview1.Instantiate(experimental.WithFunctionListenerFactory(ctx, wasiMeters{}), rt)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate wasi_snapshot_preview1: %w", err)
	}
	if err := instantiateKernelModule(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate kernel host module: %w", err)
	}
	wasiMod, ok := wasi.(api.Module)
	if !ok {
		_ = rt.Close(ctx)
		return nil, errors.New("host: wasi_snapshot_preview1 is not a module")
	}
	h := &Host{
		cfg:      cfg,
		rt:       rt,
		cache:    cache,
		wasiDefs: wasiMod.ExportedFunctionDefinitions(),
		closing:  make(chan struct{}),
	}
	h.modules.Store(&map[[32]byte]*module{})
	h.cleanDisk() // cache.go: what earlier hosts left beyond MaxCacheDirBytes
	h.startWatchdog()
	return h, nil
}

// lookup returns the prepared module hash, or nil.
func (h *Host) lookup(hash [32]byte) *module { return (*h.modules.Load())[hash] }

// Close closes every instance, the compiled modules and the runtime. Calls in
// flight fail with ErrClosed; later calls return ErrClosed. Closing twice is
// a no-op.
func (h *Host) Close(ctx context.Context) error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(h.closing)
	if h.watchDone != nil {
		<-h.watchDone
	}
	h.mu.Lock()
	mods := *h.modules.Swap(&map[[32]byte]*module{})
	h.mu.Unlock()
	err := h.rt.Close(ctx) // closes every instance, in flight or idle
	for _, m := range mods {
		m.drain()
	}
	if h.cache != nil {
		if cerr := h.cache.Close(ctx); err == nil {
			err = cerr
		}
	}
	return err
}

// Prepare validates wasm (see Validate), compiles it and keeps it under its
// sha256, which it returns. Preparing the same bytes again is cheap and
// returns the same hash. The instance created to validate the module becomes
// the first warm instance of its pool.
func (h *Host) Prepare(ctx context.Context, wasm []byte) ([32]byte, error) {
	hash, _, err := h.PrepareMetered(ctx, wasm)
	return hash, err
}

// InitFuel is the most fuel preparing one module may run (Config.InitFuel),
// or 0 when the host does not meter: what a caller of PrepareMetered should
// hold in reserve before it prepares a module it will charge for.
func (h *Host) InitFuel() uint64 {
	if h.cfg.DisableMetering {
		return 0
	}
	return h.cfg.InitFuel
}

// PrepareMetered is Prepare that also returns the fuel preparing wasm runs
// (its start function, _initialize and kh_abi_version, host calls
// included), for the caller to charge to whoever deploys it. The fuel is a
// property of the bytes: a module already prepared reports the same fuel
// again without running anything, and a module rejected at initialisation
// reports what its initialisation ran before it failed (Config.InitFuel
// when it ran out); one rejected before anything ran reports 0, as does a
// host without metering.
func (h *Host) PrepareMetered(ctx context.Context, wasm []byte) ([32]byte, uint64, error) {
	hash := sha256.Sum256(wasm)
	if h.closed.Load() {
		return hash, 0, newError(ErrClosed, nil)
	}
	if m := h.lookup(hash); m != nil {
		m.touch()
		return hash, m.prepareFuel, nil
	}
	m, inst, used, err := h.check(ctx, wasm)
	if err != nil {
		return hash, used, err
	}
	m.hash = hash
	m.prepareFuel = used
	h.mu.Lock()
	if h.closed.Load() || h.lookup(hash) != nil {
		closed := h.closed.Load()
		h.mu.Unlock()
		m.discard(inst)
		_ = m.compiled.Close(ctx)
		if closed {
			return hash, used, newError(ErrClosed, nil)
		}
		return hash, used, nil // another Prepare of the same bytes won
	}
	m.idle = append(m.idle, inst) // not yet shared: no lock needed
	old := *h.modules.Load()
	mods := make(map[[32]byte]*module, len(old)+1)
	for k, v := range old {
		mods[k] = v
	}
	mods[hash] = m
	evicted, clean := h.admitLocked(m, mods) // cache.go
	h.modules.Store(&mods)
	h.mu.Unlock()
	for _, v := range evicted {
		v.evict()
	}
	h.fitPool(m)
	if clean {
		h.cleanDisk()
	}
	return hash, used, nil
}

// Validate checks wasm as Prepare does, then forgets it. The error wraps
// ErrInvalidModule (code abi.ContractInvalid) and its message names what the
// author must fix: size caps, compile errors, forbidden imports, missing or
// mistyped exports, the ABI version, or an initialisation that traps or runs
// past the deadline.
func (h *Host) Validate(ctx context.Context, wasm []byte) error {
	if h.closed.Load() {
		return newError(ErrClosed, nil)
	}
	m, inst, _, err := h.check(ctx, wasm)
	if err != nil {
		return err
	}
	m.discard(inst)
	return m.compiled.Close(ctx)
}

// Evaluate runs kh_check of the prepared module hash on req under lim and
// returns the contract's decision and what the call used. A denial is a
// Decision with Allowed false, not an error.
//
// Errors are *Error values: ErrNotPrepared when hash is unknown (Prepare the
// bytes and retry), ErrTrap, ErrMemoryLimit, ErrBadAlloc, ErrBadDecision
// (code abi.ContractFailed), ErrTimeout (abi.ContractTimeout), ErrClosed
// (abi.Unavailable), or a ctx error while waiting for a free instance. Usage
// is filled as far as the call got; a call that ends its instance also counts
// in Usage.Fuel the fuel of initialising its replacement, up to its budget.
//
// The call's deadline is Config.Timeout, shortened by lim.Timeout and by
// ctx's deadline. A cancellation of ctx is honoured before the call starts;
// NB: once a call runs, only its deadline stops it, so it ends within
// Config.Timeout.
func (h *Host) Evaluate(ctx context.Context, hash [32]byte, req *abi.Request, lim abi.Limits) (abi.Decision, abi.Usage, error) {
	if h.closed.Load() {
		return abi.Decision{}, abi.Usage{}, newError(ErrClosed, nil)
	}
	m := h.lookup(hash)
	if m == nil {
		return abi.Decision{}, abi.Usage{}, notPrepared(hash)
	}
	m.touch()
	timeout := h.cfg.Timeout
	if lim.Timeout > 0 && lim.Timeout < timeout {
		timeout = lim.Timeout
	}
	inst, err := h.acquire(ctx, m, lim)
	if err != nil {
		return abi.Decision{}, abi.Usage{}, err
	}
	d, use, keep, err := h.run(ctx, inst, req, lim, timeout)
	use.Fuel = m.withReplacement(inst, keep, use.Fuel)
	h.release(m, inst, keep)
	return d, use, err
}

// Entrypoints reports which entry points the prepared module hash exports:
// kh_check (it can be an access contract) and kh_invoke (an executable). ok
// is false for a module that is not prepared. It implements
// kernel.ModuleInspector, so that a module of the wrong kind is refused at
// deploy rather than failing every call.
func (h *Host) Entrypoints(hash [32]byte) (check, invoke, ok bool) {
	m := h.lookup(hash)
	if m == nil {
		return false, false, false
	}
	return m.check, m.invoke, true
}

// Stats returns a snapshot of every module's pool.
func (h *Host) Stats() Stats {
	mods := *h.modules.Load()
	s := Stats{Modules: make(map[[32]byte]ModuleStats, len(mods)), WatchdogStops: h.stopped.Load()}
	for hash, m := range mods {
		s.Modules[hash] = m.stats()
	}
	h.mu.Lock()
	s.CodeBytes, s.Evicted = h.lru.codeBytes, h.lru.evicted
	h.mu.Unlock()
	s.PoolBytes = uint64(max(h.poolBytes.Load(), 0))
	return s
}

// acquire takes a slot of m, waiting while all are in use, and returns a warm
// instance or a new one. An idle instance whose memory already exceeds
// lim.MemoryBytes is replaced, so that one caller's growth does not count
// against another's cap.
func (h *Host) acquire(ctx context.Context, m *module, lim abi.Limits) (*instance, error) {
	inst, ok := m.trySlot()
	if !ok {
		if err := m.waitSlot(ctx, h.closing); err != nil {
			return nil, err
		}
		inst = m.popIdle()
	}
	return h.fitInstance(ctx, m, inst, lim)
}

// fitInstance returns inst, or another idle instance of m or a new one when
// inst is nil or holds more than the call's memory cap (memcap.go), for a
// caller holding a slot of m; on error it frees the slot. A call whose cap
// is below what a fresh instance holds fails with ErrMemoryLimit at once,
// with no instance closed or created.
func (h *Host) fitInstance(ctx context.Context, m *module, inst *instance, lim abi.Limits) (*instance, error) {
	limit := h.cfg.callCap(lim.MemoryBytes)
	if m.base > limit {
		if inst == nil {
			m.put(nil)
		} else {
			h.release(m, inst, true)
		}
		return nil, baseTooBig(m, limit)
	}
	for inst != nil {
		if inst.footprint <= limit {
			return inst, nil
		}
		m.discard(inst)
		inst = m.popIdle()
	}
	inst, err := h.instantiateIn(ctx, m)
	if err != nil {
		m.put(nil)
		return nil, err
	}
	if inst.footprint > limit { // a fresh instance holds m.base: not reached
		h.release(m, inst, true)
		return nil, baseTooBig(m, limit)
	}
	return inst, nil
}

// release returns inst to m's pool when keep is set, else closes it, and
// frees its slot. While the live instances hold more than
// Config.MaxPoolBytes, idle instances of cold modules are closed first to
// make room, and inst itself when that is not enough (trimPools).
func (h *Host) release(m *module, inst *instance, keep bool) {
	if keep && h.poolBytes.Load() > int64(h.cfg.MaxPoolBytes) && !h.trimPools(m) {
		keep = false
	}
	if !keep || h.closed.Load() {
		m.put(nil)
		m.discard(inst)
		return
	}
	if !m.put(inst) {
		m.discard(inst)
	}
}

// notPrepared is out of line so that hash does not escape in Evaluate.
func notPrepared(hash [32]byte) error {
	return newError(ErrNotPrepared, fmt.Errorf("module %x", hash[:8]))
}

// ctxError maps a caller's context error to an *Error.
func ctxError(err error, step string) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return newError(ErrTimeout, fmt.Errorf("%s: %w", step, err))
	}
	return &Error{code: abi.Unavailable, err: fmt.Errorf("host: %s: %w", step, err)}
}
