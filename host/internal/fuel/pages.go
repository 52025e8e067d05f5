package fuel

import "math"

// Page tracking ([Config.TrackPages]) tells a host which pieces of linear
// memory of [PageSize] bytes a call wrote, so that it copies back only
// those: a Go guest's call writes its stack near one end of a 3 MiB memory
// and its heap near the other, and the one dirty range of
// [Config.TrackWrites] alone spans the megabyte between them (21 µs of
// copying per check of the Go SDK contract; its pages take 0.1-0.3 µs).
//
// The pass adds, after everything of the input's so that no guest code can
// name them: a funcref table with an entry per page (non-null: the page was
// written since the last clear); an immutable funcref global holding a
// reference to one of the added functions, the value that marks a page;
// the i32 globals $last, $count and the list of [PageListLen] pages; and
// four functions. After each store that succeeded (one that traps ends its
// instance, and marking before it could trap on the table first):
//
//	page = (address + offset) >> PageShift
//	if page != $last: call $note(page)
//
// and after each memory.fill, memory.copy and memory.init, a call of $bulk
// that notes each page of its destination. $note sets $last, grows the
// table to cover the memory when it does not (a memory may grow without
// this module's memory.grow: imported, or exported and grown by another
// module), returns if the page's entry is set, and otherwise sets it, widens
// the dirty range ([DirtyLoExportName], [DirtyHiExportName]) by the page
// plus the [PageStraddle] bytes a store of up to 8 bytes may write past its
// page's end, and appends the page to the list, counting it in
// [DirtyCountExportName]; a count past PageListLen means the list
// overflowed. A bulk write of more than PageListLen pages overflows it at
// once (table.fill).
//
// Before a call the host reads the count and the list (by global index,
// [Info.PageList]; they are not exported) and copies those pages back from
// its snapshot; after an overflow it calls the exported [ScanExportName]
// instead, which refills the list from the table (and nulls what it lists)
// within the dirty range, one list at a time. Then it sets
// [DirtyLastExportName] to -1, which no page has, and [PageStale] in the
// count: the next $note (the first write of the next call) sees $last and
// first clears the entries of the listed pages, the count and the range,
// so that a restore costs the host no call into the guest. [ClearExportName] clears everything at once (the
// whole table), for the snapshot after initialisation.
//
// The hot path is a global load and a compare per store; $note runs once
// per change of page, and its list append once per page and call. None of
// it costs fuel. The output needs reference types (a second table,
// table.get, table.set, table.fill): a WebAssembly 2.0 runtime.
const (
	// PageShift is log2 of [PageSize].
	PageShift = 10
	// PageSize is the granularity of page tracking: 1 KiB. Measured on the
	// Go SDK contract's check (host BenchmarkCheck): 256-byte pages call
	// $note twice as often, 4 KiB pages copy twice as much per page
	// written, and neither was faster.
	PageSize = 1 << PageShift
	// PageStraddle is how many bytes past its page's end a store that
	// starts in it may write (an 8-byte store at the page's last byte): a
	// host copies each listed page plus these.
	PageStraddle = 7
	// PageListLen is the number of pages the list holds before it
	// overflows.
	PageListLen = 256

	// DirtyCountExportName is a mutable i32: the pages listed since the
	// last clear; PageListLen+1 when the list overflowed. A host that has
	// restored the listed pages sets [PageStale] in it.
	DirtyCountExportName = "kh_dirty_count"
	// DirtyLastExportName is a mutable i32: the page the guest last wrote.
	// A host sets it to -1 (0xffffffff) after restoring the listed pages:
	// the next write then clears their entries first (and the count, with
	// PageStale, to 0).
	DirtyLastExportName = "kh_dirty_last"
	// PageStale is the bit a host sets in the count, with $last at -1,
	// when it has restored the listed pages: until the guest writes again,
	// the count says that nothing was written since.
	PageStale = 1 << 31
	// ClearExportName is the exported function () -> () that clears all
	// page tracking: every entry of the table, the count, the range.
	ClearExportName = "kh_dirty_clear"
	// ScanExportName is the exported function (from i32) -> (next i32)
	// that, after an overflow, empties the list and refills it with the
	// written pages from page from on, nulling their entries, until the
	// list is full or the dirty range ends; it returns where it stopped.
	// A host copies the listed pages and scans again from next while the
	// list came back full.
	ScanExportName = "kh_dirty_scan"
)

