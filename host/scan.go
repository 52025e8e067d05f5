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
	haveMemory   bool
	locals       uint64 // declared by all function bodies
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

// Structural caps that bound what wazero's decoder allocates from counts in
// the binary (it sizes slices by them before reading the elements).
const (
	maxLocalsPerFunction = 50_000 // as V8
	maxLocalsPerModule   = 1 << 22
)

// scanModule reads the shape of a wasm binary. It walks every vector and
// string the decoder would size an allocation by and checks that it fits in
// the bytes left, so that a tiny hostile module cannot make the compiler
// allocate gigabytes. It never panics and does work linear in len(wasm).
func scanModule(wasm []byte) (*moduleShape, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("no WebAssembly magic number (\\0asm) at the start")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not WebAssembly binary format version 1")
	}
	sh := &moduleShape{}
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
		if err := sh.section(id, s); err != nil {
			return nil, fmt.Errorf("%s section: %w", sectionName(id), err)
		}
	}
	return sh, nil
}

func sectionName(id byte) string {
	names := [...]string{"custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "data count"}
	if int(id) < len(names) {
		return names[id]
	}
	return fmt.Sprintf("unknown (id %d)", id)
}

func (sh *moduleShape) section(id byte, s *scanner) error {
	switch id {
	case 0:
		name, err := s.name()
		if err != nil {
			return err
		}
		if name == "name" {
			return scanNames(s)
		}
		return nil
	case 1: // type: vec(0x60 vec(valtype) vec(valtype))
		n, err := s.vecLen(3)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if _, err := s.byte(); err != nil {
				return err
			}
			for j := 0; j < 2; j++ {
				k, err := s.vecLen(1)
				if err != nil {
					return fmt.Errorf("type %d: %w", i, err)
				}
				s.off += k
			}
		}
		return nil
	case 2:
		return sh.scanImports(s)
	case 3: // function
		n, err := s.vecLen(1)
		sh.functions += n
		return err
	case 4: // table
		n, err := s.vecLen(3)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if _, err := s.byte(); err != nil {
				return fmt.Errorf("table %d: %w", i, err)
			}
			min, err := s.limits()
			if err != nil {
				return fmt.Errorf("table %d: %w", i, err)
			}
			sh.tableEntries += uint64(min)
		}
		return nil
	case 5: // memory
		n, err := s.vecLen(2)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			min, err := s.limits()
			if err != nil {
				return fmt.Errorf("memory %d: %w", i, err)
			}
			if !sh.haveMemory {
				sh.memoryPages, sh.haveMemory = min, true
			}
		}
		return nil
	case 6: // global: vec(valtype mut expr)
		n, err := s.vecLen(4)
		sh.globals += n
		return err
	case 7: // export: vec(name kind idx)
		n, err := s.vecLen(3)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if _, err := s.name(); err != nil {
				return fmt.Errorf("export %d: %w", i, err)
			}
			if _, err := s.byte(); err != nil {
				return fmt.Errorf("export %d: %w", i, err)
			}
			if _, err := s.u32(); err != nil {
				return fmt.Errorf("export %d: %w", i, err)
			}
		}
		return nil
	case 9:
		return scanElements(s)
	case 10:
		return sh.scanCode(s)
	case 11:
		return scanData(s)
	}
	return nil // start, data count, unknown: nothing sized by the input
}

