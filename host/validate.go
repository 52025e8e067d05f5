package host

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host/internal/fuel"
)

// Module names a contract may import from.
const (
	kernelModule = "kernel"
	wasiModule   = "wasi_snapshot_preview1"
)

// kernelFunctions are the host functions of module "kernel" a module may
// import, with their signatures (SPEC.md "Host API"). They work only while an
// executable runs (kh_invoke); during a check they return -1, so contracts
// stay pure. A new function is added here and in kernelmod.go together.
var kernelFunctions = map[string]signature{
	"call":   {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"result": {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"log":    {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, nil},
}

// signature is a function type.
type signature struct {
	params, results []api.ValueType
}

func (s signature) String() string {
	return "(" + typeList(s.params) + ") -> (" + typeList(s.results) + ")"
}

func typeList(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

func (s signature) equal(params, results []api.ValueType) bool {
	return string(s.params) == string(params) && string(s.results) == string(results)
}

// wasiAllowed is the deterministic WASI subset: exactly the functions a
// standard Go guest (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) imports
// when it uses fmt or os, measured with Go 1.26. The runtime alone imports
// the first ten; package os adds the fd_ ones it calls at init. With no
// preopens they find no files.
var wasiAllowed = map[string]bool{
	"args_get":            true,
	"args_sizes_get":      true,
	"clock_time_get":      true,
	"environ_get":         true,
	"environ_sizes_get":   true,
	"fd_write":            true,
	"poll_oneoff":         true,
	"proc_exit":           true,
	"random_get":          true,
	"sched_yield":         true,
	"fd_close":            true,
	"fd_fdstat_get":       true,
	"fd_fdstat_set_flags": true,
	"fd_prestat_get":      true,
	"fd_prestat_dir_name": true,
}

// wasiDenied says why a WASI function outside the subset is refused.
func wasiDenied(name string) string {
	switch {
	case strings.HasPrefix(name, "sock_"):
		return "contracts get no network"
	case strings.HasPrefix(name, "fd_"), strings.HasPrefix(name, "path_"):
		return "contracts get no filesystem"
	}
	names := make([]string, 0, len(wasiAllowed))
	for n := range wasiAllowed {
		names = append(names, n)
	}
	sort.Strings(names)
	return "it is not in the deterministic WASI subset (" + strings.Join(names, ", ") + ")"
}

// required exports and their signatures (SPEC.md section 1).
var requiredExports = [...]struct {
	name string
	sig  signature
}{
	{"kh_abi_version", signature{nil, []api.ValueType{api.ValueTypeI32}}},
	{"kh_alloc", signature{[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}}},
}

// entryPoints: a module exports kh_check (a contract), kh_invoke (an
// executable), or both, with this signature.
var (
	entryPoints   = [...]string{"kh_check", "kh_invoke"}
	entryPointSig = signature{[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}}
)

func invalid(format string, args ...any) *Error {
	return newError(ErrInvalidModule, fmt.Errorf(format, args...))
}

// check validates wasm and returns its compiled module (not registered),
// one initialised instance and the fuel the checks ran (initialisation and
// kh_abi_version; PrepareMetered), which is also set when it fails. See
// Validate for what is checked.
func (h *Host) check(ctx context.Context, wasm []byte) (_ *module, _ *instance, used uint64, _ error) {
	m, inst, err := h.checkFuel(ctx, wasm, &used)
	return m, inst, used, err
}

// checkFuel is check, adding the fuel it runs to *used.
func (h *Host) checkFuel(ctx context.Context, wasm []byte, used *uint64) (*module, *instance, error) {
	c := &h.cfg
	if len(wasm) > c.MaxModuleBytes {
		return nil, nil, invalid("module is %d bytes, the limit is %d: strip debug sections or shrink the code", len(wasm), c.MaxModuleBytes)
	}
	shape, err := scanModule(wasm)
	if err != nil {
		return nil, nil, invalid("not a WebAssembly module: %v", err)
	}
	// A metered module's start function becomes an export the host calls
	// (startexport.go); the name is reserved on every host.
	started, serr := exportStart(wasm)
	var problems []string
	if shape.functions > c.MaxFunctions {
		problems = append(problems, fmt.Sprintf("module has %d functions, the limit is %d", shape.functions, c.MaxFunctions))
	}
	if shape.globals > c.MaxGlobals {
		problems = append(problems, fmt.Sprintf("module has %d globals, the limit is %d", shape.globals, c.MaxGlobals))
	}
	if shape.tableEntries > uint64(c.MaxTableEntries) {
		problems = append(problems, fmt.Sprintf("module's tables declare %d entries, the limit is %d", shape.tableEntries, c.MaxTableEntries))
	}
	if limit := min(c.MaxInitialMemoryPages, c.memoryLimitPages()); shape.memoryPages > limit {
		problems = append(problems, fmt.Sprintf("memory declares %d initial pages (%d KiB), the limit is %d pages: lower the initial memory",
			shape.memoryPages, uint64(shape.memoryPages)*64, limit))
	}
	if need := uint64(shape.memoryPages)*pageSize + shape.tableEntries*fuel.TableElemBytes; need > c.MemoryLimitBytes {
		// The declared minimums are allocated at instantiation: they count
		// against the same limit as growth (memcap.go).
		problems = append(problems, fmt.Sprintf("memory (%d initial pages) and tables (%d entries, %d bytes each) need %d bytes at instantiation, the host's memory limit is %d: lower the initial sizes",
			shape.memoryPages, shape.tableEntries, fuel.TableElemBytes, need, c.MemoryLimitBytes))
	}
	for _, imp := range shape.imports {
		if imp.kind == importMemory {
			problems = append(problems, fmt.Sprintf("import %q.%q is a memory: a contract must define and export its own memory", imp.module, imp.name))
		} else if imp.kind != importFunc {
			problems = append(problems, fmt.Sprintf("import %q.%q is a %s: contracts may import only functions", imp.module, imp.name, kindNames[imp.kind]))
		}
	}
	if serr != nil {
		problems = append(problems, serr.Error())
	}
	if len(problems) > 0 {
		return nil, nil, invalid("%s", strings.Join(problems, "; "))
	}

	// Every module is instrumented: with metering for fuel, and always so
	// that memory.grow and table.grow hold to the call's memory cap
	// (memcap.go) and that writes are tracked for the per-call reset
	// (reset.go): by pages, unless the memory is small (rangeMaxBytes). A
	// module that declares a small memory and grows it during
	// initialisation is instrumented again, by pages.
	input, pass := started, "fuel metering"
	if c.DisableMetering {
		input, pass = wasm, "the memory-cap pass"
	}
	pages := uint64(shape.memoryPages)*pageSize > rangeMaxBytes
	m, inst, err := h.compileChecked(ctx, input, pass, pages, used)
	if err == nil && !pages && uint64(inst.mem.Size()) > rangeMaxBytes {
		m.discard(inst)
		m.closeCompiled()
		*used = 0
		m, inst, err = h.compileChecked(ctx, input, pass, true, used)
	}
	return m, inst, err
}

// rangeMaxBytes is the largest memory whose writes are tracked by one
// dirty range (fuel.Config.TrackWrites alone) instead of by pages
// (TrackPages): the range's restore copies at most this, and a small
// module (the C genesis contracts have 64 KiB) is faster with it: no call
// to note a page, no page list to read (BenchmarkCheck, README).
const rangeMaxBytes = 2 * pageSize

// compileChecked instruments input (tracking writes by pages or by one
// range), compiles it, checks what needs the compiled module (imports,
// exports) and initialises the module's first instance, adding the fuel it
// runs to *used.
func (h *Host) compileChecked(ctx context.Context, input []byte, pass string, pages bool, used *uint64) (*module, *instance, error) {
	c := &h.cfg
	var problems []string
	code, info, ferr := fuel.Instrument(input, fuel.Config{StartFuel: int64(c.InitFuel), MaxModuleSize: c.MaxModuleBytes,
		MemoryCap: int64(c.MemoryLimitBytes), NoMetering: c.DisableMetering, TrackWrites: true, TrackPages: pages})
	if ferr != nil {
		return nil, nil, invalid("%s cannot instrument the module: %v", pass, ferr)
	}
	compiled, err := h.rt.CompileModule(ctx, code)
	if err != nil {
		if h.closed.Load() {
			return nil, nil, newError(ErrClosed, nil)
		}
		return nil, nil, invalid("module does not compile: %v", err)
	}
	fail := func(e *Error) (*module, *instance, error) {
		_ = compiled.Close(ctx)
		return nil, nil, e
	}
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if p := h.checkImport(mod, name, f.ParamTypes(), f.ResultTypes()); p != "" {
			problems = append(problems, p)
		}
	}
	exports := compiled.ExportedFunctions()
	if _, ok := compiled.ExportedMemories()["memory"]; !ok {
		problems = append(problems, `missing export "memory": export the module's linear memory as "memory"`)
	}
	for _, want := range requiredExports {
		f, ok := exports[want.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing export %q: a contract exports func %s %s", want.name, want.name, want.sig))
			continue
		}
		if !want.sig.equal(f.ParamTypes(), f.ResultTypes()) {
			problems = append(problems, fmt.Sprintf("export %q has type %s, want %s", want.name,
				signature{f.ParamTypes(), f.ResultTypes()}, want.sig))
		}
	}
	entries := 0
	for _, name := range entryPoints {
		f, ok := exports[name]
		if !ok {
			continue
		}
		entries++
		if !entryPointSig.equal(f.ParamTypes(), f.ResultTypes()) {
			problems = append(problems, fmt.Sprintf("export %q has type %s, want %s", name, signature{f.ParamTypes(), f.ResultTypes()}, entryPointSig))
		}
	}
	if entries == 0 {
		problems = append(problems, fmt.Sprintf(`missing export "kh_check": a contract exports func kh_check %s (an executable exports kh_invoke with the same type)`, entryPointSig))
	}
	if f, ok := exports["_initialize"]; ok && (len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0) {
		problems = append(problems, fmt.Sprintf(`export "_initialize" has type %s, want () -> ()`, signature{f.ParamTypes(), f.ResultTypes()}))
	}
	if _, ok := exports["_start"]; ok {
		problems = append(problems, `module exports "_start": build a reactor, not a command (Go: -buildmode=c-shared; C: -mexec-model=reactor)`)
	}
	if len(problems) > 0 {
		return fail(invalid("%s", strings.Join(problems, "; ")))
	}

	m := h.newModule(compiled)
	m.grows, m.tableGrows = info.MemoryGrows+info.TableGrows > 0, info.TableGrows > 0
	m.tableBytes = info.TableElems * fuel.TableElemBytes
	m.mutGlobals = info.MutableGlobals
	m.pageList = info.PageList
	m.codeBytes = codeBytesPerByte * uint64(len(code))
	h.watchChecking(m)
	defer h.unwatchChecking(m)
	inst, err := h.instantiateInit(ctx, m, h.cfg.InitTimeout, used)
	if err != nil {
		var he *Error
		if errors.As(err, &he) && (he.code == abi.Unavailable || errors.Is(err, ErrClosed)) {
			return fail(he)
		}
		return fail(invalid("initialising the module failed: %w", err))
	}
	m.initFuel = *used
	// What a fresh instance holds is what every call needs at least: a
	// call capped below it fails at once (fitInstance).
	m.base = inst.footprint
	if err := inst.startCall(ctx, &h.cfg, h.cfg.Timeout, h.cfg.CheckFuel); err != nil {
		m.discard(inst)
		return fail(ctxError(err, "validate"))
	}
	stopped, cerr := h.callWatched(inst, inst.versionFn, h.cfg.Timeout)
	*used += inst.endCall(&h.cfg)
	if stopped {
		m.discard(inst)
		return fail(invalid("kh_abi_version: %w", h.watchdogError("kh_abi_version", h.cfg.Timeout)))
	}
	if cerr != nil {
		m.discard(inst)
		return fail(invalid("kh_abi_version failed: %w", h.callError(inst, cerr, "kh_abi_version", abi.Limits{}, h.cfg.Timeout)))
	}
	if v := uint32(inst.stack[0]); v != uint32(abi.Version) {
		m.discard(inst)
		return fail(invalid("kh_abi_version returned %d, this host speaks ABI version %d: rebuild against the current SDK", v, abi.Version))
	}
	return m, inst, nil
}

// checkImport returns why an imported function is refused, or "".
func (h *Host) checkImport(mod, name string, params, results []api.ValueType) string {
	switch mod {
	case wasiModule:
		if !wasiAllowed[name] {
			return fmt.Sprintf("import %q.%q is not allowed: %s", mod, name, wasiDenied(name))
		}
		def, ok := h.wasiDefs[name]
		if !ok {
			return fmt.Sprintf("import %q.%q is not provided by this host", mod, name)
		}
		want := signature{def.ParamTypes(), def.ResultTypes()}
		if !want.equal(params, results) {
			return fmt.Sprintf("import %q.%q has type %s, want %s", mod, name, signature{params, results}, want)
		}
	case kernelModule:
		want, ok := kernelFunctions[name]
		if !ok {
			return fmt.Sprintf("import %q.%q is not allowed: ABI version %d defines no such kernel function", mod, name, abi.Version)
		}
		if !want.equal(params, results) {
			return fmt.Sprintf("import %q.%q has type %s, want %s", mod, name, signature{params, results}, want)
		}
	default:
		return fmt.Sprintf("import %q.%q is not allowed: contracts may import only from %q and %q", mod, name, kernelModule, wasiModule)
	}
	return ""
}
