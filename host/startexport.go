package host

import "fmt"

// startExport is the name under which a metered module's start function is
// exported (exportStart), for the host to call first, like _initialize. A
// module may not export the name itself.
const startExport = "kh_start"

// Section ids used here.
const (
	sectionExport = 7
	sectionStart  = 8
)

// exportStart returns wasm with its start section dropped and the start
// function exported as startExport instead (an export section is added when
// there is none).
//
// Why: wazero runs a start function inside instantiation, before the host
// has the instance, so the host could neither give it a budget of its own,
// nor let the watchdog stop it, nor tell its trap from running out of fuel.
// Exported, it runs as a call: on the initialisation budget, under the
// watchdog, with the fuel of host calls charged and reported. The start
// function runs at the same point as before (after the data and element
// segments are applied, before _initialize), so the module behaves the same.
//
// It returns wasm itself when there is no start section, and an error when
// the module exports startExport already. Framing it cannot read is left
// unchanged, for the compiler to reject.
func exportStart(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 {
		return wasm, nil
	}
	type section struct {
		id               byte
		start, body, end int
	}
	var secs []section
	top := &scanner{b: wasm, off: 8}
	exportAt, startAt := -1, -1
	for top.off < len(wasm) {
		start := top.off
		id, err := top.byte()
		if err != nil {
			return wasm, nil
		}
		size, err := top.u32()
		if err != nil || uint64(size) > uint64(len(wasm)-top.off) {
			return wasm, nil
		}
		body := top.off
		top.off += int(size)
		switch id {
		case sectionExport:
			exportAt = len(secs)
		case sectionStart:
			startAt = len(secs)
		}
		secs = append(secs, section{id, start, body, top.off})
	}
	var (
		count   uint32
		entries []byte
	)
	if exportAt >= 0 {
		s := &scanner{b: wasm[secs[exportAt].body:secs[exportAt].end]}
		n, err := s.vecLen(3)
		if err != nil {
			return wasm, nil
		}
		count = uint32(n)
		entries = s.b[s.off:]
		for i := 0; i < n; i++ {
			name, err := s.name()
			if err != nil {
				return wasm, nil
			}
			if name == startExport {
				return nil, fmt.Errorf("module exports %q, a name the host reserves for the start function: rename the export", startExport)
			}
			if _, err := s.byte(); err != nil {
				return wasm, nil
			}
			if _, err := s.u32(); err != nil {
				return wasm, nil
			}
		}
	}
	if startAt < 0 {
		return wasm, nil
	}
	s := &scanner{b: wasm[secs[startAt].body:secs[startAt].end]}
	fn, err := s.u32()
	if err != nil || s.off != len(s.b) {
		return wasm, nil
	}
	contents := appendLEB(nil, count+1)
	contents = append(contents, entries...)
	contents = appendLEB(contents, uint32(len(startExport)))
	contents = append(contents, startExport...)
	contents = append(contents, importFunc) // export kind: function
	contents = appendLEB(contents, fn)

	out := make([]byte, 0, len(wasm)+len(startExport)+16)
	out = append(out, wasm[:8]...)
	for i, sec := range secs {
		switch {
		case i == exportAt:
			out = appendSection(out, sectionExport, contents)
		case i == startAt:
			if exportAt < 0 {
				// The export section comes right before the start section.
				out = appendSection(out, sectionExport, contents)
			}
		default:
			out = append(out, wasm[sec.start:sec.end]...)
		}
	}
	return out, nil
}

func appendLEB(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func appendSection(dst []byte, id byte, contents []byte) []byte {
	dst = append(dst, id)
	dst = appendLEB(dst, uint32(len(contents)))
	return append(dst, contents...)
}
