package host

import (
	"bytes"
	"context"
	"math"
	"slices"

	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/host/internal/fuel"
)

// Every call of a module starts from the same state (SPEC.md section 7): the
// instance's linear memory and mutable globals as they were right after
// initialisation (start function, _initialize and the request region's
// kh_alloc). Without it a contract could count calls in memory and decide
// differently on identical requests, and a Go guest's fuel depended on how
// warm its instance was (1,817,994 fuel on a first get_quota, ~207k later).
//
// The deploy-time pass tracks writes (fuel.Config.TrackWrites): every store
// and bulk memory write widens a dirty range kept in two globals the guest
// cannot name, and anything a restore cannot undo through wazero's API
// (table.set/grow/fill/copy/init, elem.drop, data.drop) sets a sticky flag.
// The host widens the same range for what it writes itself (the request,
// WASI results, kernel responses). Before each call the host copies the
// dirty range back from a snapshot taken after initialisation and writes the
// mutable globals back; an instance whose memory grew or whose sticky flag
// is set is discarded after its call instead (the pool makes a fresh one).
// A check of the C genesis contract writes a few hundred bytes (its shadow
// stack, the request, the decision): restoring costs a copy of those, not
// of its memory.

// snapshot is the state of an instance right after initialisation, shared
// by every instance of a module whose initial state is the same (it is,
// initialisation being deterministic; instantiateInit checks).
type snapshot struct {
	mem     []byte   // linear memory
	globals []uint64 // the module's mutable globals, in fuel.Info.MutableGlobals order
	// The request region kh_alloc made at initialisation (reqPtr, reqCap),
	// which is part of the state restored.
	reqPtr, reqCap uint32
}

// resetState is an instance's side of the reset.
type resetState struct {
	snap           *snapshot
	loG, hiG       api.MutableGlobal // the dirty range the guest widened
	stickyG        api.MutableGlobal
	globals        []api.MutableGlobal
	hostLo, hostHi uint64 // the dirty range the host widened
}

// takeSnapshot binds inst's tracking globals and records its state, right
// after initialisation, as m's snapshot (or its own, when it differs from
// m's). On a host with the reset disabled (a test hook) it does nothing.
func (h *Host) takeSnapshot(m *module, inst *instance) error {
	if h.noReset {
		return nil
	}
	lo, ok1 := inst.mod.ExportedGlobal(fuel.DirtyLoExportName).(api.MutableGlobal)
	hi, ok2 := inst.mod.ExportedGlobal(fuel.DirtyHiExportName).(api.MutableGlobal)
	st, ok3 := inst.mod.ExportedGlobal(fuel.StickyExportName).(api.MutableGlobal)
	if !ok1 || !ok2 || !ok3 {
		return invalid("instrumented module lacks its write-tracking globals")
	}
	inst.loG, inst.hiG, inst.stickyG = lo, hi, st
	inst.globals = make([]api.MutableGlobal, len(m.mutGlobals))
	vals := make([]uint64, len(m.mutGlobals))
	for i, g := range m.mutGlobals {
		v, ok := inst.mod.ExportedGlobal(fuel.GlobalExportName(g)).(api.MutableGlobal)
		if !ok {
			return invalid("instrumented module lacks the export of its global %d", g)
		}
		inst.globals[i], vals[i] = v, v.Get()
	}
	mem, _ := inst.mem.Read(0, inst.mem.Size())
	m.snapMu.Lock()
	snap := m.snap
	if snap == nil || !bytes.Equal(snap.mem, mem) || !slices.Equal(snap.globals, vals) ||
		snap.reqPtr != inst.reqPtr || snap.reqCap != inst.reqCap {
		snap = &snapshot{mem: bytes.Clone(mem), globals: vals, reqPtr: inst.reqPtr, reqCap: inst.reqCap}
		if m.snap == nil {
			m.snap = snap
		}
	}
	m.snapMu.Unlock()
	inst.snap = snap
	inst.clearDirty()
	inst.stickyG.Set(0)
	return nil
}

