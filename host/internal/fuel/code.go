package fuel

// Opcodes the pass names.
const (
	opUnreachable     = 0x00
	opBlock           = 0x02
	opLoop            = 0x03
	opIf              = 0x04
	opElse            = 0x05
	opEnd             = 0x0b
	opBr              = 0x0c
	opBrIf            = 0x0d
	opBrTable         = 0x0e
	opReturn          = 0x0f
	opCall            = 0x10
	opCallIndirect    = 0x11
	opSelectT         = 0x1c
	opLocalGet        = 0x20
	opLocalSet        = 0x21
	opLocalTee        = 0x22
	opGlobalGet       = 0x23
	opGlobalSet       = 0x24
	opTableGet        = 0x25
	opTableSet        = 0x26
	opMemorySize      = 0x3f
	opMemoryGrow      = 0x40
	opI32Const        = 0x41
	opI64Const        = 0x42
	opF32Const        = 0x43
	opF64Const        = 0x44
	opI64LtS          = 0x53
	opI64Sub          = 0x7d
	opI64Mul          = 0x7e
	opI64ExtendI32U   = 0xad
	opRefNull         = 0xd0
	opRefFunc         = 0xd2
	opPrefixMisc      = 0xfc
	opPrefixSIMD      = 0xfd
	opPrefixThreads   = 0xfe
	blockTypeEmpty    = 0x40
	valTypeI32        = 0x7f
	valTypeI64        = 0x7e
	opDrop            = 0x1a
	opSelect          = 0x1b
	opI64GtS          = 0x55
	miscMemoryInit    = 8
	miscDataDrop      = 9
	miscMemoryCopy    = 10
	miscMemoryFill    = 11
	miscTableInit     = 12
	miscElemDrop      = 13
	miscTableCopy     = 14
	miscTableGrow     = 15
	miscTableSize     = 16
	miscTableFill     = 17
	markStatic        = 0
	markPerUnitCharge = 1
	markCapMemory     = 2 // before memory.grow: refuse growth past the cap
	markCapTable      = 3 // before table.grow: the same
	markTableGrown    = 4 // after table.grow: count the elements added
	opI32Ne           = 0x47
	opI64Add          = 0x7c
	opI64Shl          = 0x86
)

// mark is code to insert before the instruction at pos of a body: a static
// charge of cost, (kind markPerUnitCharge) a charge of cost per unit of the
// i32 operand on top of the stack, or a memory-cap check (markCap*,
// markTableGrown).
type mark struct {
	pos  int
	cost int64
	kind uint8
	// tick: the charge also compares the fuel with the mark and calls the
	// tick function below it. Only loop bodies and the entry of functions
	// that call are ticked: every long run of a guest passes through them
	// (a leaf function without loops runs straight-line code, bounded by
	// its size), and a charge that may call costs more everywhere else
	// (wazero then keeps the function's values out of scratch registers).
	tick bool
	// For write tracking (track.go): a store's memarg offset, the bytes it
	// writes and the type of its value.
	off  uint32
	size byte
	vt   byte
}

// frame is an open block of a body being decoded.
type frame struct {
	op      byte // opBlock, opLoop or opIf
	sawElse bool
}

// bodyState is the scratch space reused across the bodies of one module,
// and what the pass counts across them.
type bodyState struct {
	marks  []mark
	frames []frame
	out    []byte

	memoryGrows, tableGrows int
}

