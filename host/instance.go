package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host/internal/fuel"
)

// instance is one instantiated module. It is not safe for concurrent use: the
// pool hands it to one call at a time, and the channel handoff orders every
// access.
type instance struct {
	mod       api.Module
	mem       api.Memory
	checkFn   api.Function // nil for a module that is only an executable
	invokeFn  api.Function // nil for a module that is only a contract
	allocFn   api.Function
	versionFn api.Function
	stack     [2]uint64         // reused by every CallWithStack: max(params, results) is 2
	buf       []byte            // reused request encoding buffer
	reqPtr    uint32            // region returned by kh_alloc; SPEC.md lets the host reuse it
	reqCap    uint32            // its size; 0 before the first kh_alloc
	deadline  callCtx           // the context every call into the guest runs under
	fuel      api.MutableGlobal // kh_fuel of a metered module; nil without metering
	mark      api.MutableGlobal // its kh_fuel_mark: set with the fuel (fuel.Mark)
	budget    uint64            // fuel set for the call in progress
	// allocFuel is the fuel kh_alloc used to make the request region
	// (reqPtr, reqCap): every call that uses the region pays it, so that a
	// call's fuel does not depend on whether its instance was warm.
	allocFuel uint64
	// killAt is the watchdog's state for the call in progress: the epoch
	// at which to stop it, or a watch* state (watchdog.go).
	killAt atomic.Uint64
	// The memory cap (memcap.go): the cap globals of the instrumented
	// module, the cap set in it, and what the instance holds against it.
	memCap
	// The reset to the post-initialisation snapshot before each call
	// (reset.go).
	resetState

	// Deterministic guest view, reset before every call so that the same
	// request sees the same clock and random stream however warm the
	// instance is.
	wall int64  // nanoseconds of the next walltime reading minus one step
	rng  uint64 // splitmix64 state of random_get
}

// fakeEpochNanos is the first walltime reading of every call: midnight UTC
// 2022-01-01, as wazero's fake clock. Each reading advances 1ms.
const (
	fakeEpochNanos = 1640995200 * int64(time.Second)
	clockStep      = int64(time.Millisecond)
	randSeed       = 42
)

func (inst *instance) resetGuestView() {
	inst.wall = fakeEpochNanos - clockStep
	inst.rng = randSeed
}

func (inst *instance) walltime() (sec int64, nsec int32) {
	inst.wall += clockStep
	return inst.wall / 1e9, int32(inst.wall % 1e9)
}

// Read implements io.Reader for random_get with splitmix64, a fixed stream.
func (inst *instance) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		inst.rng += 0x9e3779b97f4a7c15
		z := inst.rng
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(z >> (8 * j))
		}
	}
	return len(p), nil
}

// callCtx is a reusable context.Context carrying one instance's deadline.
// context.WithDeadline allocates four objects per call; this one allocates
// once per instance. It relies on the pool's rule that a timed-out instance
// is never used again: its done channel closes at most once, when its timer
// fires, and the instance is then discarded.
//
// It carries no values of the caller's context, so that nothing a caller puts
// in a context (wazero's experimental hooks included) reaches guest execution.
type callCtx struct {
	timer    *time.Timer
	done     chan struct{}
	fired    atomic.Bool
	deadline atomic.Int64 // unix nanoseconds of the armed deadline

	// calls serves the kernel host functions during an Invoke; nil during a
	// check, so a contract can never call back into the kernel. last is the
	// latest host-call response, for kernel.result.
	calls abi.HostCalls
	last  []byte
	// inst is the instance whose calls this context carries, for the host
	// functions to charge fuel to (charge, hostcall.go).
	inst *instance
	// stopped is set by the watchdog: the kernel host functions then
	// refuse to run.
	stopped atomic.Bool
}

func (c *callCtx) init() {
	c.done = make(chan struct{})
	c.timer = time.AfterFunc(math.MaxInt64, c.expire)
	c.timer.Stop()
}

func (c *callCtx) expire() {
	if c.fired.CompareAndSwap(false, true) {
		close(c.done)
	}
}

// arm starts the deadline: timeout after now, or ctx's deadline if earlier.
// It fails without arming when ctx is already done.
func (c *callCtx) arm(ctx context.Context, now time.Time, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl := now.Add(timeout)
	if pd, ok := ctx.Deadline(); ok && pd.Before(dl) {
		dl = pd
	}
	c.deadline.Store(dl.UnixNano())
	c.timer.Reset(dl.Sub(now))
	return nil
}