// clearDirty empties both dirty ranges.
func (r *resetState) clearDirty() {
	r.loG.Set(math.MaxInt64)
	r.hiG.Set(0)
	r.hostLo, r.hostHi = math.MaxUint64, 0
}

// restore puts inst back in its snapshot's state before a call: the bytes
// written since (the guest's dirty range and the host's, clamped to memory)
// copied back, the mutable globals written back and the
// request region back to initialisation's. An instance that cannot be
// restored (restorable false) never reaches here: it was discarded.
func (inst *instance) restore() {
	if inst.snap == nil {
		return
	}
	// The guest's range and the host's are copied back apart: the request
	// region and the guest's stack lie kilobytes apart (16 KiB in the C
	// genesis contracts), and their union would copy everything between.
	if glo, ghi := inst.loG.Get(), inst.hiG.Get(); glo < ghi || inst.hostLo < inst.hostHi {
		mem, _ := inst.mem.Read(0, uint32(len(inst.snap.mem)))
		inst.snap.copyBack(mem, glo, ghi)
		inst.snap.copyBack(mem, inst.hostLo, inst.hostHi)
	}
	for i, g := range inst.globals {
		g.Set(inst.snap.globals[i])
	}
	inst.reqPtr, inst.reqCap, inst.allocFuel = inst.snap.reqPtr, inst.snap.reqCap, 0
	inst.clearDirty()
}

// copyBack copies the snapshot's bytes [lo, hi), clamped to its memory,
// back into mem.
func (s *snapshot) copyBack(mem []byte, lo, hi uint64) {
	hi = min(hi, uint64(len(s.mem)))
	if lo < hi {
		copy(mem[lo:hi], s.mem[lo:hi])
	}
}

// hostWrote widens inst's host dirty range by the n bytes at ptr, which the
// host is about to write into its memory.
func (inst *instance) hostWrote(ptr, n uint32) {
	if inst.snap == nil || n == 0 {
		return
	}
	inst.hostLo = min(inst.hostLo, uint64(ptr))
	inst.hostHi = max(inst.hostHi, uint64(ptr)+uint64(n))
}

// restorable reports whether inst can be restored after its call: its
// memory did not grow and it changed nothing a restore cannot undo.
func (inst *instance) restorable() bool {
	if inst.snap == nil {
		return true
	}
	return uint64(inst.mem.Size()) == uint64(len(inst.snap.mem)) && inst.stickyG.Get() == 0
}

// markHost widens the host dirty range of the instance running under ctx by
// the n bytes at ptr: a host function is about to write them.
func markHost(ctx context.Context, ptr, n uint32) {
	if c, ok := ctx.(*callCtx); ok && c.inst != nil {
		c.inst.hostWrote(ptr, n)
	}
}

// wasiWrites gives, for each WASI function of the subset that writes guest
// memory, the regions it may write, from its parameters (wasiBytes counts
// the same bytes for fuel).
var wasiWrites = map[string]func(ctx context.Context, p []uint64){
	"args_sizes_get":    func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[0]), 4); markHost(ctx, u32(p[1]), 4) },
	"environ_sizes_get": func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[0]), 4); markHost(ctx, u32(p[1]), 4) },
	"clock_time_get":    func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[2]), 8) },
	"fd_write":          func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[3]), 4) },
	"poll_oneoff": func(ctx context.Context, p []uint64) {
		markHost(ctx, u32(p[1]), satMul(u32(p[2]), 32))
		markHost(ctx, u32(p[3]), 4)
	},
	"random_get":          func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[0]), u32(p[1])) },
	"fd_fdstat_get":       func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[1]), 24) },
	"fd_prestat_get":      func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[1]), 8) },
	"fd_prestat_dir_name": func(ctx context.Context, p []uint64) { markHost(ctx, u32(p[1]), u32(p[2])) },
	// args_get and environ_get write nothing: no arguments, no environment.
}

func u32(v uint64) uint32 { return uint32(v) }

func satMul(a, b uint32) uint32 {
	if p := uint64(a) * uint64(b); p <= math.MaxUint32 {
		return uint32(p)
	}
	return math.MaxUint32
}