// instrumentBody decodes one function body (without its size prefix) and
// appends the instrumented body, size prefix included, to dst.
// fn is the function's index, base the body's offset in the module.
func (m *module) instrumentBody(st *bodyState, dst, body []byte, fn, base, params int) ([]byte, int, error) {
	r := reader{b: body, base: base}
	errf := func(kind error, at int, format string, args ...any) error {
		e := malformed(at, format, args...).(*Error)
		e.Err, e.Func = kind, fn
		return e
	}
	decls, ok := r.count(2)
	if !ok {
		return nil, 0, errf(ErrMalformed, r.pos(), "bad local declaration count")
	}
	locals := params
	for i := 0; i < decls; i++ {
		n, ok := r.u32()
		if !ok {
			return nil, 0, errf(ErrMalformed, r.pos(), "bad local count")
		}
		if err := valType(&r); err != nil {
			e := err.(*Error)
			e.Func = fn
			return nil, 0, e
		}
		if uint64(locals)+uint64(n) > maxLocals {
			return nil, 0, errf(ErrUnsupported, r.pos(), "more than %d parameters and locals", maxLocals)
		}
		locals += int(n)
	}
	codeStart := r.off
	marks := st.marks[:0]
	frames := st.frames[:0]
	cur := -1 // index in marks of the open straight-line run, -1 in dead code
	open := func(pos int) {
		marks = append(marks, mark{pos: pos})
		cur = len(marks) - 1
	}
	add := func(c int64) {
		if cur >= 0 {
			marks[cur].cost += c
		}
	}
	perUnit := func(pos int, c int64) {
		marks = append(marks, mark{pos: pos, cost: c, kind: markPerUnitCharge})
	}
	open(codeStart)
	calls := false // the body calls a function
	done := false
	for !done {
		at := r.off
		op, ok := r.byte()
		if !ok {
			return nil, 0, errf(ErrMalformed, r.pos(), "function body ends without end")
		}
		add(int64(opCost[op]))
		switch {
		case op == opUnreachable, op == opReturn:
			cur = -1
		case op == opBlock, op == opLoop, op == opIf:
			t, ok := r.sleb(33)
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad block type")
			}
			if t < 0 {
				if r.off-at != 2 {
					return nil, 0, errf(ErrMalformed, base+at, "bad block type")
				}
				switch byte(t & 0x7f) {
				case blockTypeEmpty, 0x7f, 0x7e, 0x7d, 0x7c, 0x70, 0x6f:
				case 0x7b:
					return nil, 0, errf(ErrUnsupported, base+at, "SIMD block type v128")
				default:
					return nil, 0, errf(ErrMalformed, base+at, "bad block type")
				}
			} else if t >= int64(len(m.typeParams)) {
				return nil, 0, errf(ErrMalformed, base+at, "block type index %d out of range", t)
			}
			frames = append(frames, frame{op: op})
			open(r.off)
			marks[cur].tick = op == opLoop
		case op == opElse:
			if len(frames) == 0 || frames[len(frames)-1].op != opIf || frames[len(frames)-1].sawElse {
				return nil, 0, errf(ErrMalformed, base+at, "else without if")
			}
			frames[len(frames)-1].sawElse = true
			open(r.off)
		case op == opEnd:
			if len(frames) == 0 {
				if !r.eof() {
					return nil, 0, errf(ErrMalformed, r.pos(), "%d bytes after the end of the function body", len(body)-r.off)
				}
				done = true
				break
			}
			frames = frames[:len(frames)-1]
			open(r.off)
		case op == opBr, op == opBrIf:
			l, ok := r.u32()
			if !ok || int(l) > len(frames) {
				return nil, 0, errf(ErrMalformed, base+at, "bad branch label")
			}
			if op == opBr {
				cur = -1
			} else {
				open(r.off)
			}
		case op == opBrTable:
			n, ok := r.count(1)
			for i := 0; ok && i <= n; i++ {
				var l uint32
				l, ok = r.u32()
				ok = ok && int(l) <= len(frames)
			}
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad br_table")
			}
			cur = -1
		case op == opCall, op == opRefFunc, op == opTableGet, op == opTableSet:
			if op == opTableSet && m.track {
				marks = append(marks, mark{pos: at, kind: markSticky})
			}
			idx, ok := r.u32()
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad index immediate")
			}
			// NB: like the fuel globals, the added tick function and its
			// type are out of range for the input, and stay so.
			if (op == opCall || op == opRefFunc) && idx >= m.funcs() {
				return nil, 0, errf(ErrMalformed, base+at, "function index %d out of range", idx)
			}
			// NB: so is the page table (pages.go), after the input's.
			if (op == opTableGet || op == opTableSet) && idx >= m.tables {
				return nil, 0, errf(ErrMalformed, base+at, "table index %d out of range", idx)
			}
			calls = calls || op == opCall
		case op == opCallIndirect:
			calls = true
			t, ok := r.u32()
			var tab uint32
			if ok {
				tab, ok = r.u32()
			}
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad call_indirect")
			}
			if t >= uint32(len(m.typeParams)) {
				return nil, 0, errf(ErrMalformed, base+at, "type index %d of call_indirect out of range", t)
			}
			if tab >= m.tables {
				return nil, 0, errf(ErrMalformed, base+at, "table index %d of call_indirect out of range", tab)
			}
		case op == 0x01, op == 0x1a, op == 0x1b: // nop, drop, select
		case op == opSelectT:
			n, ok := r.count(1)
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad select types")
			}
			for i := 0; i < n; i++ {
				if err := valType(&r); err != nil {
					e := err.(*Error)
					e.Func = fn
					return nil, 0, e
				}
			}
		case op == opLocalGet, op == opLocalSet, op == opLocalTee:
			l, ok := r.u32()
			if !ok || uint64(l) >= uint64(locals) {
				return nil, 0, errf(ErrMalformed, base+at, "bad local index")
			}
		case op == opGlobalGet, op == opGlobalSet:
			// NB: the fuel global's index is out of range for the input; a
			// body that names it is malformed, and must not become valid.
			g, ok := r.u32()
			if !ok || g >= m.globals {
				return nil, 0, errf(ErrMalformed, base+at, "bad global index")
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores
			align, ok := r.u32()
			if ok && align >= 64 {
				return nil, 0, errf(ErrUnsupported, base+at, "memory index in memarg (multiple memories)")
			}
			var off uint32
			if ok {
				off, ok = r.u32()
			}
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad memarg")
			}
			if m.track && op >= 0x36 {
				sh := storeShape[op-0x36]
				marks = append(marks, mark{pos: at, kind: markTrackStore, off: off, size: sh.size, vt: sh.vt})
				if m.paged() {
					// After the store: it succeeded (pages.go).
					marks = append(marks, mark{pos: r.off, kind: markPageStore, off: off})
				}
			}
		case op == opMemorySize, op == opMemoryGrow:
			if b, ok := r.byte(); !ok || b != 0 {
				return nil, 0, errf(ErrUnsupported, base+at, "memory index other than 0 (multiple memories)")
			}
			if op == opMemoryGrow {
				perUnit(at, CostMemoryGrowPerPage)
				marks = append(marks, mark{pos: at, kind: markCapMemory})
				st.memoryGrows++
			}
		case op == opI32Const:
			if !sleb32(&r) {
				return nil, 0, errf(ErrMalformed, base+at, "bad i32.const")
			}
		case op == opI64Const:
			if _, ok := r.sleb(64); !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad i64.const")
			}
		case op == opF32Const, op == opF64Const:
			n := 4
			if op == opF64Const {
				n = 8
			}
			if !r.skip(n) {
				return nil, 0, errf(ErrMalformed, base+at, "bad float constant")
			}
		case op >= 0x45 && op <= 0xc4: // numeric, no immediates
		case op == opRefNull:
			if err := refType(&r); err != nil {
				e := err.(*Error)
				e.Func = fn
				return nil, 0, e
			}
		case op == 0xd1: // ref.is_null
		case op == opPrefixMisc:
			sub, ok := r.u32()
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad 0xfc opcode")
			}
			var c int64
			switch sub {
			case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
				c = CostDefault
			case miscMemoryInit:
				_, ok = r.u32()
				if ok {
					b, ok2 := r.byte()
					ok = ok2 && b == 0
				}
				c = CostBulkMemory
				perUnit(at, CostBulkMemoryPerByte)
			case miscDataDrop, miscElemDrop, miscTableSize:
				var idx uint32
				idx, ok = r.u32()
				if ok && sub == miscTableSize && idx >= m.tables {
					return nil, 0, errf(ErrMalformed, base+at, "table index %d out of range", idx)
				}
				c = CostDefault
			case miscMemoryCopy:
				b1, ok1 := r.byte()
				b2, ok2 := r.byte()
				ok = ok1 && ok2 && b1 == 0 && b2 == 0
				c = CostBulkMemory
				perUnit(at, CostBulkMemoryPerByte)
			case miscMemoryFill:
				b, ok1 := r.byte()
				ok = ok1 && b == 0
				c = CostBulkMemory
				perUnit(at, CostBulkMemoryPerByte)
			case miscTableInit, miscTableCopy:
				var a, b uint32
				a, ok = r.u32()
				if ok {
					b, ok = r.u32()
				}
				if ok && sub == miscTableCopy && a >= m.tables {
					b = a
				}
				if ok && b >= m.tables {
					return nil, 0, errf(ErrMalformed, base+at, "table index %d out of range", b)
				}
				c = CostTableGrow
				perUnit(at, CostTablePerElement)
			case miscTableGrow, miscTableFill:
				var tab uint32
				tab, ok = r.u32()
				if ok && tab >= m.tables {
					return nil, 0, errf(ErrMalformed, base+at, "table index %d out of range", tab)
				}
				c = CostTableGrow
				perUnit(at, CostTablePerElement)
				if sub == miscTableGrow {
					// Checked before it runs, counted after: the mark after
					// it sits where the next instruction starts.
					marks = append(marks, mark{pos: at, kind: markCapTable}, mark{pos: r.off, kind: markTableGrown})
					st.tableGrows++
				}
			default:
				return nil, 0, errf(ErrUnsupported, base+at, "unknown opcode 0xfc %d", sub)
			}
			if !ok {
				return nil, 0, errf(ErrMalformed, base+at, "bad immediate of 0xfc %d", sub)
			}
			if m.track {
				switch sub {
				case miscMemoryInit, miscMemoryCopy, miscMemoryFill:
					marks = append(marks, mark{pos: at, kind: markTrackBulk})
					if m.paged() {
						marks = append(marks, mark{pos: r.off, kind: markPageBulk})
					}
				case miscTableGrow:
					// Before the mark after it (markTableGrown): marks
					// stay in order of position.
					n := len(marks)
					marks = append(marks, marks[n-1])
					marks[n-1] = mark{pos: at, kind: markSticky}
				case miscDataDrop, miscElemDrop, miscTableInit, miscTableCopy, miscTableFill:
					marks = append(marks, mark{pos: at, kind: markSticky})
				}
			}
			add(c - CostDefault) // opCost[0xfc] was added above
		case op == opPrefixSIMD:
			return nil, 0, errf(ErrUnsupported, base+at, "SIMD instruction (0xfd prefix)")
		case op == opPrefixThreads:
			return nil, 0, errf(ErrUnsupported, base+at, "threads/atomics instruction (0xfe prefix)")
		default:
			return nil, 0, errf(ErrUnsupported, base+at, "unknown opcode %#x", op)
		}
	}
	marks[0].tick = calls
	st.marks, st.frames = marks, frames

	// Emit: the local declarations (plus one scratch i32 when a per-unit
	// charge needs it, two when a cap check does), then the code with the
	// charges and checks spliced in.
	out := st.out[:0]
	scratch, nScratch, tracked := locals, 0, false
	for _, mk := range marks {
		switch {
		case mk.kind == markPerUnitCharge && m.metered:
			nScratch = max(nScratch, 1)
		case mk.kind == markTrackStore, mk.kind == markTrackBulk:
			tracked = true
		case mk.kind >= markCapMemory && mk.kind <= markTableGrown:
			nScratch = 2
		}
	}
	track := uint32(locals + nScratch) // the first tracking local
	if nScratch == 0 && !tracked {
		out = append(out, body[:codeStart]...)
	} else {
		added, addedDecls := nScratch, 0
		if nScratch > 0 {
			addedDecls++
		}
		if tracked {
			added += trackLocals
			addedDecls += len(trackDecls) / 2
		}
		if uint64(locals)+uint64(added) > maxLocals {
			return nil, 0, errf(ErrUnsupported, base, "more than %d parameters and locals", maxLocals)
		}
		out = appendU32(out, uint32(decls+addedDecls))
		rd := reader{b: body}
		_, _ = rd.u32()
		out = append(out, body[rd.off:codeStart]...)
		if nScratch > 0 {
			out = append(out, byte(nScratch), valTypeI32)
		}
		if tracked {
			out = append(out, trackDecls...)
		}
	}
	prev := codeStart
	charges := 0
	for _, mk := range marks {
		if mk.kind <= markPerUnitCharge && (!m.metered || mk.kind == markStatic && mk.cost == 0 && !mk.tick) {
			continue
		}
		out = append(out, body[prev:mk.pos]...)
		prev = mk.pos
		switch mk.kind {
		case markStatic:
			charges++
			out = m.appendCharge(out, mk.cost, mk.tick)
			continue
		case markCapMemory, markCapTable:
			out = m.appendCapCheck(out, uint32(scratch), mk.kind == markCapTable)
			continue
		case markTableGrown:
			out = m.appendTableGrown(out, uint32(scratch))
			continue
		case markTrackStore:
			if m.paged() {
				out = appendPagePre(out, trackValueLocal(track, mk.vt), track)
			} else {
				out = m.appendTrackStore(out, track, mk)
			}
			continue
		case markTrackBulk:
			if m.paged() {
				out = appendPageBulkPre(out, track)
			} else {
				out = m.appendTrackBulk(out, track)
			}
			continue
		case markPageStore:
			out = m.appendPageStore(out, track, mk.off)
			continue
		case markPageBulk:
			out = m.appendPageBulk(out, track)
			continue
		case markSticky:
			out = m.appendSticky(out)
			continue
		}
		charges++
		out = append(out, opLocalTee)
		out = appendU32(out, uint32(scratch))
		out = m.appendGlobal(out, opGlobalGet)
		out = append(out, opLocalGet)
		out = appendU32(out, uint32(scratch))
		out = append(out, opI64ExtendI32U)
		if mk.cost != 1 {
			out = append(out, opI64Const)
			out = appendS64(out, mk.cost)
			out = append(out, opI64Mul)
		}
		out = append(out, opI64Sub)
		out = m.appendCheck(out, false)
	}
	out = append(out, body[prev:]...)
	st.out = out
	dst = appendU32(dst, uint32(len(out)))
	return append(dst, out...), charges, nil
}