// paged reports whether the output tracks pages: with Config.TrackPages
// and a memory to track.
func (m *module) paged() bool { return m.track && m.pages && m.hasMemory }

// Indices of what page tracking adds: types and functions after the tick's
// (after the input's without metering), the table after the input's
// tables, globals after the tracking globals.
func (m *module) pageTypes() uint32 {
	if m.metered {
		return m.tickType() + 1
	}
	return m.tickType()
}
func (m *module) typeI32() uint32       { return m.pageTypes() }     // (i32) -> ()
func (m *module) typeI32I32() uint32    { return m.pageTypes() + 1 } // (i32 i32) -> ()
func (m *module) typeVoid() uint32      { return m.pageTypes() + 2 } // () -> ()
func (m *module) typeI32ToI32() uint32  { return m.pageTypes() + 3 } // (i32) -> (i32)
func (m *module) pageTypeCount() uint32 { return 4 }
func (m *module) noteFunc() uint32 {
	if m.metered {
		return m.tickFunc() + 1
	}
	return m.tickFunc()
}
func (m *module) appendFunc() uint32    { return m.noteFunc() + 1 }
func (m *module) unstaleFunc() uint32   { return m.noteFunc() + 2 }
func (m *module) bulkFunc() uint32      { return m.noteFunc() + 3 }
func (m *module) clearFunc() uint32     { return m.noteFunc() + 4 }
func (m *module) scanFunc() uint32      { return m.noteFunc() + 5 }
func (m *module) pageFuncCount() uint32 { return 6 }
func (m *module) pageTable() uint32     { return m.tables }
func (m *module) lastGlobal() uint32    { return m.stickyGlobal() + 1 }
func (m *module) countGlobal() uint32   { return m.stickyGlobal() + 2 }
func (m *module) anyGlobal() uint32     { return m.stickyGlobal() + 3 }
func (m *module) listGlobal() uint32    { return m.stickyGlobal() + 4 }

// pageGlobals is the number of globals page tracking adds.
func (m *module) pageGlobals() uint32 {
	if m.paged() {
		return 3 + PageListLen
	}
	return 0
}

// pageExports is the number of exports page tracking adds.
func (m *module) pageExports() uint32 {
	if m.paged() {
		return 4
	}
	return 0
}

// appendPageGlobals appends the definitions of $last (-1: nothing to
// clear), $count, the marker and the list.
func (m *module) appendPageGlobals(dst []byte) []byte {
	if !m.paged() {
		return dst
	}
	dst = append(dst, valTypeI32, 0x01, opI32Const, 0x7f, opEnd)
	dst = append(dst, valTypeI32, 0x01, opI32Const, 0, opEnd)
	dst = appendU32(append(dst, refTypeFunc, 0x00, opRefFunc), m.noteFunc())
	dst = append(dst, opEnd)
	for i := 0; i < PageListLen; i++ {
		dst = append(dst, valTypeI32, 0x01, opI32Const, 0, opEnd)
	}
	return dst
}

// appendPageExports appends the exports of $count, $last, $clear and
// $scan.
func (m *module) appendPageExports(dst []byte) []byte {
	if !m.paged() {
		return dst
	}
	for _, e := range []struct {
		name string
		kind byte
		idx  uint32
	}{
		{DirtyCountExportName, 0x03, m.countGlobal()},
		{DirtyLastExportName, 0x03, m.lastGlobal()},
		{ClearExportName, 0x00, m.clearFunc()},
		{ScanExportName, 0x00, m.scanFunc()},
	} {
		dst = appendU32(dst, uint32(len(e.name)))
		dst = append(dst, e.name...)
		dst = appendU32(append(dst, e.kind), e.idx)
	}
	return dst
}

