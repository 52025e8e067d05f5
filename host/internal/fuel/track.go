package fuel

import (
	"math"
	"strconv"
)

// Write tracking ([Config.TrackWrites]) lets a host restore an instance to
// the state it had after initialisation before every call, copying back only
// what the guest may have changed instead of its whole memory:
//
//   - every store and every memory.fill, memory.copy and memory.init widens
//     a dirty range, two added i64 globals exported as [DirtyLoExportName]
//     and [DirtyHiExportName], to cover the bytes it writes (before it
//     writes them; one that traps ends its instance anyway);
//   - every instruction whose effect the host cannot undo through the
//     embedding API (table.set, table.grow, table.fill, table.copy,
//     table.init, elem.drop, data.drop) sets an added i32 global exported as
//     [StickyExportName]: the host then discards the instance after the call;
//   - every mutable global the module defines is exported as
//     [GlobalExportName] of its index, for the host to read at the snapshot
//     and write back.
//
// The globals are out of the input's index range, like the fuel global, so
// no guest code can read or reset them. The added code costs no fuel: fuel
// used is the same with or without tracking.
//
// With [Config.TrackPages] as well (pages.go) the writes are tracked by
// pages of [PageSize] bytes instead: each store and bulk write marks its
// pages after it succeeded, and the dirty range, widened by whole pages as
// they are first written, only bounds the host's scan after the page list
// overflowed. A store writes [PageStraddle] bytes past its page at most.
const (
	// DirtyLoExportName is a mutable i64: the lowest address written since
	// the host last reset it (to math.MaxInt64, its initial value). With
	// page tracking, the start of the lowest page written.
	DirtyLoExportName = "kh_dirty_lo"
	// DirtyHiExportName is a mutable i64: one past the highest address
	// written since the host last reset it (to 0, its initial value). It may
	// exceed the memory's size (a write that trapped): the host clamps it.
	// With page tracking, the end of the highest page written plus
	// PageStraddle.
	DirtyHiExportName = "kh_dirty_hi"
	// StickyExportName is a mutable i32 set to 1 by any instruction whose
	// effect a restore of memory and globals cannot undo (tables, dropped
	// segments).
	StickyExportName = "kh_sticky"
	// globalExportPrefix prefixes the exports of the input's mutable globals.
	globalExportPrefix = "kh_global_"
)

// GlobalExportName is the name under which a module instrumented with
// [Config.TrackWrites] exports its mutable global of index i (in the global
// index space of the input).
func GlobalExportName(i uint32) string {
	return globalExportPrefix + strconv.FormatUint(uint64(i), 10)
}

// Mark kinds of write tracking (code.go).
const (
	markTrackStore = 5 // before a store: widen the dirty range by its bytes
	markTrackBulk  = 6 // before memory.fill/copy/init: by its destination range
	markSticky     = 7 // before an instruction a restore cannot undo
	markPageStore  = 8 // after a store: mark its page (pages.go)
	markPageBulk   = 9 // after memory.fill/copy/init: mark their pages
)

// trackLocals is the number of scratch locals a body with tracked writes
// gets, after its other scratch locals: i32 $a, i32 $v (and bulk size),
// i32 $x, i64 $v, f32 $v, f64 $v, i64 $e.
const trackLocals = 7

// trackDecls are the local declarations of the tracking locals.
var trackDecls = []byte{3, valTypeI32, 1, valTypeI64, 1, 0x7d, 1, 0x7c, 1, valTypeI64}

// Indices of the tracking globals: after the memory-cap globals.
func (m *module) dirtyLoGlobal() uint32 { return m.deniedGlobal() + 1 }
func (m *module) dirtyHiGlobal() uint32 { return m.deniedGlobal() + 2 }
func (m *module) stickyGlobal() uint32  { return m.deniedGlobal() + 3 }

// trackedGlobals is the number of globals tracking adds.
func (m *module) trackedGlobals() uint32 {
	if m.track {
		return 3
	}
	return 0
}

// storeShape gives, for each store opcode from 0x36 (i32.store) to 0x3e
// (i64.store32), the bytes it writes and the type of its value.
var storeShape = [...]struct {
	size byte
	vt   byte
}{
	{4, valTypeI32}, {8, valTypeI64}, {4, 0x7d}, {8, 0x7c},
	{1, valTypeI32}, {2, valTypeI32}, {1, valTypeI64}, {2, valTypeI64}, {4, valTypeI64},
}