// appendCapCheck appends the check before a memory.grow (table false) or a
// table.grow of the i32 delta n on top of the stack, with scratch locals s
// and s+1: when the memory's bytes plus TableElemBytes per table element,
// after the growth, would exceed the cap, it sets the denied global and
// replaces n with 2^32-1, which no memory or table can grow by (wazero
// refuses memory growth past 65536 pages and table growth to 2^32-1
// elements or more), so that the instruction returns -1:
//
//	local.set $s
//	(i64.gt_s (i64.add (i64.shl (i64.extend_i32_u (memory.size)) 16)   ;; + n for memory
//	                   (i64.shl (global.get $elems) 3))               ;; + n for a table
//	          (global.get $cap))
//	local.tee $s+1
//	if  i32.const 1  global.set $denied  end
//	(select (i32.const -1) (local.get $s) (local.get $s+1))
func (m *module) appendCapCheck(b []byte, s uint32, table bool) []byte {
	extend := func(b []byte) []byte { return append(appendU32(append(b, opLocalGet), s), opI64ExtendI32U) }
	b = appendU32(append(b, opLocalSet), s)
	if m.hasMemory {
		b = append(b, opMemorySize, 0, opI64ExtendI32U)
		if !table {
			b = append(extend(b), opI64Add)
		}
		b = append(b, opI64Const, 16, opI64Shl)
	} else {
		b = append(b, opI64Const, 0)
	}
	b = appendU32(append(b, opGlobalGet), m.elemsGlobal())
	if table {
		b = append(extend(b), opI64Add)
	}
	b = append(b, opI64Const, 3, opI64Shl, opI64Add)
	b = appendU32(append(b, opGlobalGet), m.capGlobal())
	b = append(b, opI64GtS, opLocalTee)
	b = appendU32(b, s+1)
	b = append(b, opIf, blockTypeEmpty, opI32Const, 1, opGlobalSet)
	b = append(appendU32(b, m.deniedGlobal()), opEnd)
	b = append(b, opI32Const, 0x7f, opLocalGet)
	b = appendU32(b, s)
	b = appendU32(append(b, opLocalGet), s+1)
	return append(b, opSelect)
}