// disarm stops the deadline and reports whether it had not fired. After a
// false result the done channel is, or will soon be, closed: the instance
// must be discarded.
func (c *callCtx) disarm() bool { return c.timer.Stop() && !c.fired.Load() }

// Deadline implements context.Context.
func (c *callCtx) Deadline() (time.Time, bool) { return time.Unix(0, c.deadline.Load()), true }

// Done implements context.Context.
func (c *callCtx) Done() <-chan struct{} { return c.done }

// Err implements context.Context.
func (c *callCtx) Err() error {
	if c.fired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context; see the type's doc for why it is empty.
func (c *callCtx) Value(any) any { return nil }

// close closes the module and stops the timer. It is idempotent.
func (inst *instance) close() {
	inst.deadline.timer.Stop()
	_ = inst.mod.Close(context.Background())
}

// instantiate creates an instance of m under a deadline: the start function
// and _initialize must finish within timeout (Config.InitTimeout).
func (h *Host) instantiate(ctx context.Context, m *module, timeout time.Duration) (*instance, error) {
	return h.instantiateInit(ctx, m, timeout, nil)
}

// instantiateInit is instantiate that also stores in *used, when used is not
// nil, the fuel initialisation used (start function and _initialize, on a
// metered host), whether or not it succeeded.
func (h *Host) instantiateInit(ctx context.Context, m *module, timeout time.Duration, used *uint64) (*instance, error) {
	inst := &instance{}
	inst.deadline.init()
	inst.deadline.inst = inst
	inst.resetGuestView()
	start := []string{"_initialize"}
	if !h.cfg.DisableMetering {
		start = nil // called below, on a budget we can tell was exhausted
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module live at once
		WithStartFunctions(start...).
		WithStdout(io.Discard).
		WithStderr(io.Discard).
		WithWalltime(inst.walltime, sys.ClockResolution(clockStep)).
		WithRandSource(inst)
	// No WithFS, WithEnv, WithArgs or WithSys*: no filesystem, environment or
	// arguments, and wazero's fake monotonic clock and no-op sleep.
	// Only without metering does guest code run inside instantiation (the
	// start function and _initialize, stopped by wazero at the deadline). A
	// metered module runs none there (its start function is exported and
	// called below, watched like a call), so no wall clock decides whether
	// it instantiates: a slow instantiation on a loaded machine is no
	// timeout.
	metered := !h.cfg.DisableMetering
	if metered {
		if err := ctx.Err(); err != nil {
			return nil, ctxError(err, "instantiate")
		}
	} else if err := inst.deadline.arm(ctx, time.Now(), timeout); err != nil {
		return nil, ctxError(err, "instantiate")
	}
	mod, err := h.rt.InstantiateModule(&inst.deadline, m.compiled, cfg)
	fresh := metered || inst.deadline.disarm()
	if err != nil {
		if mod != nil {
			_ = mod.Close(context.Background())
		}
		inst.deadline.timer.Stop()
		switch {
		case h.closed.Load():
			return nil, newError(ErrClosed, nil)
		case !h.cfg.DisableMetering:
			// No guest code ran: a metered module's start function is
			// exported (exportStart) and called below.
			return nil, newError(ErrTrap, fmt.Errorf("instantiation: %w", err))
		case !fresh || isDeadline(err):
			return nil, newError(ErrTimeout, fmt.Errorf("initialisation (start function or _initialize) ran past its %v deadline", timeout))
		}
		return nil, newError(ErrTrap, fmt.Errorf("initialisation: %w", err))
	}
	inst.mod = mod
	// Tracked from here on, so that the watchdog sees _initialize when the
	// pool of a prepared module grows.
	m.track(inst)
	if !fresh {
		m.discard(inst)
		return nil, newError(ErrTimeout, fmt.Errorf("initialisation ran past its %v deadline", timeout))
	}
	inst.mem = mod.Memory()
	if !h.cfg.DisableMetering {
		g, ok := mod.ExportedGlobal(fuel.ExportName).(api.MutableGlobal)
		mark, ok2 := mod.ExportedGlobal(fuel.MarkExportName).(api.MutableGlobal)
		if !ok || !ok2 {
			m.discard(inst)
			return nil, newError(ErrInvalidModule, errors.New("metered module lacks its fuel globals"))
		}
		inst.fuel, inst.mark = g, mark
	}
	if err := inst.bindCap(m, h.cfg.MemoryLimitBytes); err != nil {
		m.discard(inst)
		return nil, err
	}
	if inst.fuel != nil {
		err := h.initialise(inst, timeout)
		if used != nil {
			*used = inst.endCall(&h.cfg)
		}
		if err != nil {
			m.discard(inst)
			return nil, err
		}
	}
	inst.checkFn = mod.ExportedFunction("kh_check")
	inst.invokeFn = mod.ExportedFunction("kh_invoke")
	inst.allocFn = mod.ExportedFunction("kh_alloc")
	inst.versionFn = mod.ExportedFunction("kh_abi_version")
	if inst.mem == nil || (inst.checkFn == nil && inst.invokeFn == nil) || inst.allocFn == nil || inst.versionFn == nil {
		m.discard(inst)
		return nil, newError(ErrInvalidModule, errors.New("module lacks a required export"))
	}
	if err := h.takeSnapshot(m, inst); err != nil {
		m.discard(inst)
		return nil, err
	}
	h.account(inst, inst.measure(uint64(inst.mem.Size())))
	return inst, nil
}

// initRegion is the request region a metered instance asks kh_alloc for at
// initialisation (the C header's static arena is as large): requests up to
// it never run kh_alloc in a call.
const initRegion = 16 << 10

// initialise runs a metered instance's start function (exported as
// startExport at deploy), _initialize and kh_alloc(initRegion), like calls:
// on one budget of Config.InitFuel for all three, with host calls charged,
// and under the watchdog for a deadline of timeout. After it, inst.endCall
// tells the fuel they used.
//
// kh_alloc runs here so that its fuel is initialisation's, paid once per
// instance (by the deployer, and by a call that ends its instance:
// withReplacement), not by whichever call happens to find the instance cold:
// checks of requests up to initRegion then use the same fuel, warm or fresh.
// A region kh_alloc refuses here (0, or outside memory) is not an error: the
// first call asks again and fails then (ErrBadAlloc).
func (h *Host) initialise(inst *instance, timeout time.Duration) error {
	inst.budget = h.cfg.InitFuel
	inst.setFuel(inst.budget)
	for _, name := range [...]string{startExport, "_initialize", "kh_alloc"} {
		fn := inst.mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		what := name
		if name == startExport {
			what = "the start function"
		}
		inst.stack[0] = initRegion // kh_alloc's argument; the others take none
		stopped, err := h.callWatched(inst, fn, timeout)
		if stopped {
			return h.watchdogError(what, timeout)
		}
		if err != nil {
			if int64(inst.fuel.Get()) < 0 {
				return newError(ErrOutOfFuel, fmt.Errorf("initialisation ran out of fuel: %s used its %d fuel (the start function, _initialize and kh_alloc share it; host calls included)", what, h.cfg.InitFuel))
			}
			return newError(ErrTrap, fmt.Errorf("initialisation: %s: %w", what, err))
		}
		if name == "kh_alloc" {
			p, mem := uint32(inst.stack[0]), inst.mod.Memory()
			if p != 0 && mem != nil && uint64(p)+initRegion <= uint64(mem.Size()) {
				inst.reqPtr, inst.reqCap = p, initRegion
			}
		}
	}
	return nil
}

// since is the wall time since start, or 0 for a metered instance (see
// callGuest).
func (inst *instance) since(start time.Time) time.Duration {
	if inst.fuel != nil {
		return 0
	}
	return time.Since(start)
}

// budget is the fuel of a call: the host's default, lowered by the call's
// limit when it sets one.
func budget(def, limit uint64) uint64 {
	if limit > 0 && limit < def {
		return limit
	}
	return def
}

// startCall prepares inst for a call: a metered instance gets its fuel
// budget (no timer: the guest stops itself), an unmetered one arms its
// deadline. It fails when ctx is already done.
func (inst *instance) startCall(ctx context.Context, cfg *Config, timeout time.Duration, budget uint64) error {
	if inst.fuel == nil {
		return inst.deadline.arm(ctx, time.Now(), timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	inst.budget = min(budget, fuel.MaxFuel)
	inst.setFuel(inst.budget)
	return nil
}

// setFuel sets a metered instance's fuel to f, and its mark to match.
func (inst *instance) setFuel(f uint64) {
	inst.fuel.Set(f)
	inst.mark.Set(fuel.Mark(f))
}

// endCall ends a call started by startCall and returns the fuel it used (0
// without metering): the whole budget when the guest ran out.
func (inst *instance) endCall(cfg *Config) uint64 {
	if inst.fuel == nil {
		inst.deadline.disarm()
		return 0
	}
	left := int64(inst.fuel.Get())
	if left < 0 {
		return inst.budget
	}
	return inst.budget - uint64(left)
}

func isDeadline(err error) bool {
	var ee *sys.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == sys.ExitCodeDeadlineExceeded
}

// run performs one check on inst and reports whether inst may be pooled again.
func (h *Host) run(ctx context.Context, inst *instance, req *abi.Request, lim abi.Limits, timeout time.Duration) (d abi.Decision, use abi.Usage, keep bool, err error) {
	if inst.checkFn == nil {
		return d, use, true, newError(ErrBadDecision, errors.New("module exports no kh_check: it is an executable, not a contract"))
	}
	b, use, keep, err := h.callGuest(ctx, inst, inst.checkFn, "kh_check", abi.MaxDecisionSize, req, lim, timeout, budget(h.cfg.CheckFuel, lim.Fuel))
	if err != nil {
		return d, use, keep, err
	}
	if d, err = abi.DecodeDecision(b); err != nil {
		return abi.Decision{}, use, false, newError(ErrBadDecision, err)
	}
	return d, use, keep, nil
}

// callGuest writes req into inst (calling kh_alloc when its region is too
// small), calls fn(ptr, len) under the deadline and returns the bytes of the
// (ptr << 32 | len) region fn returned, at most max long. The bytes alias
// guest memory: valid until the next call into inst. keep reports whether
// inst may be pooled again.
func (h *Host) callGuest(ctx context.Context, inst *instance, fn api.Function, name string, max uint32, req *abi.Request, lim abi.Limits, timeout time.Duration, budget uint64) (out []byte, use abi.Usage, keep bool, err error) {
	buf, err := abi.AppendRequest(inst.buf[:0], req)
	if err != nil {
		return nil, use, true, &Error{code: abi.InvalidArgument, err: fmt.Errorf("host: encode request: %w", err)}
	}
	inst.buf = buf
	n := uint32(len(buf))
	if err := inst.restore(); err != nil { // every call starts from the snapshot (reset.go)
		return nil, use, false, err
	}

	// Wall time is measured only without metering: metered calls are
	// accounted in fuel, and two clock reads are a sixth of a warm check.
	var start time.Time
	if inst.fuel == nil {
		start = time.Now()
	}
	if err := inst.startCall(ctx, &h.cfg, timeout, budget); err != nil {
		return nil, use, true, ctxError(err, name)
	}
	inst.setCap(h.cfg.callCap(lim.MemoryBytes))
	inst.resetGuestView()
	if n > inst.reqCap {
		inst.stack[0] = uint64(n)
		stopped, cerr := h.callWatched(inst, inst.allocFn, timeout)
		if stopped || cerr != nil {
			use.Fuel = inst.endCall(&h.cfg)
			use.CPU = inst.since(start)
			if stopped {
				return nil, use, false, h.watchdogError("kh_alloc", timeout)
			}
			return nil, use, false, h.callError(inst, cerr, "kh_alloc", lim, timeout)
		}
		p := uint32(inst.stack[0])
		if p == 0 || uint64(p)+uint64(n) > uint64(inst.mem.Size()) {
			use.Fuel = inst.endCall(&h.cfg)
			use.CPU = inst.since(start)
			return nil, use, false, newError(ErrBadAlloc, fmt.Errorf("kh_alloc(%d) returned %#x; memory is %d bytes", n, p, inst.mem.Size()))
		}
		inst.reqPtr, inst.reqCap = p, n
		if inst.fuel != nil {
			// The entry point runs on what kh_alloc left: the call pays for
			// kh_alloc, whose work is contract code like any other.
			inst.allocFuel = inst.budget - uint64(int64(inst.fuel.Get()))
		}
	} else if inst.fuel != nil && n > initRegion && inst.allocFuel > 0 {
		// A request larger than initialisation's region runs kh_alloc on
		// the first instance that sees one: a call that reuses the region
		// pays what kh_alloc used to make it, so that fuel used does not
		// depend on pool warmth. Smaller requests fit the region that
		// initialisation paid for, on every instance.
		if inst.allocFuel > inst.budget {
			// As on a fresh instance, whose kh_alloc would run out of fuel
			// and end it: the same error, the same fuel, the same discard.
			use.Fuel = inst.budget
			return nil, use, false, newError(ErrOutOfFuel, fmt.Errorf("kh_alloc used its whole budget of %d fuel", inst.budget))
		}
		inst.setFuel(inst.budget - inst.allocFuel)
	}
	inst.hostWrote(inst.reqPtr, n)
	if !inst.mem.Write(inst.reqPtr, buf) {
		use.Fuel = inst.endCall(&h.cfg)
		use.CPU = inst.since(start)
		return nil, use, false, newError(ErrBadAlloc, fmt.Errorf("request region %#x+%d is outside memory", inst.reqPtr, n))
	}
	inst.stack[0], inst.stack[1] = uint64(inst.reqPtr), uint64(n)
	stopped, cerr := h.callWatched(inst, fn, timeout)
	fresh := true
	if h.cfg.DisableMetering {
		fresh = inst.deadline.disarm()
	} else {
		use.Fuel = inst.endCall(&h.cfg)
	}
	use.CPU = inst.since(start)
	if stopped {
		// Even when it returned: it ran Config.Watchdog past its deadline,
		// and the fuel it reports is no longer its own.
		return nil, use, false, h.watchdogError(name, timeout)
	}
	if cerr != nil {
		return nil, use, false, h.callError(inst, cerr, name, lim, timeout)
	}
	size := uint64(inst.mem.Size())
	foot := inst.measure(size)
	h.account(inst, foot)
	use.MemoryBytes = foot
	if foot > inst.cap {
		// The cap holds during the call (memcap.go): only a module that
		// escaped instrumentation could get here.
		return nil, use, false, newError(ErrMemoryLimit, fmt.Errorf("memory and tables hold %d bytes after the call, the limit is %d", foot, inst.cap))
	}
	res := inst.stack[0]
	ptr, ln := uint32(res>>32), uint32(res)
	if ln > max {
		return nil, use, false, newError(ErrBadDecision, fmt.Errorf("%s returned %d bytes > %d", name, ln, max))
	}
	b, ok := inst.mem.Read(ptr, ln)
	if !ok {
		return nil, use, false, newError(ErrBadDecision, fmt.Errorf("%s result at %#x, %d bytes, is outside memory of %d bytes", name, ptr, ln, size))
	}
	// A deadline that fired just after a successful call taints the instance
	// but not the answer; one that cannot be restored is not pooled either.
	return b, use, fresh && inst.restorable(), nil
}

// watchdogError is the error of a call the watchdog stopped.
func (h *Host) watchdogError(fn string, timeout time.Duration) *Error {
	return newError(ErrTimeout, fmt.Errorf("%s stopped by the watchdog: still running %v past its %v deadline", fn, h.cfg.Watchdog, timeout))
}

// callError classifies a failed call into the guest.
func (h *Host) callError(inst *instance, err error, fn string, lim abi.Limits, timeout time.Duration) *Error {
	if h.closed.Load() {
		return newError(ErrClosed, fmt.Errorf("%s: %w", fn, err))
	}
	if inst.fuel != nil && int64(inst.fuel.Get()) < 0 {
		return newError(ErrOutOfFuel, fmt.Errorf("%s used its whole budget of %d fuel", fn, inst.budget))
	}
	if inst.deadline.fired.Load() || isDeadline(err) {
		return newError(ErrTimeout, fmt.Errorf("%s ran past its %v deadline", fn, timeout))
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		return newError(ErrTrap, fmt.Errorf("%s: contract exited with code %d", fn, ee.ExitCode()))
	}
	size := uint64(inst.mem.Size())
	if inst.capDenied() {
		return newError(ErrMemoryLimit, fmt.Errorf("%s trapped after a memory.grow or table.grow past its cap returned -1: memory and tables hold %d bytes, the limit is %d: %w",
			fn, inst.measure(size), inst.cap, err))
	}
	if size+pageSize > h.cfg.MemoryLimitBytes || (lim.MemoryBytes > 0 && size > lim.MemoryBytes) {
		return newError(ErrMemoryLimit, fmt.Errorf("%s trapped with memory at %d bytes: %w", fn, size, err))
	}
	return newError(ErrTrap, fmt.Errorf("%s: %w", fn, err))
}