// appendPageTypes appends the types of the added functions.
func (m *module) appendPageTypes(dst []byte) []byte {
	if !m.paged() {
		return dst
	}
	dst = append(dst, 0x60, 1, valTypeI32, 0)
	dst = append(dst, 0x60, 2, valTypeI32, valTypeI32, 0)
	dst = append(dst, 0x60, 0, 0)
	return append(dst, 0x60, 1, valTypeI32, 1, valTypeI32)
}

// appendPageFuncs appends the function section entries of the added
// functions: $note, $append, $unstale, $bulk, $clear, $scan.
func (m *module) appendPageFuncs(dst []byte) []byte {
	if !m.paged() {
		return dst
	}
	for _, t := range []uint32{m.typeI32(), m.typeI32(), m.typeVoid(), m.typeI32I32(), m.typeVoid(), m.typeI32ToI32()} {
		dst = appendU32(dst, t)
	}
	return dst
}

// appendPageTable appends the table's definition: funcref, no entries
// (the first $note grows it to the memory's size), no maximum.
func (m *module) appendPageTable(dst []byte) []byte {
	if !m.paged() {
		return dst
	}
	return append(dst, refTypeFunc, 0x00, 0)
}

// appendPageBodies appends the bodies of the added functions, each with
// its size, in the order of appendPageFuncs.
func (m *module) appendPageBodies(dst []byte) []byte {
	if !m.paged() {
		return dst
	}
	for _, body := range [][]byte{m.noteBody(), m.appendBody(), m.unstaleBody(), m.bulkBody(), m.clearBody(), m.scanBody()} {
		dst = appendU32(dst, uint32(len(body)))
		dst = append(dst, body...)
	}
	return dst
}

// Opcodes page tracking uses beyond code.go's.
const (
	refTypeFunc  = 0x70
	opRefIsNull  = 0xd1
	opI32Eqz     = 0x45
	opI32Eq      = 0x46
	opI32LtU     = 0x49
	opI32GeU     = 0x4f
	opI32Add     = 0x6a
	opI32And     = 0x71
	opI32Sub     = 0x6b
	opI32Shl     = 0x74
	opI32ShrU    = 0x76
	opI64LtU     = 0x54
	opI64GtU     = 0x56
	opI64ShrU    = 0x88
	opI32WrapI64 = 0xa7
)

// appendTableOp appends the 0xfc-prefixed table instruction sub on the
// page table.
func (m *module) appendTableOp(b []byte, sub uint32) []byte {
	b = appendU32(append(b, opPrefixMisc), sub)
	return appendU32(b, m.pageTable())
}

func (m *module) appendGlobalOp(b []byte, op byte, g uint32) []byte {
	return appendU32(append(b, op), g)
}

