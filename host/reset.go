package host

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

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
// and bulk memory write is recorded where the guest cannot name it, and
// anything a restore cannot undo through wazero's API
// (table.set/grow/fill/copy/init, elem.drop, data.drop) sets a sticky flag.
// A module whose memory is larger than rangeMaxBytes (128 KiB) after
// initialisation has its writes tracked by 1 KiB pages (TrackPages,
// host/internal/fuel/pages.go): each page written is marked in a table and
// listed, up to fuel.PageListLen, in globals. A smaller one (the C genesis
// contracts: 64 KiB) has one dirty range widened by every write, which is
// cheaper there: no call out of the write's function, nothing to list. The
// host keeps a dirty range of its own for what it writes (the request,
// WASI results, kernel responses).
//
// Before each call the host copies back from a snapshot taken after
// initialisation the listed pages (each plus the 7 bytes a store may write
// past its end) or the guest's range, and its own range, and writes the
// mutable globals back; an instance whose memory grew or whose sticky flag
// is set is discarded after its call instead (the pool makes a fresh one).
// A check of the Go SDK contract writes 5 pages of its 3 MiB memory (its
// stack and its heap, a megabyte apart): restoring copies 5 KiB, where
// one range copied 1 MiB (21 µs). One of the C genesis contract writes a
// few hundred bytes and the request.
//
// When a call writes more pages than the list holds, the host has the
// guest's scan function (fuel.ScanExportName) list them from the table,
// one list at a time, within the dirty range: the host copies no page that
// no write touched, so that a guest writing a few bytes far apart cannot
// make the host copy the megabytes between them.

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
	loG, hiG       api.MutableGlobal // the guest's dirty range (by range, or of its pages)
	stickyG        api.MutableGlobal
	globals        []api.MutableGlobal
	hostLo, hostHi uint64     // the dirty range the host widened
	pages          *pageState // nil without page tracking
	// restored is the bytes the last restore copied back, for tests.
	restored uint64
}

// pageState is an instance's side of page tracking: the count of listed
// pages, the page last written (set to noPage after a restore), the
// module's globals by index (the list is not exported) and the first of
// the list, and the functions that list the pages after an overflow and
// that clear all of it.
type pageState struct {
	countG, lastG   api.MutableGlobal
	globalsX        experimental.InternalModule
	list            uint32
	scanFn, clearFn api.Function
}

// noPage is what the host sets the guest's last written page to after a
// restore: no page has it, so the guest's next write clears the stale list
// first (fuel.DirtyLastExportName).
const noPage = math.MaxUint32

