package fuel

// rewritten returns the sections emit writes anew (or inserts when the
// input has none), in section order: the table section only with page
// tracking (pages.go).
func (m *module) rewritten() []byte {
	if m.paged() {
		return []byte{secType, secFunction, secTable, secGlobal, secExport, secCode}
	}
	return []byte{secType, secFunction, secGlobal, secExport, secCode}
}

// emit writes the instrumented module: every section of the input in order,
// with the type, function, (table,) global, export and code sections
// rewritten (or inserted when absent).
func (m *module) emit() ([]byte, Info, error) {
	info := Info{CostTableVersion: CostTableVersion, Functions: len(m.funcTypes), FuelGlobal: m.fuelGlobal,
		CapGlobal: m.capGlobal(), TableElems: m.tableElems}
	if m.track {
		info.MutableGlobals = m.mutGlobals
	}
	if m.paged() {
		info.PageList = m.listGlobal()
	}
	out := make([]byte, 0, len(m.in)*7/4+128)
	out = append(out, header...)
	var sec []byte // the contents of the section being rewritten
	for _, s := range m.sections {
		if s.id == secCode {
			// NB: charges grow code by about a half (a third for Go).
			sec = make([]byte, 0, (s.end-s.body)*7/4)
		}
	}
	rewritten := m.rewritten()
	wrote := make([]bool, len(rewritten))
	write := func(i int) error {
		var err error
		sec, err = m.appendSection(sec[:0], rewritten[i], &info)
		out = appendFramed(out, rewritten[i], sec)
		wrote[i] = true
		return err
	}
	for _, s := range m.sections {
		isRewritten := false
		if s.id != secCustom {
			// Write the rewritten sections that belong before this one, or
			// in its place.
			for i, id := range rewritten {
				if !wrote[i] && sectionRank[s.id] >= sectionRank[id] {
					if err := write(i); err != nil {
						return nil, Info{}, err
					}
				}
				isRewritten = isRewritten || s.id == id
			}
		}
		if !isRewritten {
			out = append(out, m.in[s.start:s.end]...)
		}
	}
	for i := range rewritten {
		if !wrote[i] {
			if err := write(i); err != nil {
				return nil, Info{}, err
			}
		}
	}
	return out, info, nil
}

// inputEntries returns the entries of the input's section id (its contents
// after the count) and the count; none when the input lacks it.
func (m *module) inputEntries(id byte) ([]byte, uint32) {
	for _, s := range m.sections {
		if s.id == id {
			r := reader{b: m.in[s.body:s.end]}
			n, _ := r.u32() // checked by parse
			return r.b[r.off:], n
		}
	}
	return nil, 0
}

func appendFramed(dst []byte, id byte, contents []byte) []byte {
	dst = append(dst, id)
	dst = appendU32(dst, uint32(len(contents)))
	return append(dst, contents...)
}

// appendSection appends the contents of the rewritten section id: the
// input's entries, then what the pass adds.
func (m *module) appendSection(dst []byte, id byte, info *Info) ([]byte, error) {
	if id == secCode {
		return m.appendCode(dst, info)
	}
	entries, n := m.inputEntries(id)
	var added uint32
	switch id {
	case secType, secFunction:
		if m.metered {
			added = 1 // the tick's type or function
		}
		if m.paged() && id == secType {
			added += m.pageTypeCount() // pages.go
		} else if m.paged() {
			added += m.pageFuncCount()
		}
	case secTable:
		added = 1 // the page table
	case secGlobal, secExport:
		added = 3 // cap, table elements, denied
		if m.metered {
			added += 2 // fuel and mark
		}
		added += m.trackedGlobals() // dirty range, sticky (track.go)
		if id == secExport && m.track {
			added += uint32(len(m.mutGlobals))
		}
		if id == secGlobal {
			added += m.pageGlobals() // pages.go
		} else {
			added += m.pageExports()
		}
	}
	dst = appendU32(dst, n+added)
	dst = append(dst, entries...)
	if added == 0 {
		return dst, nil
	}
	switch id {
	case secType:
		if m.metered {
			// (type (func)): the tick's
			dst = append(dst, 0x60, 0, 0)
		}
		return m.appendPageTypes(dst), nil
	case secFunction:
		if m.metered {
			dst = appendU32(dst, m.tickType())
		}
		return m.appendPageFuncs(dst), nil
	case secTable:
		return m.appendPageTable(dst), nil
	case secGlobal:
		if m.metered {
			// (global (mut i64) (i64.const startFuel)), then the mark
			dst = append(dst, valTypeI64, 0x01, opI64Const)
			dst = append(appendS64(dst, m.startFuel), opEnd)
			dst = append(dst, valTypeI64, 0x01, opI64Const)
			dst = append(appendS64(dst, int64(Mark(uint64(m.startFuel)))), opEnd)
		}
		// (global (mut i64) (i64.const memoryCap)),
		// (global (mut i64) (i64.const tableElems)), (global (mut i32) (i32.const 0))
		dst = append(dst, valTypeI64, 0x01, opI64Const)
		dst = append(appendS64(dst, m.memoryCap), opEnd)
		dst = append(dst, valTypeI64, 0x01, opI64Const)
		dst = append(appendS64(dst, int64(m.tableElems)), opEnd)
		dst = append(dst, valTypeI32, 0x01, opI32Const, 0, opEnd)
		return m.appendPageGlobals(m.appendTrackGlobals(dst)), nil
	}
	type export struct {
		name   string
		global uint32
	}
	exports := []export{{CapExportName, m.capGlobal()}, {TableElemsExportName, m.elemsGlobal()}, {DeniedExportName, m.deniedGlobal()}}
	if m.metered {
		exports = append([]export{{ExportName, m.fuelGlobal}, {MarkExportName, m.markGlobal()}}, exports...)
	}
	for _, e := range m.trackExports() {
		exports = append(exports, export(e))
	}
	for _, e := range exports {
		dst = appendU32(dst, uint32(len(e.name)))
		dst = append(dst, e.name...)
		dst = append(dst, 0x03)
		dst = appendU32(dst, e.global)
	}
	return m.appendPageExports(dst), nil
}