// noteBody is $note (param $p i32) (local $e i64):
//
//	(if (i32.eq (global.get $last) (i32.const -1)) (then (call $unstale)))
//	(global.set $last (local.get $p))
//	(if (i32.ge_u (local.get $p) (table.size $pages))
//	  (then (drop (table.grow $pages (ref.null func)
//	          (i32.sub (i32.shl (memory.size) (16-PageShift)) (table.size $pages))))))
//	(if (i32.eqz (ref.is_null (table.get $pages (local.get $p)))) (then return))
//	(table.set $pages (local.get $p) (global.get $any))
//	(local.set $e (i64.shl (i64.extend_i32_u (local.get $p)) PageShift))
//	(if (i64.lt_u (local.get $e) (global.get $lo)) (then (global.set $lo (local.get $e))))
//	(local.tee $e (i64.add (local.get $e) (PageSize+PageStraddle)))
//	(if (i64.gt_u (local.get $e) (global.get $hi)) (then (global.set $hi (local.get $e))))
//	(call $append (local.get $p))
//
// The growth covers $p: a store to it succeeded, so it is inside the
// memory.
func (m *module) noteBody() []byte {
	b := []byte{1, 1, valTypeI64} // (local $e i64)
	b = m.appendGlobalOp(b, opGlobalGet, m.lastGlobal())
	b = append(b, opI32Const, 0x7f, opI32Eq, opIf, blockTypeEmpty, opCall)
	b = append(appendU32(b, m.unstaleFunc()), opEnd)
	b = m.appendGlobalOp(append(b, opLocalGet, 0), opGlobalSet, m.lastGlobal())
	b = append(b, opLocalGet, 0)
	b = m.appendTableOp(b, miscTableSize)
	b = append(b, opI32GeU, opIf, blockTypeEmpty, opRefNull, refTypeFunc, opMemorySize, 0)
	b = append(b, opI32Const, 16-PageShift, opI32Shl)
	b = m.appendTableOp(b, miscTableSize)
	b = append(b, opI32Sub)
	b = m.appendTableOp(b, miscTableGrow)
	b = append(b, opDrop, opEnd)
	b = appendU32(append(b, opLocalGet, 0, opTableGet), m.pageTable())
	b = append(b, opRefIsNull, opI32Eqz, opIf, blockTypeEmpty, opReturn, opEnd)
	b = m.appendGlobalOp(append(b, opLocalGet, 0), opGlobalGet, m.anyGlobal())
	b = appendU32(append(b, opTableSet), m.pageTable())
	b = append(b, opLocalGet, 0, opI64ExtendI32U, opI64Const, PageShift, opI64Shl, opLocalTee, 1)
	b = m.appendGlobalOp(b, opGlobalGet, m.dirtyLoGlobal())
	b = append(b, opI64LtU, opIf, blockTypeEmpty, opLocalGet, 1)
	b = append(m.appendGlobalOp(b, opGlobalSet, m.dirtyLoGlobal()), opEnd)
	b = appendS64(append(b, opLocalGet, 1, opI64Const), PageSize+PageStraddle)
	b = append(b, opI64Add, opLocalTee, 1)
	b = m.appendGlobalOp(b, opGlobalGet, m.dirtyHiGlobal())
	b = append(b, opI64GtU, opIf, blockTypeEmpty, opLocalGet, 1)
	b = append(m.appendGlobalOp(b, opGlobalSet, m.dirtyHiGlobal()), opEnd)
	b = appendU32(append(b, opLocalGet, 0, opCall), m.appendFunc())
	return append(b, opEnd)
}

// appendBody is $append (param $p i32): the page appended to the list,
// or the count set past PageListLen when the list is full.
//
//	(if (i32.ge_u (global.get $count) PageListLen)
//	  (then (global.set $count PageListLen+1) return))
//	(global.set $list[$count] (local.get $p))   ;; br_table over the list
//	(global.set $count (i32.add (global.get $count) 1))
func (m *module) appendBody() []byte {
	b := []byte{0}
	b = m.appendGlobalOp(b, opGlobalGet, m.countGlobal())
	b = appendS64(append(b, opI32Const), PageListLen)
	b = append(b, opI32GeU, opIf, blockTypeEmpty, opI32Const)
	b = appendS64(b, PageListLen+1)
	b = m.appendGlobalOp(b, opGlobalSet, m.countGlobal())
	b = append(b, opReturn, opEnd)
	// block $exit, then PageListLen blocks; the count c branches out of
	// the block after whose end list[c] is set.
	b = append(b, opBlock, blockTypeEmpty)
	for i := 0; i < PageListLen; i++ {
		b = append(b, opBlock, blockTypeEmpty)
	}
	b = m.appendGlobalOp(b, opGlobalGet, m.countGlobal())
	b = appendU32(append(b, opBrTable), PageListLen)
	for c := 0; c <= PageListLen; c++ { // label c for count c; the default leaves
		b = appendU32(b, uint32(c))
	}
	// After the end of the block of label d, set list[d] and leave to
	// $exit, PageListLen-1-d blocks out.
	for d := 0; d < PageListLen; d++ {
		b = append(b, opEnd, opLocalGet, 0)
		b = m.appendGlobalOp(b, opGlobalSet, m.listGlobal()+uint32(d))
		b = appendU32(append(b, opBr), uint32(PageListLen-1-d))
	}
	b = append(b, opEnd) // $exit
	b = m.appendGlobalOp(b, opGlobalGet, m.countGlobal())
	b = append(b, opI32Const, 1, opI32Add)
	b = m.appendGlobalOp(b, opGlobalSet, m.countGlobal())
	return append(b, opEnd)
}