// takeSnapshot binds inst's tracking globals and functions and records its
// state, right after initialisation, as m's snapshot (or its own, when it
// differs from m's). On a host with the reset disabled (a test hook) it
// does nothing.
func (h *Host) takeSnapshot(m *module, inst *instance) error {
	if h.noReset {
		return nil
	}
	g := func(name string) api.MutableGlobal {
		v, _ := inst.mod.ExportedGlobal(name).(api.MutableGlobal)
		return v
	}
	inst.loG, inst.hiG, inst.stickyG = g(fuel.DirtyLoExportName), g(fuel.DirtyHiExportName), g(fuel.StickyExportName)
	if inst.loG == nil || inst.hiG == nil || inst.stickyG == nil {
		return invalid("instrumented module lacks its write-tracking globals")
	}
	if m.pageList != 0 {
		p := &pageState{countG: g(fuel.DirtyCountExportName), lastG: g(fuel.DirtyLastExportName), list: m.pageList,
			scanFn: inst.mod.ExportedFunction(fuel.ScanExportName), clearFn: inst.mod.ExportedFunction(fuel.ClearExportName)}
		x, ok := inst.mod.(experimental.InternalModule)
		if p.countG == nil || p.lastG == nil || p.scanFn == nil || p.clearFn == nil ||
			!ok || x.NumGlobal() < int(m.pageList)+fuel.PageListLen {
			return invalid("instrumented module lacks its page-tracking globals or functions")
		}
		p.globalsX = x
		inst.pages = p
	}
	inst.globals = make([]api.MutableGlobal, len(m.mutGlobals))
	vals := make([]uint64, len(m.mutGlobals))
	for i, gi := range m.mutGlobals {
		v := g(fuel.GlobalExportName(gi))
		if v == nil {
			return invalid("instrumented module lacks the export of its global %d", gi)
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
	// What initialisation wrote is in the snapshot: forget it.
	inst.hostLo, inst.hostHi = math.MaxUint64, 0
	inst.stickyG.Set(0)
	if inst.pages != nil {
		return inst.callTracking(inst.pages.clearFn, 0)
	}
	inst.loG.Set(math.MaxInt64)
	inst.hiG.Set(0)
	return nil
}

// callTracking calls fn, one of the functions the pass added for page
// tracking, with the argument arg; its result, if any, is left in
// inst.stack[0]. They run no guest code and cost no fuel; a failure (none
// is known) ends the instance.
func (inst *instance) callTracking(fn api.Function, arg uint64) error {
	inst.stack[0] = arg
	if err := fn.CallWithStack(context.Background(), inst.stack[:]); err != nil {
		return newError(ErrTrap, fmt.Errorf("page tracking: %w", err))
	}
	return nil
}

// restore puts inst back in its snapshot's state before a call: what the
// guest wrote since (its pages or its range) and what the host wrote (its
// range, clamped to memory) copied back, the mutable globals written back
// and the request region back to initialisation's. An instance that cannot
// be restored (restorable false) never reaches here: it was discarded. A
// failure ends the instance.
func (inst *instance) restore() error {
	if inst.snap == nil {
		return nil
	}
	mem, _ := inst.mem.Read(0, uint32(len(inst.snap.mem)))
	inst.restored = 0
	// The guest's writes and the host's are copied back apart: the request
	// region and the guest's stack lie kilobytes apart (16 KiB in the C
	// genesis contracts), and their union would copy everything between.
	if p := inst.pages; p == nil {
		if lo, hi := inst.loG.Get(), inst.hiG.Get(); lo < hi {
			inst.copyBack(mem, lo, hi)
			inst.loG.Set(math.MaxInt64)
			inst.hiG.Set(0)
		}
	} else if n := p.countG.Get(); n > 0 && n&fuel.PageStale == 0 {
		if n > fuel.PageListLen {
			// More pages than the list holds: list them from the table,
			// one list at a time.
			for from := inst.loG.Get() >> fuel.PageShift; ; {
				if err := inst.callTracking(p.scanFn, from); err != nil {
					return err
				}
				from = uint64(uint32(inst.stack[0]))
				if inst.copyListed(mem) < fuel.PageListLen {
					break
				}
			}
		} else {
			inst.copyListed(mem)
		}
		// The guest's next write clears the listed entries; until it
		// writes, the count says that nothing was written.
		p.lastG.Set(noPage)
		p.countG.Set(p.countG.Get() | fuel.PageStale)
	}
	if inst.hostLo < inst.hostHi {
		inst.copyBack(mem, inst.hostLo, inst.hostHi)
		inst.hostLo, inst.hostHi = math.MaxUint64, 0
	}
	for i, g := range inst.globals {
		g.Set(inst.snap.globals[i])
	}
	inst.reqPtr, inst.reqCap, inst.allocFuel = inst.snap.reqPtr, inst.snap.reqCap, 0
	return nil
}

// copyListed copies the pages of the guest's list back into mem, each with
// the bytes a store that starts in it may write past its end, and returns
// how many there were.
func (inst *instance) copyListed(mem []byte) uint32 {
	p := inst.pages
	n := uint32(min(p.countG.Get(), fuel.PageListLen))
	for i := range n {
		lo := p.globalsX.Global(int(p.list+i)).Get() << fuel.PageShift
		inst.copyBack(mem, lo, lo+fuel.PageSize+fuel.PageStraddle)
	}
	return n
}

// copyBack copies the snapshot's bytes [lo, hi), clamped to its memory,
// back into mem.
func (inst *instance) copyBack(mem []byte, lo, hi uint64) {
	hi = min(hi, uint64(len(inst.snap.mem)))
	if lo < hi {
		inst.restored += hi - lo
		copy(mem[lo:hi], inst.snap.mem[lo:hi])
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