// appendTrackGlobals appends the tracking globals' definitions.
func (m *module) appendTrackGlobals(dst []byte) []byte {
	if !m.track {
		return dst
	}
	dst = append(dst, valTypeI64, 0x01, opI64Const)
	dst = append(appendS64(dst, math.MaxInt64), opEnd)
	dst = append(dst, valTypeI64, 0x01, opI64Const, 0, opEnd)
	return append(dst, valTypeI32, 0x01, opI32Const, 0, opEnd)
}

// trackExports returns the exports tracking adds: the dirty range, the
// sticky flag and the input's mutable globals.
func (m *module) trackExports() []trackExport {
	if !m.track {
		return nil
	}
	out := []trackExport{{DirtyLoExportName, m.dirtyLoGlobal()}, {DirtyHiExportName, m.dirtyHiGlobal()}, {StickyExportName, m.stickyGlobal()}}
	for _, g := range m.mutGlobals {
		out = append(out, trackExport{GlobalExportName(g), g})
	}
	return out
}

type trackExport struct {
	name   string
	global uint32
}

// appendTrackStore appends, before a store of mk's shape (stack: address,
// value), code that widens the dirty range by [address+offset,
// address+offset+size), with the tracking locals from t:
//
//	local.set $v  local.tee $a  i64.extend_i32_u  i64.const off  i64.add  local.tee $e
//	(if (i64.lt_u (local.get $e) (global.get $lo)) (then (global.set $lo (local.get $e))))
//	(local.tee $e (i64.add (local.get $e) (i64.const size)))
//	(if (i64.gt_u (local.get $e) (global.get $hi)) (then (global.set $hi (local.get $e))))
//	local.get $a  local.get $v
func (m *module) appendTrackStore(b []byte, t uint32, mk mark) []byte {
	v := trackValueLocal(t, mk.vt)
	b = appendU32(append(b, opLocalSet), v)
	b = appendU32(append(b, opLocalTee), t)
	b = append(b, opI64ExtendI32U)
	if mk.off != 0 {
		b = appendS64(append(b, opI64Const), int64(mk.off))
		b = append(b, opI64Add)
	}
	b = m.appendWiden(b, t, func(b []byte) []byte {
		return append(appendS64(append(b, opI64Const), int64(mk.size)), opI64Add)
	})
	b = appendU32(append(b, opLocalGet), t)
	return appendU32(append(b, opLocalGet), v)
}

// trackValueLocal is the tracking local, from the first t, that keeps a
// stored value of type vt.
func trackValueLocal(t uint32, vt byte) uint32 {
	switch vt {
	case valTypeI64:
		return t + 3
	case 0x7d:
		return t + 4
	case 0x7c:
		return t + 5
	}
	return t + 1
}

// appendTrackBulk appends, before memory.fill, memory.copy or memory.init
// (stack: destination, source or value, size), code that widens the dirty
// range by [destination, destination+size).
func (m *module) appendTrackBulk(b []byte, t uint32) []byte {
	b = appendU32(append(b, opLocalSet), t+1)
	b = appendU32(append(b, opLocalSet), t+2)
	b = appendU32(append(b, opLocalTee), t)
	b = append(b, opI64ExtendI32U)
	b = m.appendWiden(b, t, func(b []byte) []byte {
		b = appendU32(append(b, opLocalGet), t+1)
		return append(b, opI64ExtendI32U, opI64Add)
	})
	b = appendU32(append(b, opLocalGet), t)
	b = appendU32(append(b, opLocalGet), t+2)
	return appendU32(append(b, opLocalGet), t+1)
}

// appendWiden appends, with the i64 start address on the stack, code that
// lowers $lo to it and raises $hi to the end that addEnd computes from it.
func (m *module) appendWiden(b []byte, t uint32, addEnd func([]byte) []byte) []byte {
	e := t + 6
	b = appendU32(append(b, opLocalTee), e)
	b = appendU32(append(b, opGlobalGet), m.dirtyLoGlobal())
	b = append(b, 0x54, opIf, blockTypeEmpty, opLocalGet) // i64.lt_u
	b = appendU32(b, e)
	b = appendU32(append(b, opGlobalSet), m.dirtyLoGlobal())
	b = append(b, opEnd, opLocalGet)
	b = appendU32(b, e)
	b = appendU32(append(addEnd(b), opLocalTee), e)
	b = appendU32(append(b, opGlobalGet), m.dirtyHiGlobal())
	b = append(b, 0x56, opIf, blockTypeEmpty, opLocalGet) // i64.gt_u
	b = appendU32(b, e)
	b = appendU32(append(b, opGlobalSet), m.dirtyHiGlobal())
	return append(b, opEnd)
}

// appendSticky appends code that sets the sticky flag.
func (m *module) appendSticky(b []byte) []byte {
	b = append(b, opI32Const, 1, opGlobalSet)
	return appendU32(b, m.stickyGlobal())
}