func (sh *moduleShape) scanImports(s *scanner) error {
	n, err := s.vecLen(4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		var e importEntry
		if e.module, err = s.name(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
		if e.name, err = s.name(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
		if e.kind, err = s.byte(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
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
			if min, err = s.limits(); err == nil && !sh.haveMemory {
				sh.memoryPages, sh.haveMemory = min, true
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
			return fmt.Errorf("import %d (%q.%q): %w", i, e.module, e.name, err)
		}
		sh.imports = append(sh.imports, e)
	}
	return nil
}

// scanCode checks every function body's local declarations.
func (sh *moduleShape) scanCode(s *scanner) error {
	n, err := s.vecLen(2)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		size, err := s.u32()
		if err != nil {
			return fmt.Errorf("function body %d: %w", i, err)
		}
		if uint64(size) > uint64(len(s.b)-s.off) {
			return fmt.Errorf("function body %d: %w", i, errTruncated)
		}
		body := &scanner{b: s.b[s.off : s.off+int(size)]}
		s.off += int(size)
		groups, err := body.vecLen(2)
		if err != nil {
			return fmt.Errorf("function body %d: locals: %w", i, err)
		}
		var locals uint64
		for g := 0; g < groups; g++ {
			k, err := body.u32()
			if err != nil {
				return fmt.Errorf("function body %d: locals: %w", i, err)
			}
			if _, err := body.byte(); err != nil {
				return fmt.Errorf("function body %d: locals: %w", i, err)
			}
			locals += uint64(k)
		}
		if locals > maxLocalsPerFunction {
			return fmt.Errorf("function body %d declares %d locals, the limit is %d", i, locals, maxLocalsPerFunction)
		}
		sh.locals += locals
		if sh.locals > maxLocalsPerModule {
			return fmt.Errorf("functions declare more than %d locals in all", maxLocalsPerModule)
		}
	}
	return nil
}

// scanElements checks element segments (all eight encodings).
func scanElements(s *scanner) error {
	n, err := s.vecLen(2)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := scanElement(s); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
	}
	return nil
}

// scanElement checks one element segment.
func scanElement(s *scanner) error {
	flag, err := s.u32()
	if err != nil {
		return err
	}
	if flag > 7 {
		return fmt.Errorf("unknown flags %#x", flag)
	}
	if flag&2 != 0 && flag&1 == 0 { // explicit table index
		if _, err := s.u32(); err != nil {
			return err
		}
	}
	if flag&1 == 0 { // active: offset expression
		if err := s.constExpr(); err != nil {
			return err
		}
	}
	if flag&3 != 0 { // elemkind or reftype byte
		if _, err := s.byte(); err != nil {
			return err
		}
	}
	k, err := s.vecLen(1)
	if err != nil {
		return err
	}
	for j := 0; j < k; j++ {
		if flag&4 != 0 {
			err = s.constExpr()
		} else {
			_, err = s.u32()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scanData checks data segments.
func scanData(s *scanner) error {
	n, err := s.vecLen(2)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := scanDatum(s); err != nil {
			return fmt.Errorf("data %d: %w", i, err)
		}
	}
	return nil
}

// scanDatum checks one data segment.
func scanDatum(s *scanner) error {
	flag, err := s.u32()
	if err != nil {
		return err
	}
	switch flag {
	case 0, 2:
		if flag == 2 {
			if _, err := s.u32(); err != nil {
				return err
			}
		}
		if err := s.constExpr(); err != nil {
			return err
		}
	case 1:
	default:
		return fmt.Errorf("unknown flags %#x", flag)
	}
	k, err := s.vecLen(1)
	if err != nil {
		return err
	}
	s.off += k
	return nil
}

// scanNames checks the "name" custom section's maps.
func scanNames(s *scanner) error {
	for s.off < len(s.b) {
		id, err := s.byte()
		if err != nil {
			return err
		}
		size, err := s.u32()
		if err != nil {
			return err
		}
		if uint64(size) > uint64(len(s.b)-s.off) {
			return fmt.Errorf("name subsection %d: %w", id, errTruncated)
		}
		sub := &scanner{b: s.b[s.off : s.off+int(size)]}
		s.off += int(size)
		switch id {
		case 1: // function names: vec(idx name)
			if err := sub.nameMap(); err != nil {
				return fmt.Errorf("function names: %w", err)
			}
		case 2: // local names: vec(idx vec(idx name))
			n, err := sub.vecLen(2)
			if err != nil {
				return fmt.Errorf("local names: %w", err)
			}
			for i := 0; i < n; i++ {
				if _, err := sub.u32(); err != nil {
					return fmt.Errorf("local names: %w", err)
				}
				if err := sub.nameMap(); err != nil {
					return fmt.Errorf("local names: %w", err)
				}
			}
		}
	}
	return nil
}

func (s *scanner) nameMap() error {
	n, err := s.vecLen(2)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if _, err := s.u32(); err != nil {
			return err
		}
		if _, err := s.name(); err != nil {
			return err
		}
	}
	return nil
}

// constExpr skips a constant expression up to its end opcode.
func (s *scanner) constExpr() error {
	for {
		op, err := s.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41, 0x42, 0x23, 0xd2: // i32.const, i64.const, global.get, ref.func
			err = s.skipLEB()
		case 0x43:
			err = s.skip(4)
		case 0x44:
			err = s.skip(8)
		case 0xd0: // ref.null t
			_, err = s.byte()
		case 0xfd: // v128.const
			if err = s.skipLEB(); err == nil {
				err = s.skip(16)
			}
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		default:
			return fmt.Errorf("opcode %#x in a constant expression", op)
		}
		if err != nil {
			return err
		}
	}
}

func (s *scanner) skipLEB() error {
	for i := 0; i < 10; i++ {
		c, err := s.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("integer too long")
}

func (s *scanner) skip(n int) error {
	if n > len(s.b)-s.off {
		return errTruncated
	}
	s.off += n
	return nil
}
