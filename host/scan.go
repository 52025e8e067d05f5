package host

import (
	"errors"
	"fmt"
)

// moduleShape is what deploy-time validation needs from a module's binary
// that wazero's CompiledModule does not expose: counts and every import's
// kind. scanModule reads it from section headers in one bounded pass, before
// the module is handed to the compiler.
type moduleShape struct {
	functions    int // imported + defined
	globals      int // imported + defined
	tableEntries uint64
	memoryPages  uint32 // declared minimum of memory 0 (defined or imported)
	imports      []importEntry
}

type importEntry struct {
	module, name string
	kind         byte // importFunc, ...
}

const (
	importFunc   = 0
	importTable  = 1
	importMemory = 2
	importGlobal = 3
)

var kindNames = [...]string{"function", "table", "memory", "global"}

var errTruncated = errors.New("truncated")

// scanner reads a wasm binary; every read is bounds-checked.
type scanner struct {
	b   []byte
	off int
}

func (s *scanner) byte() (byte, error) {
	if s.off >= len(s.b) {
		return 0, errTruncated
	}
	c := s.b[s.off]
	s.off++
	return c, nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (s *scanner) u32() (uint32, error) {
	var v uint32
	for shift := uint(0); shift < 35; shift += 7 {
		c, err := s.byte()
		if err != nil {
			return 0, err
		}
		if shift == 28 && c > 0x0f {
			return 0, errors.New("integer overflows u32")
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("integer too long")
}

func (s *scanner) name() (string, error) {
	n, err := s.u32()
	if err != nil {
		return "", err
	}
	if uint64(n) > uint64(len(s.b)-s.off) {
		return "", errTruncated
	}
	v := string(s.b[s.off : s.off+int(n)])
	s.off += int(n)
	return v, nil
}

// limits reads a limits pair and returns its minimum.
func (s *scanner) limits() (uint32, error) {
	flag, err := s.byte()
	if err != nil {
		return 0, err
	}
	if flag > 3 { // 0: min, 1: min max, 2/3: shared (threads); 64-bit memories are not supported
		return 0, fmt.Errorf("unsupported limits flag %#x", flag)
	}
	min, err := s.u32()
	if err != nil {
		return 0, err
	}
	if flag&1 != 0 {
		if _, err := s.u32(); err != nil {
			return 0, err
		}
	}
	return min, nil
}

// vecLen reads a vector length and checks that at least minBytes per element
// remain, so a hostile count cannot make a loop run long.
func (s *scanner) vecLen(minBytes int) (int, error) {
	n, err := s.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minBytes) > uint64(len(s.b)-s.off) {
		return 0, fmt.Errorf("vector of %d elements: %w", n, errTruncated)
	}
	return int(n), nil
}

// scanModule reads the shape of a wasm binary. It never panics on hostile
// input and does no more work than the input's length.
func scanModule(wasm []byte) (*moduleShape, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("no WebAssembly magic number (\\0asm) at the start")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not WebAssembly binary format version 1")
	}
	sh := &moduleShape{}
	haveMemory := false
	top := &scanner{b: wasm, off: 8}
	for top.off < len(wasm) {
		id, err := top.byte()
		if err != nil {
			return nil, err
		}
		size, err := top.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if uint64(size) > uint64(len(wasm)-top.off) {
			return nil, fmt.Errorf("section %d: %w", id, errTruncated)
		}
		s := &scanner{b: wasm[top.off : top.off+int(size)]}
		top.off += int(size)
		switch id {
		case 2: // import
			n, err := s.vecLen(4)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			for i := 0; i < n; i++ {
				var e importEntry
				if e.module, err = s.name(); err != nil {
					return nil, fmt.Errorf("import %d: %w", i, err)
				}
				if e.name, err = s.name(); err != nil {
					return nil, fmt.Errorf("import %d: %w", i, err)
				}
				if e.kind, err = s.byte(); err != nil {
					return nil, fmt.Errorf("import %d: %w", i, err)
				}
				switch e.kind {
				case importFunc:
					sh.functions++
					_, err = s.u32()
				case importTable:
					if _, err = s.byte(); err == nil {
						var min uint32
						min, err = s.limits()
						sh.tableEntries += uint64(min)
					}
				case importMemory:
					var min uint32
					if min, err = s.limits(); err == nil && !haveMemory {
						sh.memoryPages, haveMemory = min, true
					}
				case importGlobal:
					sh.globals++
					if _, err = s.byte(); err == nil {
						_, err = s.byte()
					}
				default:
					err = fmt.Errorf("unknown import kind %#x", e.kind)
				}
				if err != nil {
					return nil, fmt.Errorf("import %d (%q.%q): %w", i, e.module, e.name, err)
				}
				sh.imports = append(sh.imports, e)
			}
		case 3: // function
			n, err := s.vecLen(1)
			if err != nil {
				return nil, fmt.Errorf("function section: %w", err)
			}
			sh.functions += n
		case 4: // table
			n, err := s.vecLen(3)
			if err != nil {
				return nil, fmt.Errorf("table section: %w", err)
			}
			for i := 0; i < n; i++ {
				if _, err := s.byte(); err != nil {
					return nil, fmt.Errorf("table %d: %w", i, err)
				}
				min, err := s.limits()
				if err != nil {
					return nil, fmt.Errorf("table %d: %w", i, err)
				}
				sh.tableEntries += uint64(min)
			}
		case 5: // memory
			n, err := s.vecLen(2)
			if err != nil {
				return nil, fmt.Errorf("memory section: %w", err)
			}
			for i := 0; i < n; i++ {
				min, err := s.limits()
				if err != nil {
					return nil, fmt.Errorf("memory %d: %w", i, err)
				}
				if !haveMemory {
					sh.memoryPages, haveMemory = min, true
				}
			}
		case 6: // global
			n, err := s.vecLen(3)
			if err != nil {
				return nil, fmt.Errorf("global section: %w", err)
			}
			sh.globals += n
		}
	}
	return sh, nil
}
