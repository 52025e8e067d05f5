package fuel

import (
	"fmt"
	"math"
	"strings"
)

// ExportName is the name under which an instrumented module exports its fuel
// global: a mutable i64 the host sets to the budget before a call and reads
// back after it.
const ExportName = "kh_fuel"

// MarkExportName is the name under which an instrumented module exports its
// mark global: a mutable i64 below the fuel. A charge that takes the fuel
// below the mark calls the module's added tick function, which traps when
// the fuel is negative and otherwise sets the mark [TickSlice] lower (never
// below 0) and makes the guest step out to the host for an instant (a
// memory.grow of 0 pages). The host sets the mark to [Mark] of the budget
// with the fuel.
const MarkExportName = "kh_fuel_mark"

// TickSlice is the fuel between two ticks of a running guest. Go's garbage
// collector stops the world by waiting for every goroutine to reach a safe
// point, which a goroutine running compiled wasm never does: each tick is
// one, so a collection waits at most TickSlice fuel (about a millisecond)
// for a guest, instead of the guest's whole budget.
const TickSlice = 1 << 20

// Mark is the mark to set with a fuel of f: f-TickSlice, or 0.
func Mark(f uint64) uint64 {
	if f > TickSlice {
		return f - TickSlice
	}
	return 0
}

// Names of the memory-cap globals every instrumented module exports (with or
// without metering), for the host to cap memory and tables during a call
// (COSTS.md, "Memory and table caps").
const (
	// CapExportName is a mutable i64: the most bytes the module's linear
	// memory and tables together may hold. Every memory.grow and table.grow
	// is checked against it before it runs; growth past it returns -1, as
	// growth past a declared maximum does. The host sets it before a call;
	// it starts at [Config.MemoryCap].
	CapExportName = "kh_mem_cap"
	// TableElemsExportName is a mutable i64: the number of elements of all
	// the module's tables together. It starts at the sum of their declared
	// minimums and grows with every successful table.grow; the host reads it
	// and never writes it.
	TableElemsExportName = "kh_table_elems"
	// DeniedExportName is a mutable i32 set to 1 when a memory.grow or
	// table.grow was refused for the cap; the host resets it.
	DeniedExportName = "kh_mem_denied"
)

// TableElemBytes is what one table element counts against the memory cap:
// the size of a reference in wazero on 64-bit machines.
const TableElemBytes = 8

// DefaultMaxModuleSize is the default of [Config.MaxModuleSize]: 64 MiB.
const DefaultMaxModuleSize = 64 << 20

// maxLocals bounds parameters plus locals of one function, as V8 and
// SpiderMonkey do (50000), so that a hostile declaration cannot make the
// compiler allocate billions of locals.
const maxLocals = 50000

// DefaultStartFuel is the default of [Config.StartFuel]: enough for a
// start function or a Go runtime's _initialize (984732 units for the Go SDK
// contract's _initialize), not for a runaway.
const DefaultStartFuel = 10_000_000

// Config configures [Instrument]. The zero value is the default.
type Config struct {
	// Usually changed.

	// StartFuel is the value the fuel global holds when the module is
	// instantiated, before the host can set it: the budget of the start
	// function, and of whatever runs before the host first sets the fuel.
	// It is part of the output, so it belongs in a cache key. Zero means
	// DefaultStartFuel; a negative value means none (the global starts at
	// 0, and a start function that does any work traps). Values above
	// MaxFuel are clamped to MaxFuel.
	StartFuel int64
	// MemoryCap is the value [CapExportName] holds when the module is
	// instantiated: the bytes of linear memory and tables (at
	// [TableElemBytes] an element) that the start function and whatever
	// runs before the host first sets the cap may grow to. Zero or negative
	// means no cap. It is part of the output, so it belongs in a cache key.
	MemoryCap int64
	// NoMetering leaves fuel out: no charges, no fuel or mark global, no
	// tick. The output only caps memory.grow and table.grow (see
	// [CapExportName]), for hosts that stop guests by deadlines instead.
	NoMetering bool
	// TrackWrites adds write tracking (track.go): a dirty range widened by
	// every store and bulk memory write, a sticky flag set by what a
	// restore cannot undo, and exports of the input's mutable globals, so
	// that a host can restore an instance to its snapshot before each call.
	TrackWrites bool
	// TrackPages makes write tracking page-granular (pages.go): every
	// write also marks its pages of [PageSize] bytes in an added table and
	// lists them, so that a host copies back only those. It needs
	// TrackWrites, and its output needs reference types (WebAssembly 2.0).
	TrackPages bool

	// Tuning.

	// MaxModuleSize rejects a larger input with ErrUnsupported before
	// reading it. Zero means DefaultMaxModuleSize.
	MaxModuleSize int
}

