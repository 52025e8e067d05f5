package fuel

// emit writes the instrumented module: every section of the input in order,
// with the global, export and code sections rewritten (or, for the first
// two, inserted when absent).
func (m *module) emit() ([]byte, Info, error) {
	info := Info{CostTableVersion: CostTableVersion, Functions: len(m.funcTypes), FuelGlobal: m.fuelGlobal}
	out := make([]byte, 0, len(m.in)*7/4+64)
	out = append(out, header...)
	var sec []byte // the contents of the section being rewritten
	for _, s := range m.sections {
		if s.id == secCode {
			// NB: charges grow code by about a half (a third for Go).
			sec = make([]byte, 0, (s.end-s.body)*7/4)
		}
	}
	wrote := [2]bool{}
	for _, s := range m.sections {
		if s.id != secCustom {
			// Insert the global and export sections where they belong when
			// the input has none.
			for i, id := range [...]byte{secGlobal, secExport} {
				if !wrote[i] && sectionRank[s.id] >= sectionRank[id] {
					sec = m.appendSection(sec[:0], id, s.id == id)
					out = appendFramed(out, id, sec)
					wrote[i] = true
				}
			}
		}
		switch s.id {
		case secGlobal, secExport:
			// Written above.
		case secCode:
			var err error
			sec, info.Charges, err = m.appendCode(sec[:0], s)
			if err != nil {
				return nil, Info{}, err
			}
			out = appendFramed(out, secCode, sec)
		default:
			out = append(out, m.in[s.start:s.end]...)
		}
	}
	for i, id := range [...]byte{secGlobal, secExport} {
		if !wrote[i] {
			sec = m.appendSection(sec[:0], id, false)
			out = appendFramed(out, id, sec)
		}
	}
	return out, info, nil
}

func appendFramed(dst []byte, id byte, contents []byte) []byte {
	dst = append(dst, id)
	dst = appendU32(dst, uint32(len(contents)))
	return append(dst, contents...)
}

// appendSection appends the contents of the global or export section: the
// input's entries, if it has the section (present), then the fuel global or
// its export.
func (m *module) appendSection(dst []byte, id byte, present bool) []byte {
	var entries []byte
	var n uint32
	if present {
		for _, s := range m.sections {
			if s.id == id {
				r := reader{b: m.in[s.body:s.end]}
				_, _ = r.u32() // checked by parse
				entries = r.b[r.off:]
			}
		}
	}
	switch id {
	case secGlobal:
		n = m.defGlobals
	case secExport:
		n = m.exports
	}
	dst = appendU32(dst, n+1)
	dst = append(dst, entries...)
	if id == secGlobal {
		// (global (mut i64) (i64.const startFuel))
		dst = append(dst, 0x7e, 0x01, opI64Const)
		return append(appendS64(dst, m.startFuel), opEnd)
	}
	dst = appendU32(dst, uint32(len(ExportName)))
	dst = append(dst, ExportName...)
	dst = append(dst, 0x03)
	return appendU32(dst, m.fuelGlobal)
}

// appendCode appends the contents of the instrumented code section s.
func (m *module) appendCode(dst []byte, s section) ([]byte, int, error) {
	r := reader{b: m.in[s.body:s.end], base: s.body}
	n, _ := r.count(1) // checked by parse
	dst = appendU32(dst, uint32(n))
	var st bodyState
	charges := 0
	for i := 0; i < n; i++ {
		at := r.pos()
		size, ok := r.u32()
		if !ok || !r.skip(int(size)) {
			return nil, 0, &Error{Err: ErrMalformed, Func: m.importFuncs + i, Offset: at, Msg: "bad function body size"}
		}
		bodyAt := r.off - int(size)
		var c int
		var err error
		params := m.typeParams[m.funcTypes[i]]
		dst, c, err = m.instrumentBody(&st, dst, r.b[bodyAt:r.off], m.importFuncs+i, r.base+bodyAt, params)
		if err != nil {
			return nil, 0, err
		}
		charges += c
	}
	if !r.eof() {
		return nil, 0, malformed(r.pos(), "trailing bytes in code section")
	}
	return dst, charges, nil
}
