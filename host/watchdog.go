package host

import (
	"math"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// The watchdog is the backstop of metered calls. Fuel bounds what a guest
// computes, deterministically, host calls included (each costs fuel by the
// bytes it touches, hostcall.go); it cannot bound the time a host function
// takes beyond that (a kernel call that blocks on the kernel's work for an
// executable) nor a machine so loaded that a budget takes far longer than it
// should. So one
// goroutine per Host, not a timer per call, ticks an epoch counter and stops
// every call still running Config.Watchdog past its deadline.
//
// Stopping works without wazero's context watching: the watchdog sets the
// call's fuel to zero, and the guest traps at its next charge (the start of
// its next straight-line run, so within a few dozen instructions of
// returning from a host call). The guest may overwrite that zero with a
// charge it had already begun, so the watchdog sets it again on every tick
// until the call ends. The kernel host functions refuse any further call of a
// stopped invocation at once. The owner of the call sees the stop in unwatch,
// fails the call with ErrTimeout and discards the instance.
//
// Per call this costs two atomic operations. A host function in progress
// is not interrupted: the kernel bounds its own work. While the Go runtime
// stops the world the watchdog waits too, but a guest reaches a safe point
// at its next tick (host/internal/fuel, every 2^20 fuel).

// Watch states of an instance (instance.killAt) besides "the epoch at which
// to stop the call".
const (
	watchIdle     = 0              // no call is being watched
	watchStopping = math.MaxUint64 // the watchdog is zeroing the fuel
	watchStopped  = watchStopping - 1
)

// DefaultWatchdog is the default of Config.Watchdog.
const DefaultWatchdog = 5 * time.Second

// watchdogTick is the watchdog's period for grace d: a quarter of it, at
// least 1ms and at most 250ms.
func watchdogTick(d time.Duration) time.Duration {
	return min(max(d/4, time.Millisecond), 250*time.Millisecond)
}

// startWatchdog starts the watchdog goroutine when metering is on and the
// watchdog is enabled; Close stops it.
func (h *Host) startWatchdog() {
	if h.cfg.DisableMetering || h.cfg.Watchdog < 0 {
		return
	}
	h.tick = watchdogTick(h.cfg.Watchdog)
	h.checkTicks = h.ticks(h.cfg.Timeout)
	h.epoch.Store(1)
	h.watchDone = make(chan struct{})
	go h.watchdog()
}

// ticks is how many epochs a call with deadline timeout may run before the
// watchdog stops it.
func (h *Host) ticks(timeout time.Duration) uint64 {
	return uint64((timeout+h.cfg.Watchdog)/h.tick) + 1
}

func (h *Host) watchdog() {
	defer close(h.watchDone)
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var (
		due      []*instance // reused across ticks
		checking []*module
	)
	stopOverdue := func(m *module, now uint64) {
		due = m.overdue(due[:0], now)
		for _, inst := range due {
			if inst.stop() {
				h.stopped.Add(1)
			}
		}
	}
	for {
		select {
		case <-h.closing:
			return
		case <-t.C:
		}
		now := h.epoch.Add(1)
		for _, m := range *h.modules.Load() {
			stopOverdue(m, now)
		}
		// Modules being validated, whose initialisation the watchdog
		// bounds too.
		h.checkMu.Lock()
		for m := range h.checking {
			checking = append(checking, m)
		}
		h.checkMu.Unlock()
		for _, m := range checking {
			stopOverdue(m, now)
		}
		clear(due[:cap(due)]) // drop the pointers, so closed instances can be collected
		clear(checking)
		checking = checking[:0]
	}
}

// overdue appends to dst every instance of m whose call is past its stop
// epoch, or already stopped but still running.
func (m *module) overdue(dst []*instance, now uint64) []*instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	for inst := range m.all {
		if v := inst.killAt.Load(); v != watchIdle && v != watchStopping && (v == watchStopped || v <= now) {
			dst = append(dst, inst)
		}
	}
	return dst
}

// watch arms the watchdog for a call of inst with deadline timeout. It does
// nothing when the watchdog is off.
func (h *Host) watch(inst *instance, timeout time.Duration) {
	if h.tick == 0 || inst.fuel == nil {
		return
	}
	n := h.checkTicks
	if timeout != h.cfg.Timeout {
		n = h.ticks(timeout)
	}
	inst.killAt.Store(h.epoch.Load() + n)
}

// unwatch disarms the watchdog after a call of inst and reports whether the
// watchdog stopped the call. It waits out a stop in progress, so that the
// caller owns the fuel global again when it returns.
func (inst *instance) unwatch() (stopped bool) {
	for {
		switch v := inst.killAt.Load(); v {
		case watchIdle:
			return false
		case watchStopping:
			runtime.Gosched()
		case watchStopped:
			if inst.killAt.CompareAndSwap(watchStopped, watchIdle) {
				return true
			}
		default:
			if inst.killAt.CompareAndSwap(v, watchIdle) {
				return false
			}
		}
	}
}

// stop zeroes the fuel of inst's running call and reports whether this was
// its first stop. It does nothing when the call has ended meanwhile.
func (inst *instance) stop() (first bool) {
	v := inst.killAt.Load()
	if v == watchIdle || v == watchStopping || !inst.killAt.CompareAndSwap(v, watchStopping) {
		return false
	}
	inst.deadline.stopped.Store(true)
	inst.fuel.Set(0)
	inst.killAt.Store(watchStopped)
	return v != watchStopped
}

// callWatched calls fn on inst's stack under the watchdog for a deadline of
// timeout, and reports whether the watchdog stopped it.
func (h *Host) callWatched(inst *instance, fn api.Function, timeout time.Duration) (stopped bool, err error) {
	h.watch(inst, timeout)
	err = fn.CallWithStack(&inst.deadline, inst.stack[:])
	return inst.unwatch(), err
}

// watchChecking shows the watchdog m, a module Validate or Prepare is
// initialising before it joins h.modules, so that its start function,
// _initialize and kh_abi_version are bounded like any call.
func (h *Host) watchChecking(m *module) {
	h.checkMu.Lock()
	if h.checking == nil {
		h.checking = map[*module]struct{}{}
	}
	h.checking[m] = struct{}{}
	h.checkMu.Unlock()
}

// unwatchChecking undoes watchChecking.
func (h *Host) unwatchChecking(m *module) {
	h.checkMu.Lock()
	delete(h.checking, m)
	h.checkMu.Unlock()
}
