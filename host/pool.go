package host

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// module is one prepared module and its pool of instances.
type module struct {
	hash          [32]byte
	check, invoke bool // the module exports kh_check, kh_invoke
	compiled      wazero.CompiledModule
	prepareFuel   uint64 // what PrepareMetered reports, set before the module is shared
	initFuel      uint64 // what initialising one instance runs (start function, _initialize); likewise

	// Memory caps (memcap.go) and cache bookkeeping (cache.go), set before
	// the module is shared. h is nil in pool tests.
	h          *Host
	base       uint64 // footprint of a fresh instance, initialised
	grows      bool   // the module has memory.grow or table.grow sites
	tableGrows bool   // it has table.grow sites: its table elements change
	// pageList is fuel.Info.PageList: the first global of the module's
	// page list, 0 when its writes are tracked by range (reset.go).
	pageList   uint32
	tableBytes uint64 // 8 bytes per element of its tables' declared minimums
	// The reset (reset.go): the module's mutable globals (set before it is
	// shared) and the snapshot its instances share, under snapMu.
	mutGlobals []uint32
	snapMu     sync.Mutex
	snap       *snapshot
	codeBytes  uint64 // estimated size of its compiled code (Config.MaxCodeBytes)
	// used is the cache's reference bit: set by every call, cleared by a
	// sweep that spares the module once (cache.go).
	used atomic.Bool

	// mu guards the fields below it. It is held for a few instructions per
	// call (take a slot and an idle instance; give them back): a mutex and a
	// slice cost about a quarter of what two channel operations did.
	mu sync.Mutex
	// max is Config.MaxInstancesPerModule: the slots. A call holds one from
	// acquire to release; callers beyond max wait in waiters.
	max, inUse int
	// idle holds warm instances no call is using, most recently used last,
	// so that the warmest is taken first.
	idle []*instance
	// waiters are the callers waiting for a slot, oldest first. A release
	// hands its slot to the oldest directly (inUse stays the same).
	waiters []chan struct{}
	// all is every live instance, in use or idle, pooled or not: what the
	// watchdog scans.
	all    map[*instance]struct{}
	closed bool // set by drain: release closes instead of pooling
	// nested counts the instances outside the pool that nested
	// invocations hold (Config.maxNested); pending the instantiations in
	// progress for calls (enter); peak the most live instances at once.
	nested, pending, peak int
	// evicted is set when the cache evicted the module: its compiled code
	// is closed with its last instance (closeCompiled).
	evicted   bool
	closeOnce sync.Once

	live         atomic.Int64
	instantiated atomic.Uint64
	discarded    atomic.Uint64
}

func (h *Host) newModule(compiled wazero.CompiledModule) *module {
	exports := compiled.ExportedFunctions()
	_, check := exports["kh_check"]
	_, invoke := exports["kh_invoke"]
	return &module{
		check:    check,
		invoke:   invoke,
		compiled: compiled,
		max:      h.cfg.MaxInstancesPerModule,
		all:      map[*instance]struct{}{},
		h:        h,
	}
}

// trySlot takes a slot when one is free and, with it, the warmest idle
// instance (nil when none is idle).
func (m *module) trySlot() (inst *instance, ok bool) {
	m.mu.Lock()
	if m.inUse >= m.max {
		m.mu.Unlock()
		return nil, false
	}
	m.inUse++
	if n := len(m.idle); n > 0 {
		inst = m.idle[n-1]
		m.idle[n-1] = nil
		m.idle = m.idle[:n-1]
	}
	m.mu.Unlock()
	return inst, true
}

// waitSlot waits for a slot, first in first served, until ctx is done or
// the host closes (closing).
func (m *module) waitSlot(ctx context.Context, closing <-chan struct{}) error {
	return m.waitSlotUntil(ctx, closing, nil)
}

// waitSlotUntil is waitSlot that also gives up with ErrBusy when expire
// fires (a nil expire never does).
func (m *module) waitSlotUntil(ctx context.Context, closing <-chan struct{}, expire <-chan time.Time) error {
	m.mu.Lock()
	if m.inUse < m.max {
		m.inUse++
		m.mu.Unlock()
		return nil
	}
	ch := make(chan struct{}, 1)
	m.waiters = append(m.waiters, ch)
	m.mu.Unlock()
	var err error
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		err = ctxError(ctx.Err(), "wait for a free instance")
	case <-closing:
		err = newError(ErrClosed, nil)
	case <-expire:
		err = newError(ErrBusy, fmt.Errorf("all %d instances of the module stayed busy", m.max))
	}
	m.mu.Lock()
	for i, w := range m.waiters {
		if w == ch {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			m.mu.Unlock()
			return err
		}
	}
	// A release handed us its slot as we gave up: pass it on.
	m.freeSlotLocked()
	m.mu.Unlock()
	return err
}

// popIdle takes the warmest idle instance for a caller holding a slot; nil
// when none is idle.
func (m *module) popIdle() *instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.idle)
	if n == 0 {
		return nil
	}
	inst := m.idle[n-1]
	m.idle[n-1] = nil
	m.idle = m.idle[:n-1]
	return inst
}

// put gives back a slot and, when inst is not nil, pools inst as idle. It
// reports false when inst could not be pooled (the host is closing): the
// caller must discard it.
func (m *module) put(inst *instance) bool {
	m.mu.Lock()
	pooled := inst != nil && !m.closed
	if pooled {
		m.idle = append(m.idle, inst)
	}
	m.freeSlotLocked()
	m.mu.Unlock()
	return pooled
}

// freeSlotLocked frees a slot: to the oldest waiter when there is one.
func (m *module) freeSlotLocked() {
	if len(m.waiters) > 0 {
		ch := m.waiters[0]
		copy(m.waiters, m.waiters[1:])
		m.waiters[len(m.waiters)-1] = nil
		m.waiters = m.waiters[:len(m.waiters)-1]
		ch <- struct{}{} // buffered: never blocks
		return
	}
	m.inUse--
}

// track records a new live instance.
func (m *module) track(inst *instance) {
	m.mu.Lock()
	m.all[inst] = struct{}{}
	if n := len(m.all); n > m.peak {
		m.peak = n
	}
	m.mu.Unlock()
	m.live.Add(1)
	m.instantiated.Add(1)
}

// discard closes inst for good.
func (m *module) discard(inst *instance) {
	inst.close()
	m.mu.Lock()
	delete(m.all, inst)
	last := m.evicted && len(m.all) == 0 && m.pending == 0
	m.mu.Unlock()
	m.live.Add(-1)
	m.discarded.Add(1)
	if m.h != nil {
		m.h.poolBytes.Add(-int64(inst.footprint))
	}
	if last {
		m.closeCompiled()
	}
}

// drain closes every idle instance and makes later releases close theirs;
// used by Close.
func (m *module) drain() {
	m.mu.Lock()
	m.closed = true
	idle := m.idle
	m.idle = nil
	m.mu.Unlock()
	for _, inst := range idle {
		m.discard(inst)
	}
}

// stats is a snapshot of m's pool.
func (m *module) stats() ModuleStats {
	m.mu.Lock()
	idle, peak := len(m.idle), m.peak
	m.mu.Unlock()
	var snap uint64
	m.snapMu.Lock()
	if m.snap != nil {
		snap = uint64(len(m.snap.mem)) + 8*uint64(len(m.snap.globals))
	}
	m.snapMu.Unlock()
	return ModuleStats{
		Live:          int(m.live.Load()),
		Idle:          idle,
		Instantiated:  m.instantiated.Load(),
		Discarded:     m.discarded.Load(),
		Peak:          peak,
		SnapshotBytes: snap,
	}
}