func (c Config) withDefaults() Config {
	if c.MaxModuleSize <= 0 {
		c.MaxModuleSize = DefaultMaxModuleSize
	}
	switch {
	case c.StartFuel == 0:
		c.StartFuel = DefaultStartFuel
	case c.StartFuel < 0:
		c.StartFuel = 0
	case c.StartFuel > MaxFuel:
		c.StartFuel = MaxFuel
	}
	if c.MemoryCap <= 0 {
		c.MemoryCap = math.MaxInt64
	}
	return c
}

// Info describes an instrumented module.
type Info struct {
	// CostTableVersion is the CostTableVersion the module was metered with.
	CostTableVersion int
	// Functions is the number of function bodies instrumented (the defined
	// functions; imported functions have no body).
	Functions int
	// Charges is the number of charge sites inserted, static and bulk.
	Charges int
	// FuelGlobal is the index, in the global index space, of the fuel
	// global: one past the last global of the input, imports included.
	// Without metering there is no fuel global and it is unused.
	FuelGlobal uint32
	// CapGlobal is the index of the cap global ([CapExportName]); the
	// table elements and denied globals follow it.
	CapGlobal uint32
	// TableElems is the initial value of [TableElemsExportName]: the sum of
	// the declared minimums of the module's tables, imported ones included.
	TableElems uint64
	// MemoryGrows and TableGrows count the memory.grow and table.grow
	// instructions checked against the cap. A module with neither never
	// changes the size of its memory or tables.
	MemoryGrows, TableGrows int
	// MutableGlobals are the indices of the mutable globals the input
	// defines, each exported as [GlobalExportName] of it; set only with
	// [Config.TrackWrites].
	MutableGlobals []uint32
	// PageList is the index of the first of the [PageListLen] i32 globals
	// of the page list, with [Config.TrackPages] (and a memory); 0
	// otherwise. A host reads them by index (they are not exported).
	PageList uint32
}

// Section ids of WebAssembly 2.0.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// sectionRank is the position a known section must take in the module.
var sectionRank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secGlobal: 6,
	secExport: 7, secStart: 8, secElement: 9, secDataCount: 10, secCode: 11, secData: 12,
}

var sectionName = [...]string{
	"custom", "type", "import", "function", "table", "memory", "global",
	"export", "start", "element", "code", "data", "data count",
}

type section struct {
	id         byte
	start, end int // the section's bytes, header included
	body       int // where its contents start
}

// module is what the pass learns of its input.
type module struct {
	in          []byte
	sections    []section
	typeParams  []int // number of parameters of each type
	funcTypes   []uint32
	importFuncs int
	globals     uint32 // imported and defined
	defGlobals  uint32 // defined
	exports     uint32
	fuelGlobal  uint32
	startFuel   int64
	memoryCap   int64    // Config.MemoryCap
	metered     bool     // !Config.NoMetering
	hasMemory   bool     // the module defines or imports a memory: the tick can step out
	tableElems  uint64   // sum of the declared minimums of its tables
	track       bool     // Config.TrackWrites
	pages       bool     // Config.TrackPages
	mutGlobals  []uint32 // indices of the mutable globals it defines
	tables      uint32   // tables, imported and defined
}

// The added entries: the tick's type and function come after every type and
// function of the input, the mark global right after the fuel global, so
// that no index of the input shifts.
func (m *module) tickType() uint32   { return uint32(len(m.typeParams)) }
func (m *module) tickFunc() uint32   { return uint32(m.importFuncs + len(m.funcTypes)) }
func (m *module) markGlobal() uint32 { return m.fuelGlobal + 1 }

// The cap globals come after the fuel and mark globals, or first without
// metering.
func (m *module) capGlobal() uint32 {
	if m.metered {
		return m.fuelGlobal + 2
	}
	return m.fuelGlobal
}
func (m *module) elemsGlobal() uint32  { return m.capGlobal() + 1 }
func (m *module) deniedGlobal() uint32 { return m.capGlobal() + 2 }