// appendTableGrown appends the code after a table.grow: unless it returned
// -1, the n elements it added (in scratch local s) count in the elements
// global.
//
//	local.tee $s+1
//	(if (i32.ne (local.get $s+1) (i32.const -1))
//	  (then (global.set $elems (i64.add (global.get $elems) (i64.extend_i32_u (local.get $s))))))
//	local.get $s+1
func (m *module) appendTableGrown(b []byte, s uint32) []byte {
	b = appendU32(append(b, opLocalTee), s+1)
	b = append(b, opI32Const, 0x7f, opI32Ne, opIf, blockTypeEmpty)
	b = appendU32(append(b, opGlobalGet), m.elemsGlobal())
	b = appendU32(append(b, opLocalGet), s)
	b = append(b, opI64ExtendI32U, opI64Add)
	b = appendU32(append(b, opGlobalSet), m.elemsGlobal())
	b = append(b, opEnd, opLocalGet)
	return appendU32(b, s+1)
}

func (m *module) appendGlobal(b []byte, op byte) []byte {
	return appendU32(append(b, op), m.fuelGlobal)
}

// appendCharge appends code that subtracts cost from the fuel and traps if
// the fuel is then negative (with tick: calls the tick function if it is
// below the mark).
func (m *module) appendCharge(b []byte, cost int64, tick bool) []byte {
	b = m.appendGlobal(b, opGlobalGet)
	b = appendS64(append(b, opI64Const), cost)
	b = append(b, opI64Sub)
	return m.appendCheck(b, tick)
}

// appendCheck appends code that stores the i64 on the stack as the fuel and
// traps if it is negative, or with tick, calls the tick function if it is
// below the mark (the tick traps when the fuel is negative, and the mark is
// never negative).
func (m *module) appendCheck(b []byte, tick bool) []byte {
	b = m.appendGlobal(b, opGlobalSet)
	b = m.appendGlobal(b, opGlobalGet)
	if !tick {
		return append(b, opI64Const, 0, opI64LtS, opIf, blockTypeEmpty, opUnreachable, opEnd)
	}
	b = appendU32(append(b, opGlobalGet), m.markGlobal())
	b = append(b, opI64LtS, opIf, blockTypeEmpty, opCall)
	return append(appendU32(b, m.tickFunc()), opEnd)
}