// appendListClear appends code that nulls the entries of the listed pages
// (the count is at most PageListLen): PageListLen+1 blocks, and the count c
// branches out of the one after whose end list[c-1], then list[c-2] ...
// list[0] are nulled, falling through.
func (m *module) appendListClear(b []byte) []byte {
	for i := 0; i <= PageListLen; i++ {
		b = append(b, opBlock, blockTypeEmpty)
	}
	b = m.appendGlobalOp(b, opGlobalGet, m.countGlobal())
	b = appendU32(append(b, opBrTable), PageListLen+1)
	for c := 0; c <= PageListLen; c++ {
		b = appendU32(b, uint32(PageListLen-c))
	}
	b = appendU32(b, PageListLen) // never taken
	for i := PageListLen - 1; i >= 0; i-- {
		b = m.appendGlobalOp(append(b, opEnd), opGlobalGet, m.listGlobal()+uint32(i))
		b = append(b, opRefNull, refTypeFunc, opTableSet)
		b = appendU32(b, m.pageTable())
	}
	return append(b, opEnd)
}

// appendResetCount appends code that empties the count and the range.
func (m *module) appendResetCount(b []byte) []byte {
	b = m.appendGlobalOp(append(b, opI32Const, 0), opGlobalSet, m.countGlobal())
	b = appendS64(append(b, opI64Const), math.MaxInt64)
	b = m.appendGlobalOp(b, opGlobalSet, m.dirtyLoGlobal())
	return m.appendGlobalOp(append(b, opI64Const, 0), opGlobalSet, m.dirtyHiGlobal())
}

// unstaleBody is $unstale (): the entries of the pages the host restored
// nulled, the count and the range emptied. Without PageStale the count is
// at most PageListLen: after an overflow the host scanned the table.
//
//	(global.set $count (i32.and (global.get $count) (i32.const ^PageStale)))
//	... the listed entries nulled, the count and the range emptied
func (m *module) unstaleBody() []byte {
	b := m.appendGlobalOp([]byte{0}, opGlobalGet, m.countGlobal())
	b = appendS64(append(b, opI32Const), int64(int32(^uint32(PageStale))))
	b = m.appendGlobalOp(append(b, opI32And), opGlobalSet, m.countGlobal())
	b = m.appendListClear(b)
	return append(m.appendResetCount(b), opEnd)
}

// clearBody is $clear (): every entry nulled, the count and the range
// emptied, and $last set to -1.
//
//	(table.fill $pages (i32.const 0) (ref.null func) (table.size $pages))
func (m *module) clearBody() []byte {
	b := []byte{0, opI32Const, 0, opRefNull, refTypeFunc}
	b = m.appendTableOp(b, miscTableSize)
	b = m.appendTableOp(b, miscTableFill)
	b = m.appendResetCount(b)
	b = m.appendGlobalOp(append(b, opI32Const, 0x7f), opGlobalSet, m.lastGlobal())
	return append(b, opEnd)
}