// funcs is the number of functions of the input, imports included.
func (m *module) funcs() uint32 { return uint32(m.importFuncs + len(m.funcTypes)) }

func malformed(off int, format string, args ...any) error {
	return &Error{Err: ErrMalformed, Func: -1, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func unsupported(off int, format string, args ...any) error {
	return &Error{Err: ErrUnsupported, Func: -1, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Instrument returns a copy of the WebAssembly 2.0 module wasm that meters
// its own execution with the cost table of version [CostTableVersion]: it
// adds two mutable i64 globals, the fuel and the mark, exported as
// [ExportName] and [MarkExportName], after every other global, and a tick
// function (with its type) after every other function and type, so that no
// index shifts; charges every function, block, loop, if and else body for
// its straight-line code, charges bulk memory and table operations and
// memory.grow by their size operand, and traps (unreachable) as soon as the
// fuel goes negative; loop bodies and the entries of functions that call
// also tick (see [TickSlice]). It also adds three globals after those,
// exported as [CapExportName], [TableElemsExportName] and
// [DeniedExportName], and checks every memory.grow and table.grow against
// the cap (with [Config.NoMetering], it does only this). Functions that
// use bulk operations or grow get one or two extra i32 locals after their
// declared locals. Every other section, custom sections included, is
// copied unchanged.
//
// Instrument is deterministic: the same wasm and cfg give the same bytes. It
// never panics and does not retain or modify wasm; the result is a new
// slice owned by the caller. It fails with an [*Error] wrapping
// [ErrMalformed] or [ErrUnsupported].
//
// The pass checks what it relies on (section framing and order, instruction
// encoding, block nesting, local and global indices) but is no validator:
// compile the result to validate it.
func Instrument(wasm []byte, cfg Config) ([]byte, Info, error) {
	cfg = cfg.withDefaults()
	if len(wasm) > cfg.MaxModuleSize {
		return nil, Info{}, unsupported(0, "module of %d bytes is larger than %d", len(wasm), cfg.MaxModuleSize)
	}
	m := &module{in: wasm, startFuel: cfg.StartFuel, memoryCap: cfg.MemoryCap, metered: !cfg.NoMetering, track: cfg.TrackWrites,
		pages: cfg.TrackWrites && cfg.TrackPages}
	if err := m.parse(); err != nil {
		return nil, Info{}, err
	}
	return m.emit()
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func (m *module) parse() error {
	if len(m.in) < len(header) || string(m.in[:4]) != string(header[:4]) {
		return malformed(0, "not a WebAssembly binary (bad magic)")
	}
	if string(m.in[4:8]) != string(header[4:8]) {
		return unsupported(4, "binary format version %x (only version 1, the core module format, is supported)", m.in[4:8])
	}
	r := reader{b: m.in, off: len(header)}
	lastRank := 0
	for !r.eof() {
		start := r.off
		id, _ := r.byte()
		size, ok := r.u32()
		if !ok {
			return malformed(start, "bad section size")
		}
		body := r.off
		if !r.skip(int(size)) {
			return malformed(start, "section %d runs past the end of the module", id)
		}
		if id != secCustom {
			if int(id) >= len(sectionRank) {
				return unsupported(start, "unknown section id %d", id)
			}
			if sectionRank[id] <= lastRank {
				return malformed(start, "%s section out of order or repeated", sectionName[id])
			}
			lastRank = sectionRank[id]
		}
		m.sections = append(m.sections, section{id: id, start: start, end: r.off, body: body})
	}
	var codeCount = -1
	for i := range m.sections {
		s := &m.sections[i]
		sr := reader{b: m.in[s.body:s.end], base: s.body}
		var err error
		switch s.id {
		case secCustom:
			err = checkCustom(&sr)
		case secType:
			err = m.parseTypes(&sr)
		case secImport:
			err = m.parseImports(&sr)
		case secFunction:
			err = m.parseFunctions(&sr)
		case secTable:
			err = m.parseTables(&sr)
		case secMemory:
			var n int
			n, err = parseMemories(&sr)
			m.hasMemory = m.hasMemory || n > 0
		case secGlobal:
			err = m.parseGlobals(&sr)
		case secExport:
			err = m.parseExports(&sr)
		case secStart:
			if f, ok := sr.u32(); !ok || f >= m.funcs() || !sr.eof() {
				err = malformed(sr.pos(), "bad start function")
			}
		case secElement:
			err = m.parseElements(&sr)
		case secData:
			err = m.parseData(&sr)
		case secCode:
			n, ok := sr.count(1)
			if !ok {
				return malformed(sr.pos(), "bad code section count")
			}
			codeCount = n
		}
		if err != nil {
			return err
		}
	}
	if codeCount < 0 {
		codeCount = 0
	}
	if codeCount != len(m.funcTypes) {
		return malformed(0, "%d function declarations but %d function bodies", len(m.funcTypes), codeCount)
	}
	m.fuelGlobal = m.globals
	return nil
}

func checkCustom(r *reader) error {
	n, ok := r.count(1)
	if !ok || !r.skip(n) {
		return malformed(r.pos(), "bad custom section name")
	}
	return nil
}

func (m *module) parseTypes(r *reader) error {
	n, ok := r.count(3)
	if !ok {
		return malformed(r.pos(), "bad type section count")
	}
	m.typeParams = make([]int, 0, n)
	for i := 0; i < n; i++ {
		at := r.pos()
		form, _ := r.byte()
		if form != 0x60 {
			return unsupported(at, "type %d has form %#x (only function types, 0x60, are supported)", i, form)
		}
		params, ok := r.count(1)
		if !ok {
			return malformed(r.pos(), "bad parameter count of type %d", i)
		}
		for j := 0; j < params; j++ {
			if err := valType(r); err != nil {
				return err
			}
		}
		results, ok := r.count(1)
		if !ok {
			return malformed(r.pos(), "bad result count of type %d", i)
		}
		for j := 0; j < results; j++ {
			if err := valType(r); err != nil {
				return err
			}
		}
		m.typeParams = append(m.typeParams, params)
	}
	return endOfSection(r, "type")
}

func endOfSection(r *reader, name string) error {
	if !r.eof() {
		return malformed(r.pos(), "%d trailing bytes in %s section", len(r.b)-r.off, name)
	}
	return nil
}

// valType reads a value type, rejecting v128 (SIMD) as unsupported.
func valType(r *reader) error {
	at := r.pos()
	t, ok := r.byte()
	switch {
	case !ok:
		return malformed(at, "missing value type")
	case t == 0x7f, t == 0x7e, t == 0x7d, t == 0x7c, t == 0x70, t == 0x6f:
		return nil
	case t == 0x7b:
		return unsupported(at, "SIMD value type v128")
	default:
		return malformed(at, "bad value type %#x", t)
	}
}

func refType(r *reader) error {
	at := r.pos()
	t, ok := r.byte()
	if !ok || (t != 0x70 && t != 0x6f) {
		return malformed(at, "bad reference type")
	}
	return nil
}

// limits reads table or memory limits and returns the minimum; shared
// (threads) and 64-bit memories are unsupported.
func limits(r *reader) (uint32, error) {
	at := r.pos()
	flags, ok := r.byte()
	if !ok {
		return 0, malformed(at, "missing limits")
	}
	var min uint32
	switch flags {
	case 0x00:
		min, ok = r.u32()
	case 0x01:
		min, ok = r.u32()
		if ok {
			_, ok = r.u32()
		}
	case 0x02, 0x03:
		return 0, unsupported(at, "shared memory (threads)")
	case 0x04, 0x05, 0x06, 0x07:
		return 0, unsupported(at, "64-bit memory or table (memory64)")
	default:
		return 0, malformed(at, "bad limits flags %#x", flags)
	}
	if !ok {
		return 0, malformed(at, "bad limits")
	}
	return min, nil
}

func globalType(r *reader) error {
	if err := valType(r); err != nil {
		return err
	}
	at := r.pos()
	mut, ok := r.byte()
	if !ok || mut > 1 {
		return malformed(at, "bad global mutability")
	}
	return nil
}

func (m *module) parseImports(r *reader) error {
	n, ok := r.count(4)
	if !ok {
		return malformed(r.pos(), "bad import section count")
	}
	for i := 0; i < n; i++ {
		for j := 0; j < 2; j++ { // module and field names
			l, ok := r.count(1)
			if !ok || !r.skip(l) {
				return malformed(r.pos(), "bad name of import %d", i)
			}
		}
		at := r.pos()
		kind, _ := r.byte()
		var err error
		switch kind {
		case 0x00:
			t, ok := r.u32()
			if !ok {
				return malformed(at, "bad type index of import %d", i)
			}
			if int(t) >= len(m.typeParams) {
				return malformed(at, "type index %d of import %d out of range", t, i)
			}
			m.importFuncs++
		case 0x01:
			if err = refType(r); err == nil {
				var n uint32
				n, err = limits(r)
				m.tableElems += uint64(n)
				m.tables++
			}
		case 0x02:
			_, err = limits(r)
			m.hasMemory = true
		case 0x03:
			err = globalType(r)
			m.globals++
		case 0x04:
			return unsupported(at, "tag import (exception handling)")
		default:
			return malformed(at, "bad kind %#x of import %d", kind, i)
		}
		if err != nil {
			return err
		}
	}
	return endOfSection(r, "import")
}

func (m *module) parseFunctions(r *reader) error {
	n, ok := r.count(1)
	if !ok {
		return malformed(r.pos(), "bad function section count")
	}
	m.funcTypes = make([]uint32, n)
	for i := range m.funcTypes {
		at := r.pos()
		t, ok := r.u32()
		if !ok {
			return malformed(at, "bad type index of function %d", m.importFuncs+i)
		}
		if int(t) >= len(m.typeParams) {
			return malformed(at, "type index %d of function %d out of range", t, m.importFuncs+i)
		}
		m.funcTypes[i] = t
	}
	return endOfSection(r, "function")
}

func (m *module) parseTables(r *reader) error {
	n, ok := r.count(2)
	if !ok {
		return malformed(r.pos(), "bad table section count")
	}
	for i := 0; i < n; i++ {
		if err := refType(r); err != nil {
			return err
		}
		min, err := limits(r)
		if err != nil {
			return err
		}
		m.tableElems += uint64(min)
		m.tables++
	}
	return endOfSection(r, "table")
}

func parseMemories(r *reader) (int, error) {
	n, ok := r.count(2)
	if !ok {
		return 0, malformed(r.pos(), "bad memory section count")
	}
	if n > 1 {
		return 0, unsupported(r.pos(), "%d memories (multiple memories)", n)
	}
	for i := 0; i < n; i++ {
		if _, err := limits(r); err != nil {
			return 0, err
		}
	}
	return n, endOfSection(r, "memory")
}

func (m *module) parseGlobals(r *reader) error {
	n, ok := r.count(3)
	if !ok {
		return malformed(r.pos(), "bad global section count")
	}
	for i := 0; i < n; i++ {
		if err := globalType(r); err != nil {
			return err
		}
		if r.b[r.off-1] == 1 {
			m.mutGlobals = append(m.mutGlobals, m.globals)
		}
		// NB: a global's initialiser may name only globals before it.
		if err := m.constExpr(r, m.globals); err != nil {
			return err
		}
		m.globals++
	}
	m.defGlobals = uint32(n)
	return endOfSection(r, "global")
}

// constExpr reads a constant expression whose global.get may name only
// globals below limit, so that no initialiser can read the fuel global.
func (m *module) constExpr(r *reader, limit uint32) error {
	for {
		at := r.pos()
		op, ok := r.byte()
		if !ok {
			return malformed(at, "unterminated constant expression")
		}
		switch op {
		case opEnd:
			return nil
		case opI32Const:
			ok = sleb32(r)
		case opI64Const:
			_, ok = r.sleb(64)
		case opF32Const:
			ok = r.skip(4)
		case opF64Const:
			ok = r.skip(8)
		case opGlobalGet:
			var g uint32
			g, ok = r.u32()
			if ok && g >= limit {
				return malformed(at, "global index %d out of range in constant expression", g)
			}
		case opRefNull:
			if err := refType(r); err != nil {
				return err
			}
		case opRefFunc:
			var f uint32
			f, ok = r.u32()
			if ok && f >= m.funcs() {
				return malformed(at, "function index %d out of range in constant expression", f)
			}
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
		case 0xfd:
			return unsupported(at, "SIMD instruction (0xfd prefix) in constant expression")
		default:
			return malformed(at, "opcode %#x in constant expression", op)
		}
		if !ok {
			return malformed(at, "bad immediate in constant expression")
		}
	}
}

func sleb32(r *reader) bool {
	_, ok := r.sleb(32)
	return ok
}

func (m *module) parseExports(r *reader) error {
	n, ok := r.count(3)
	if !ok {
		return malformed(r.pos(), "bad export section count")
	}
	for i := 0; i < n; i++ {
		at := r.pos()
		l, ok := r.count(1)
		if !ok || !r.skip(l) {
			return malformed(at, "bad name of export %d", i)
		}
		switch name := string(r.b[r.off-l : r.off]); name {
		case ExportName, MarkExportName, CapExportName, TableElemsExportName, DeniedExportName,
			DirtyLoExportName, DirtyHiExportName, StickyExportName, DirtyCountExportName, DirtyLastExportName, ClearExportName, ScanExportName:
			return unsupported(at, "module already exports %q, a name the pass adds", name)
		default:
			if m.track && strings.HasPrefix(name, globalExportPrefix) {
				return unsupported(at, "module exports %q: names starting with %q are reserved for the globals the pass exports", name, globalExportPrefix)
			}
		}
		kat := r.pos()
		kind, _ := r.byte()
		idx, ok := r.u32()
		if !ok || kind > 0x03 {
			return malformed(kat, "bad export %d", i)
		}
		if kind == 0x00 && idx >= m.funcs() {
			return malformed(kat, "function index %d of export %d out of range", idx, i)
		}
		if kind == 0x03 && idx >= m.globals {
			return malformed(kat, "global index %d of export %d out of range", idx, i)
		}
		if kind == 0x01 && idx >= m.tables {
			return malformed(kat, "table index %d of export %d out of range", idx, i)
		}
	}
	m.exports = uint32(n)
	return endOfSection(r, "export")
}

// parseElements checks the element segments' constant expressions, so that
// none can read the fuel global. Their bytes are copied unchanged.
func (m *module) parseElements(r *reader) error {
	n, ok := r.count(1)
	if !ok {
		return malformed(r.pos(), "bad element section count")
	}
	for i := 0; i < n; i++ {
		at := r.pos()
		flags, ok := r.u32()
		if !ok || flags > 7 {
			return malformed(at, "bad flags of element segment %d", i)
		}
		if flags&0x02 != 0 && flags&0x01 == 0 { // explicit table index
			// NB: the page table (pages.go) is out of range for the input.
			if tab, ok := r.u32(); !ok || tab >= m.tables {
				return malformed(r.pos(), "bad table index of element segment %d", i)
			}
		}
		if flags&0x01 == 0 { // active: offset
			if err := m.constExpr(r, m.globals); err != nil {
				return err
			}
		}
		if flags&0x03 != 0 { // elemkind or reftype
			if flags&0x04 != 0 {
				if err := refType(r); err != nil {
					return err
				}
			} else if k, ok := r.byte(); !ok || k != 0x00 {
				return malformed(r.pos(), "bad element kind of element segment %d", i)
			}
		}
		cnt, ok := r.count(1)
		if !ok {
			return malformed(r.pos(), "bad element count of element segment %d", i)
		}
		for j := 0; j < cnt; j++ {
			if flags&0x04 != 0 {
				if err := m.constExpr(r, m.globals); err != nil {
					return err
				}
			} else if f, ok := r.u32(); !ok || f >= m.funcs() {
				return malformed(r.pos(), "bad function index in element segment %d", i)
			}
		}
	}
	return endOfSection(r, "element")
}

// parseData checks the data segments' offsets, like parseElements.
func (m *module) parseData(r *reader) error {
	n, ok := r.count(1)
	if !ok {
		return malformed(r.pos(), "bad data section count")
	}
	for i := 0; i < n; i++ {
		at := r.pos()
		flags, ok := r.u32()
		if !ok || flags > 2 {
			return malformed(at, "bad flags of data segment %d", i)
		}
		if flags == 2 {
			if mem, ok := r.u32(); !ok || mem != 0 {
				return unsupported(at, "data segment %d for memory other than 0 (multiple memories)", i)
			}
		}
		if flags != 1 {
			if err := m.constExpr(r, m.globals); err != nil {
				return err
			}
		}
		l, ok := r.count(1)
		if !ok || !r.skip(l) {
			return malformed(r.pos(), "bad bytes of data segment %d", i)
		}
	}
	return endOfSection(r, "data")
}