// appendCode appends the contents of the code section: every body of the
// input instrumented, then the tick's (with metering).
func (m *module) appendCode(dst []byte, info *Info) ([]byte, error) {
	bodies := uint32(len(m.funcTypes))
	if m.metered {
		bodies++
	}
	if m.paged() {
		bodies += m.pageFuncCount()
	}
	dst = appendU32(dst, bodies)
	var r reader
	for _, s := range m.sections {
		if s.id == secCode {
			r = reader{b: m.in[s.body:s.end], base: s.body}
			_, _ = r.count(1) // checked by parse
		}
	}
	var st bodyState
	for i := range m.funcTypes {
		at := r.pos()
		size, ok := r.u32()
		if !ok || !r.skip(int(size)) {
			return nil, &Error{Err: ErrMalformed, Func: m.importFuncs + i, Offset: at, Msg: "bad function body size"}
		}
		bodyAt := r.off - int(size)
		var c int
		var err error
		params := m.typeParams[m.funcTypes[i]]
		dst, c, err = m.instrumentBody(&st, dst, r.b[bodyAt:r.off], m.importFuncs+i, r.base+bodyAt, params)
		if err != nil {
			return nil, err
		}
		info.Charges += c
	}
	// Checked with no bodies too: a code section declaring 0 bodies then a
	// stray byte is malformed, and the rewritten section would drop the byte
	// and mend it. Without a code section r is empty.
	if !r.eof() {
		return nil, malformed(r.pos(), "trailing bytes in code section")
	}
	info.MemoryGrows, info.TableGrows = st.memoryGrows, st.tableGrows
	if m.metered {
		body := m.appendTick(nil)
		dst = appendU32(dst, uint32(len(body)))
		dst = append(dst, body...)
	}
	return m.appendPageBodies(dst), nil
}

// appendTick appends the body of the tick function, which charges call when
// the fuel falls below the mark:
//
//	(func $tick
//	  (if (i64.lt_s (global.get $fuel) (i64.const 0)) (then unreachable))
//	  (global.set $mark (select (i64.sub (global.get $fuel) (i64.const TickSlice))
//	                            (i64.const 0)
//	                            (i64.gt_s (global.get $fuel) (i64.const TickSlice))))
//	  (drop (memory.grow (i32.const 0))))  ;; a step out to the host; only with a memory
//
// It is not charged: it runs once per TickSlice fuel, or once to trap.
func (m *module) appendTick(b []byte) []byte {
	b = append(b, 0) // no locals
	b = m.appendGlobal(b, opGlobalGet)
	b = append(b, opI64Const, 0, opI64LtS, opIf, blockTypeEmpty, opUnreachable, opEnd)
	b = m.appendGlobal(b, opGlobalGet)
	b = appendS64(append(b, opI64Const), TickSlice)
	b = append(b, opI64Sub, opI64Const, 0)
	b = m.appendGlobal(b, opGlobalGet)
	b = appendS64(append(b, opI64Const), TickSlice)
	b = append(b, opI64GtS, opSelect)
	b = appendU32(append(b, opGlobalSet), m.markGlobal())
	if m.hasMemory {
		b = append(b, opI32Const, 0, opMemoryGrow, 0, opDrop)
	}
	return append(b, opEnd)
}