// bulkBody is $bulk (param $dst i32) (param $n i32) (local $p i32) (local
// $last i32): notes every page of [dst, dst+n), a write that succeeded.
//
//	(if (i32.eqz (local.get $n)) (then return))
//	(local.set $p (i32.shr_u (local.get $dst) PageShift))
//	(local.set $last (i32.shr_u (i32.sub (i32.add (local.get $dst) (local.get $n)) 1) PageShift))
//	(if (i32.ge_u (i32.sub (local.get $last) (local.get $p)) PageListLen)
//	  (then (call $note (local.get $last)) (call $note (local.get $p))
//	        (table.fill $pages (local.get $p) (global.get $any) (i32.sub (local.get $last) (local.get $p)))
//	        (global.set $count PageListLen+1) return))
//	(loop $l (call $note (local.get $p))
//	  (if (i32.lt_u (local.get $p) (local.get $last))
//	    (then (local.set $p (i32.add (local.get $p) 1)) (br $l))))
//
// dst+n-1 is below 2^32 (the write succeeded), so i32 arithmetic is exact.
func (m *module) bulkBody() []byte {
	b := []byte{1, 2, valTypeI32} // (local $p i32) (local $last i32)
	b = append(b, opLocalGet, 1, opI32Eqz, opIf, blockTypeEmpty, opReturn, opEnd)
	b = append(b, opLocalGet, 0, opI32Const, PageShift, opI32ShrU, opLocalSet, 2)
	b = append(b, opLocalGet, 0, opLocalGet, 1, opI32Add, opI32Const, 1, opI32Sub)
	b = append(b, opI32Const, PageShift, opI32ShrU, opLocalSet, 3)
	b = append(b, opLocalGet, 3, opLocalGet, 2, opI32Sub, opI32Const)
	b = appendS64(b, PageListLen)
	b = append(b, opI32GeU, opIf, blockTypeEmpty)
	b = appendU32(append(b, opLocalGet, 3, opCall), m.noteFunc())
	b = appendU32(append(b, opLocalGet, 2, opCall), m.noteFunc())
	b = m.appendGlobalOp(append(b, opLocalGet, 2), opGlobalGet, m.anyGlobal())
	b = append(b, opLocalGet, 3, opLocalGet, 2, opI32Sub)
	b = m.appendTableOp(b, miscTableFill)
	b = appendS64(append(b, opI32Const), PageListLen+1)
	b = m.appendGlobalOp(b, opGlobalSet, m.countGlobal())
	b = append(b, opReturn, opEnd)
	b = append(b, opLoop, blockTypeEmpty)
	b = appendU32(append(b, opLocalGet, 2, opCall), m.noteFunc())
	b = append(b, opLocalGet, 2, opLocalGet, 3, opI32LtU, opIf, blockTypeEmpty)
	b = append(b, opLocalGet, 2, opI32Const, 1, opI32Add, opLocalSet, 2, opBr, 1, opEnd)
	return append(b, opEnd, opEnd)
}

