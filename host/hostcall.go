package host

import (
	"context"
	"encoding/binary"
	"errors"
	"math"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Host-call fuel (host/internal/fuel/COSTS.md, "Host calls"). The metering
// pass counts what a guest computes; what a host function does runs in Go,
// where the pass cannot see it. Without a charge, a guest could loop on a
// host call that does a lot of work for one call instruction's fuel:
// random_get(16 MiB) 2000 times took 30 s or more, on 10,000 fuel. So every
// call of a host function, WASI or kernel, costs a fixed part and a part per
// byte of guest memory it reads or writes, taken from the running call's
// fuel before the function does its work. Checks and executables pay the
// same table as initialisation (start function, _initialize).
const (
	// costHostCall is what every host function call costs besides its
	// bytes: the step out of compiled code into Go and back (a few dozen
	// nanoseconds in wazero v1.11), and the function's fixed work.
	costHostCall = 100
	// costKernelCall replaces costHostCall for kernel.call, which performs a
	// whole kernel request: JSON decoded and encoded, an action judged and
	// settled. The actions' own contract runs are charged on their own.
	costKernelCall = 1000
	// costHostByte is what each byte of guest memory a host function reads
	// or writes costs: random_get fills about a byte a nanosecond, as one
	// fuel unit is about a nanosecond of simple instructions.
	costHostByte = 1
)

// errOutOfFuel traps a guest whose host call costs more fuel than its call
// has left.
var errOutOfFuel = errors.New("host: a host call cost more fuel than was left")

// charge takes cost fuel from the metered call running under ctx, before the
// host function does any work. A call that cannot pay traps at once (a panic,
// which wazero turns into the call's error) with its fuel left negative, so
// that it fails with ErrOutOfFuel like a guest that ran out by itself, and
// the work is never done. A call the watchdog stopped traps too. Without
// metering charge does nothing: deadlines bound those guests.
func charge(ctx context.Context, cost uint64) {
	c, ok := ctx.(*callCtx)
	if !ok || c.inst == nil || c.inst.fuel == nil {
		return
	}
	inst := c.inst
	// The watchdog writes the fuel global from its own goroutine while it
	// stops a call (watchdog.go): take the call's watch state from it for
	// the few instructions of the update, as the watchdog does. While it is
	// taken the watchdog skips the call until its next tick.
	v := inst.killAt.Load()
	if v == watchStopping || v == watchStopped || (v != watchIdle && !inst.killAt.CompareAndSwap(v, watchStopping)) {
		panic(errStopped)
	}
	left := int64(inst.fuel.Get())
	paid := left >= 0 && uint64(left) >= cost
	if paid {
		inst.setFuel(uint64(left) - cost)
	} else {
		inst.fuel.Set(math.MaxUint64) // -1: out of fuel
	}
	if v != watchIdle {
		inst.killAt.Store(v)
	}
	if !paid {
		panic(errOutOfFuel)
	}
}

// wasiBytes gives, for each function of the deterministic WASI subset
// (wasiAllowed), the bytes of guest memory it reads or writes, from its
// parameters. With no arguments, environment or preopened files, args_get
// and environ_get write nothing, and the fd_ functions answer from fixed
// state. fd_write's buffers are counted apart (fdWriteBuffers).
var wasiBytes = map[string]func(params []uint64) uint64{
	"args_get":            nothing,
	"args_sizes_get":      fixed(8), // two u32 sizes
	"clock_time_get":      fixed(8), // a u64 timestamp
	"environ_get":         nothing,
	"environ_sizes_get":   fixed(8),
	"fd_write":            func(p []uint64) uint64 { return 8*uint64(uint32(p[2])) + 4 },  // the iovecs, nwritten
	"poll_oneoff":         func(p []uint64) uint64 { return 80*uint64(uint32(p[2])) + 4 }, // 48-byte subscriptions in, 32-byte events out, nevents
	"proc_exit":           nothing,
	"random_get":          param(1), // buf_len
	"sched_yield":         nothing,
	"fd_close":            nothing,
	"fd_fdstat_get":       fixed(24), // the fdstat
	"fd_fdstat_set_flags": nothing,
	"fd_prestat_get":      fixed(8), // the prestat
	"fd_prestat_dir_name": param(2), // path_len
}

func nothing([]uint64) uint64 { return 0 }

func fixed(n uint64) func([]uint64) uint64 { return func([]uint64) uint64 { return n } }

func param(i int) func([]uint64) uint64 {
	return func(p []uint64) uint64 { return uint64(uint32(p[i])) }
}

// wasiMeters is the function listener factory of the WASI host module: it
// charges every call of a function of the subset (charge) before wazero runs
// it.
type wasiMeters struct{}

// NewFunctionListener implements experimental.FunctionListenerFactory. A
// function outside the subset gets no listener: no module may import it.
func (wasiMeters) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	bytes, ok := wasiBytes[def.Name()]
	if !ok {
		return nil
	}
	return &wasiMeter{bytes: bytes, fdWrite: def.Name() == "fd_write", writes: wasiWrites[def.Name()]}
}

// wasiMeter charges the calls of one WASI function.
type wasiMeter struct {
	bytes   func(params []uint64) uint64
	fdWrite bool
	// writes marks the memory the function writes, for the reset
	// (reset.go); nil for one that writes none.
	writes func(ctx context.Context, params []uint64)
}

// Before implements experimental.FunctionListener: it charges the call.
// fd_write pays for its iovecs first and then, reading them, for the bytes
// they point at, so that the iovecs it reads are already paid for.
func (w *wasiMeter) Before(ctx context.Context, mod api.Module, _ api.FunctionDefinition, params []uint64, _ experimental.StackIterator) {
	if w.writes != nil {
		w.writes(ctx, params)
	}
	charge(ctx, costHostCall+costHostByte*w.bytes(params))
	if w.fdWrite {
		charge(ctx, costHostByte*fdWriteBuffers(mod.Memory(), uint32(params[1]), uint32(params[2])))
	}
}

// After implements experimental.FunctionListener.
func (*wasiMeter) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}

// Abort implements experimental.FunctionListener.
func (*wasiMeter) Abort(context.Context, api.Module, api.FunctionDefinition, error) {}

// fdWriteBuffers is the sum of the lengths of the n iovecs at iovs, or 0 when
// they are not all in memory (fd_write then fails with EFAULT).
func fdWriteBuffers(mem api.Memory, iovs, n uint32) uint64 {
	if mem == nil || 8*uint64(n) > uint64(mem.Size()) {
		return 0
	}
	b, ok := mem.Read(iovs, 8*n)
	if !ok {
		return 0
	}
	var sum uint64
	for i := 0; i+8 <= len(b); i += 8 {
		sum += uint64(binary.LittleEndian.Uint32(b[i+4:]))
	}
	return sum
}

// withReplacement returns the fuel to report for a call of inst that used
// fuel: for a call that ends its instance (keep false: a trap, running out of
// fuel, a bad decision, a memory cap, the watchdog), fuel plus initialising
// the instance that replaces it (start function, _initialize and kh_alloc;
// 0 without metering), at most the call's budget, which is what its caller
// agreed to pay. Without it, a module whose initialisation burns most of its
// budget and whose kh_check traps made every action pay for a few
// instructions while the host ran the initialisation again for free. Whether
// a call ends its instance depends on the module and the request, and the
// fuel on the module, so the charge is deterministic.
func (m *module) withReplacement(inst *instance, keep bool, fuel uint64) uint64 {
	if keep || inst.fuel == nil || m.initFuel == 0 {
		return fuel
	}
	return max(fuel, min(fuel+m.initFuel, inst.budget))
}