// scanBody is $scan (param $from i32) (result i32) (local $end i32): the
// list emptied and refilled with the pages at $from and after whose entry
// is set, each nulled, until the list is full or the end of the dirty
// range (or of the table) is reached; it returns the page it stopped at.
//
//	(global.set $count (i32.const 0))
//	(local.set $end (i32.wrap_i64 (i64.shr_u (global.get $hi) PageShift)))
//	(if (i32.lt_u (table.size $pages) (local.get $end)) (then (local.set $end (table.size $pages))))
//	(block $done (loop $l
//	  (br_if $done (i32.ge_u (local.get $from) (local.get $end)))
//	  (br_if $done (i32.ge_u (global.get $count) PageListLen))
//	  (if (i32.eqz (ref.is_null (table.get $pages (local.get $from))))
//	    (then (table.set $pages (local.get $from) (ref.null func)) (call $append (local.get $from))))
//	  (local.set $from (i32.add (local.get $from) 1))
//	  (br $l)))
//	(local.get $from)
//
// $hi is one past the last written page's end plus PageStraddle, below
// 2^32+PageSize: shifted, it is that page's index plus one.
func (m *module) scanBody() []byte {
	b := []byte{1, 1, valTypeI32} // (local $end i32)
	b = m.appendGlobalOp(append(b, opI32Const, 0), opGlobalSet, m.countGlobal())
	b = m.appendGlobalOp(b, opGlobalGet, m.dirtyHiGlobal())
	b = append(b, opI64Const, PageShift, opI64ShrU, opI32WrapI64, opLocalSet, 1)
	b = m.appendTableOp(b, miscTableSize)
	b = append(b, opLocalGet, 1, opI32LtU, opIf, blockTypeEmpty)
	b = m.appendTableOp(b, miscTableSize)
	b = append(b, opLocalSet, 1, opEnd)
	b = append(b, opBlock, blockTypeEmpty, opLoop, blockTypeEmpty)
	b = append(b, opLocalGet, 0, opLocalGet, 1, opI32GeU, opBrIf, 1)
	b = m.appendGlobalOp(b, opGlobalGet, m.countGlobal())
	b = appendS64(append(b, opI32Const), PageListLen)
	b = append(b, opI32GeU, opBrIf, 1)
	b = appendU32(append(b, opLocalGet, 0, opTableGet), m.pageTable())
	b = append(b, opRefIsNull, opI32Eqz, opIf, blockTypeEmpty, opLocalGet, 0, opRefNull, refTypeFunc, opTableSet)
	b = appendU32(b, m.pageTable())
	b = appendU32(append(b, opLocalGet, 0, opCall), m.appendFunc())
	b = append(b, opEnd)
	b = append(b, opLocalGet, 0, opI32Const, 1, opI32Add, opLocalSet, 0, opBr, 0)
	b = append(b, opEnd, opEnd, opLocalGet, 0)
	return append(b, opEnd)
}

// appendPagePre appends, before a store (stack: address, value), code that
// keeps the address in $a (local t) and the value in $v.
func appendPagePre(b []byte, v, t uint32) []byte {
	b = appendU32(append(b, opLocalSet), v)
	b = appendU32(append(b, opLocalTee), t)
	return appendU32(append(b, opLocalGet), v)
}

// appendPageStore appends, after a store of offset off whose address is in
// $a (local t), the hot path:
//
//	(local.tee $a (i32.shr_u (i32.add (local.get $a) off) PageShift))
//	(if (i32.ne (global.get $last)) (then (call $note (local.get $a))))
//
// The address plus offset is below 2^32 (the store succeeded), so i32
// arithmetic is exact.
func (m *module) appendPageStore(b []byte, t, off uint32) []byte {
	b = appendU32(append(b, opLocalGet), t)
	if off != 0 {
		b = appendS64(append(b, opI32Const), int64(int32(off)))
		b = append(b, opI32Add)
	}
	b = append(b, opI32Const, PageShift, opI32ShrU, opLocalTee)
	b = appendU32(b, t)
	b = m.appendGlobalOp(b, opGlobalGet, m.lastGlobal())
	b = append(b, opI32Ne, opIf, blockTypeEmpty, opLocalGet)
	b = appendU32(b, t)
	b = appendU32(append(b, opCall), m.noteFunc())
	return append(b, opEnd)
}

// appendPageBulkPre appends, before memory.fill, memory.copy or
// memory.init (stack: destination, source or value, size), code that keeps
// the destination in local t and the size in t+1.
func appendPageBulkPre(b []byte, t uint32) []byte {
	b = appendU32(append(b, opLocalSet), t+1)
	b = appendU32(append(b, opLocalSet), t+2)
	b = appendU32(append(b, opLocalTee), t)
	b = appendU32(append(b, opLocalGet), t+2)
	return appendU32(append(b, opLocalGet), t+1)
}

// appendPageBulk appends, after a bulk write, (call $bulk (local.get t)
// (local.get t+1)).
func (m *module) appendPageBulk(b []byte, t uint32) []byte {
	b = appendU32(append(b, opLocalGet), t)
	b = appendU32(append(b, opLocalGet), t+1)
	return appendU32(append(b, opCall), m.bulkFunc())
}
