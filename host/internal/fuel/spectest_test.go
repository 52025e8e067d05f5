package fuel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The official WebAssembly spec testsuite as wazero's module ships it: the
// .wast scripts of github.com/WebAssembly/spec converted by wabt's wast2json
// into a command file (NAME.json) and the binary modules it names
// (NAME.N.wasm), for WebAssembly 1.0 (v1) and 2.0 (v2).
const (
	specModule = "github.com/tetratelabs/wazero"
	specSubdir = "internal/integration_test/spectest"
)

// specSuites are the testsuite's versions and the core features each runs
// with, as wazero runs them: a v1 module that uses a 2.0 feature is invalid.
var specSuites = []struct {
	name     string
	features api.CoreFeatures
}{
	{"v1", api.CoreFeaturesV1},
	{"v2", api.CoreFeaturesV2},
}

// specVariants are the configurations of the pass the suite runs, each in a
// runtime of its own: metered as the host ships it (with write tracking, for
// its per-call reset: by pages, as for a large memory, and by one range, as
// for a small one), metered without tracking, and the cap-only pass of a
// host that disables metering. A start function runs on MaxFuel, and the cap
// never binds (MemoryCap 0 is none). Page tracking needs reference types,
// which a v1 runtime lacks: on the v1 suite the variants track by range
// (pages false), and fuel+range, the same there as fuel+track, does not
// run (v2only).
//
// Under the race detector only the first runs (race set), and the original
// runtime skips assert_exhaustion, whose trap is then the spec's (wazero's
// stack overflow): each exhaustion doubles a wazero stack up to its ceiling
// (about 100 MB), which the race detector's shadow memory makes cost up to
// seconds of CPU, and everything under -race took 330 s of CPU instead of
// 124 (COSTS.md, "Spec testsuite").
var specVariants = []struct {
	name   string
	cfg    Config
	race   bool // runs under the race detector too
	v2only bool // runs on the v2 suite only
}{
	{"fuel+track", Config{StartFuel: MaxFuel, TrackWrites: true, TrackPages: true}, true, false},
	{"fuel+range", Config{StartFuel: MaxFuel, TrackWrites: true}, false, true},
	{"fuel", Config{StartFuel: MaxFuel}, false, false},
	{"caps+track", Config{NoMetering: true, TrackWrites: true, TrackPages: true}, false, false},
}

// specStackOverflow is the kind of trap (specResult.trap) of wazero's error
// for what the spec calls "call stack exhausted".
const specStackOverflow = "stack overflow"

// Floors for the testsuite's size (wazero v1.11.0 ships 2379 binary modules
// and 64593 invoke actions): far fewer means the suite was not found whole,
// and the test must not pass on what little it ran.
const (
	specMinModules    = 1500
	specMinAssertions = 25000
)

// TestFuelPassSpecSuite checks that the deploy-time pass (fuel, ticks, memory
// and table caps, write tracking) preserves semantics on the official
// WebAssembly spec testsuite, an oracle nobody here wrote. Every script runs
// in lock step in one runtime of original modules and one runtime per
// variant of the pass (specVariants), each with every module the pass
// accepts instrumented; the others, SIMD modules, run there as originals, so
// that modules importing from them still link, and the assertions on them
// are counted as refused. The instrumented modules run on MaxFuel, reset
// before every action and instantiation with the mark at the fuel (so that
// every action ticks), with caps that never bind, so that no budget can end
// a call.
//
// Each assert_return must give the spec's results (NaNs by the canonical and
// arithmetic rules that wast2json encodes), each assert_trap and
// assert_exhaustion the original's trap (the first line of wazero's error,
// such as "integer divide by zero"; never fuel exhaustion), each action the original's
// results, each assert_uninstantiable and assert_unlinkable binary module
// the original's failure, and no assert_invalid or assert_malformed binary
// module may come out of the pass valid. The original must agree with the
// spec too, or the harness is wrong. Commands it cannot run (text modules,
// which need a wat parser; variants left out under -race) are counted and
// logged, never dropped silently. The summary goes to t.Logf and COSTS.md
// ("Spec testsuite").
func TestFuelPassSpecSuite(t *testing.T) {
	root := specSuiteDir(t)
	spectest := readTestdata(t, "spectest")
	var total specStats
	t.Run("suite", func(t *testing.T) {
		for _, suite := range specSuites {
			files, err := filepath.Glob(filepath.Join(root, suite.name, "testdata", "*.json"))
			require.NoError(t, err)
			require.NotEmpty(t, files, "no wast2json command files under %s/%s/testdata", root, suite.name)
			for _, file := range files {
				name := suite.name + "/" + strings.TrimSuffix(filepath.Base(file), ".json")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					s := newSpecRun(t, name, file, suite.features, spectest)
					s.run()
					total.merge(&s.stats)
				})
			}
		}
	})
	total.log(t)
	require.Zero(t, len(total.mismatches), "mismatches (listed above)")
	require.Zero(t, len(total.disagreements), "the original disagreed with the spec: the harness, not the pass, is wrong (listed above)")
	require.GreaterOrEqual(t, total.modules, specMinModules, "modules run: the testsuite was not found whole")
	require.GreaterOrEqual(t, total.assertions(), specMinAssertions, "assertions run: the testsuite was not found whole")
}

// specSuiteDir returns the testsuite's directory in the module cache. It is
// an error, not a skip, when it is missing: the test must run in CI.
func specSuiteDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", specModule).Output()
	require.NoError(t, err, "go list -m %s (the spec testsuite ships in its module zip)", specModule)
	dir := filepath.Join(strings.TrimSpace(string(out)), filepath.FromSlash(specSubdir))
	_, err = os.Stat(dir)
	require.NoError(t, err, "the spec testsuite of %s", specModule)
	return dir
}

// specScript is a wast2json command file.
type specScript struct {
	SourceFilename string        `json:"source_filename"`
	Commands       []specCommand `json:"commands"`
}

// specCommand is one command of a script: a module to instantiate (and maybe
// register under a name for others to import), an action, or an assertion.
type specCommand struct {
	Type       string      `json:"type"`
	Line       int         `json:"line"`
	Name       string      `json:"name"`        // module, register: the module's $name
	Filename   string      `json:"filename"`    // module and module assertions
	ModuleType string      `json:"module_type"` // module assertions: "binary" or "text"
	As         string      `json:"as"`          // register: the import module name
	Text       string      `json:"text"`        // assertions: the spec's error text
	Action     specAction  `json:"action"`
	Expected   []specValue `json:"expected"`
}

// specAction is an invoke of an exported function or a get of an exported
// global, of the named module or else of the last one instantiated.
type specAction struct {
	Type   string      `json:"type"`
	Module string      `json:"module"`
	Field  string      `json:"field"`
	Args   []specValue `json:"args"`
}

// specValue is a typed value of a script. Value is the value's bits as a
// decimal string; in expectations also "nan:canonical" or "nan:arithmetic"
// (for floats), "null" for a null reference, or absent for any non-null
// reference; for v128, an array of such strings, one a lane of LaneType.
type specValue struct {
	Type     string          `json:"type"`
	LaneType string          `json:"lane_type"`
	Value    json.RawMessage `json:"value"`
}

// specStats counts what a script, or the whole suite, ran.
type specStats struct {
	mu             sync.Mutex
	files          int
	modules        int            // modules instantiated in every runtime
	refusedModules int            // of which some variant of the pass refused
	comparisons    int            // assertions and actions compared, times the variants compared in
	refused        map[string]int // modules the pass refused, by its message
	ran            map[string]int // assertions and actions compared, by command type
	skipped        map[string]int // commands not compared, by type and why
	mismatches     []string       // the instrumented module differs: the pass is wrong
	disagreements  []string       // the original differs from the spec: the harness is wrong
}

func (s *specStats) count(m *map[string]int, key string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[key]++
}

func (s *specStats) assertions() int {
	n := 0
	for _, v := range s.ran {
		n += v
	}
	return n
}

// merge adds o to s; s is shared by parallel scripts.
func (s *specStats) merge(o *specStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files++
	s.modules += o.modules
	s.refusedModules += o.refusedModules
	s.comparisons += o.comparisons
	for _, m := range []struct{ dst, src *map[string]int }{{&s.refused, &o.refused}, {&s.ran, &o.ran}, {&s.skipped, &o.skipped}} {
		for k, v := range *m.src {
			if *m.dst == nil {
				*m.dst = map[string]int{}
			}
			(*m.dst)[k] += v
		}
	}
	s.mismatches = append(s.mismatches, o.mismatches...)
	s.disagreements = append(s.disagreements, o.disagreements...)
}

// log writes the summary that COSTS.md quotes.
func (s *specStats) log(t *testing.T) {
	t.Helper()
	var names []string
	for _, v := range specVariants {
		if v.race || !raceEnabled {
			names = append(names, v.name)
		}
	}
	t.Logf("spec testsuite: %d scripts, %d modules (%d refused by the pass), %d assertions and actions compared in the variants %s (%d comparisons), %d mismatches, %d disagreements of the original with the spec",
		s.files, s.modules, s.refusedModules, s.assertions(), strings.Join(names, ", "), s.comparisons, len(s.mismatches), len(s.disagreements))
	for _, group := range []struct {
		name string
		m    map[string]int
	}{{"compared", s.ran}, {"refused modules", s.refused}, {"not compared", s.skipped}} {
		keys := make([]string, 0, len(group.m))
		for k := range group.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			t.Logf("  %s: %s: %d", group.name, k, group.m[k])
		}
	}
}

// specPair is one module of a script in every runtime.
type specPair struct {
	orig    api.Module
	inst    []api.Module // by variant
	refused []bool       // by variant: the pass refused it, inst is the original
}

// specWorld is the runtime of one variant of the pass.
type specWorld struct {
	name string
	cfg  Config
	r    wazero.Runtime
	fuel []api.MutableGlobal // every instrumented instance's fuel and mark globals, in pairs
}

// resetFuel gives every instrumented instance MaxFuel, so that no call, nor
// a call into another instrumented module, can run out. The mark is set to
// the fuel, not to Mark(MaxFuel), so that the first charge of every action
// runs the tick (which then sets the mark TickSlice lower, as always): a
// spec test never runs a TickSlice of fuel, and the tick's code and its
// step out to the host must preserve semantics too.
func (w *specWorld) resetFuel() {
	for i := 0; i < len(w.fuel); i += 2 {
		w.fuel[i].Set(MaxFuel)
		w.fuel[i+1].Set(MaxFuel)
	}
}

// outOfFuel reports whether an instrumented instance ran out of fuel.
func (w *specWorld) outOfFuel() bool {
	for i := 0; i < len(w.fuel); i += 2 {
		if int64(w.fuel[i].Get()) < 0 {
			return true
		}
	}
	return false
}

// specRun runs one script in its runtimes: the originals', and one a
// variant of the pass.
type specRun struct {
	t         *testing.T
	ctx       context.Context
	name, dir string
	script    specScript
	orig      wazero.Runtime
	worlds    []*specWorld
	named     map[string]*specPair
	last      *specPair
	stats     specStats
	notRun    []string // variants left out under the race detector
}

// specCache is the spec suite's compilation cache: in memory, as its
// thousands of small modules compile fast and would only crowd the shared
// directory of testCache.
var specCache = wazero.NewCompilationCache()

func newSpecRun(t *testing.T, name, file string, features api.CoreFeatures, spectest []byte) *specRun {
	ctx := context.Background()
	s := &specRun{t: t, ctx: ctx, name: name, dir: filepath.Dir(file), named: map[string]*specPair{}}
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &s.script))
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(specCache).WithCoreFeatures(features)
	s.orig = wazero.NewRuntimeWithConfig(ctx, cfg)
	runtimes := []wazero.Runtime{s.orig}
	v2 := features.IsEnabled(api.CoreFeatureReferenceTypes)
	for _, v := range specVariants {
		if v.v2only && !v2 {
			continue
		}
		if raceEnabled && !v.race {
			s.notRun = append(s.notRun, v.name)
			continue
		}
		vcfg := v.cfg
		vcfg.TrackPages = vcfg.TrackPages && v2
		w := &specWorld{name: v.name, cfg: vcfg, r: wazero.NewRuntimeWithConfig(ctx, cfg)}
		s.worlds = append(s.worlds, w)
		runtimes = append(runtimes, w.r)
	}
	t.Cleanup(func() {
		for _, r := range runtimes {
			require.NoError(t, r.Close(ctx))
		}
	})
	for _, r := range runtimes {
		_, err := r.InstantiateWithConfig(ctx, spectest, wazero.NewModuleConfig().WithName("spectest"))
		require.NoError(t, err)
	}
	return s
}

func (s *specRun) where(c *specCommand) string {
	return fmt.Sprintf("%s.wast:%d %s", s.name, c.Line, c.Type)
}

func (s *specRun) mismatch(w *specWorld, c *specCommand, format string, args ...any) {
	msg := "[" + w.name + "] " + s.where(c) + ": " + fmt.Sprintf(format, args...)
	s.t.Error("mismatch: " + msg)
	s.stats.mismatches = append(s.stats.mismatches, msg)
}

func (s *specRun) disagree(c *specCommand, format string, args ...any) {
	msg := s.where(c) + ": " + fmt.Sprintf(format, args...)
	s.t.Error("the original disagrees with the spec: " + msg)
	s.stats.disagreements = append(s.stats.disagreements, msg)
}

func (s *specRun) skip(c *specCommand, why string) {
	s.stats.count(&s.stats.skipped, c.Type+" ("+why+")")
}

// compared counts c as run in every variant but those that refused its
// module.
func (s *specRun) compared(c *specCommand, refused []bool) {
	n := 0
	for i, w := range s.worlds {
		if refused != nil && refused[i] {
			s.stats.count(&s.stats.skipped, "["+w.name+"] "+c.Type+" (on a module the pass refused)")
			continue
		}
		n++
	}
	if n > 0 {
		s.stats.count(&s.stats.ran, c.Type)
		s.stats.comparisons += n
	}
	for _, name := range s.notRun {
		s.stats.count(&s.stats.skipped, "["+name+"] "+c.Type+" (variant not run under -race)")
	}
}

func (s *specRun) run() {
	cmds := s.script.Commands
	for i := range cmds {
		c := &cmds[i]
		switch c.Type {
		case "module":
			var as string
			if i+1 < len(cmds) && cmds[i+1].Type == "register" {
				as = cmds[i+1].As
			}
			s.module(c, as)
		case "register":
			// Done with the module it follows (wazero names an instance when
			// it instantiates it): any other is unsupported.
			if i == 0 || cmds[i-1].Type != "module" || (c.Name != "" && c.Name != cmds[i-1].Name) {
				s.skip(c, "not right after its module")
				continue
			}
			s.stats.count(&s.stats.ran, c.Type)
		case "assert_return", "action", "assert_trap", "assert_exhaustion":
			s.action(c)
		case "assert_invalid", "assert_malformed":
			s.invalid(c)
		case "assert_unlinkable", "assert_uninstantiable":
			s.uninstantiable(c)
		default:
			s.skip(c, "unknown command")
		}
	}
}

func (s *specRun) read(c *specCommand) []byte {
	b, err := os.ReadFile(filepath.Join(s.dir, c.Filename))
	require.NoError(s.t, err)
	return b
}

// instantiate compiles and instantiates wasm in r under name, running its
// start section but no exported _start.
func (s *specRun) instantiate(r wazero.Runtime, wasm []byte, name string) (api.Module, error) {
	compiled, err := r.CompileModule(s.ctx, wasm)
	if err != nil {
		return nil, err
	}
	return r.InstantiateModule(s.ctx, compiled, wazero.NewModuleConfig().WithName(name).WithStartFunctions())
}

// instrument runs w's pass on wasm and returns the module for w's runtime:
// the output, or wasm itself when the pass refused it (counted). A valid
// module rejected as malformed is a mismatch.
func (s *specRun) instrument(w *specWorld, c *specCommand, wasm []byte) (out []byte, refused bool) {
	out, _, err := Instrument(wasm, w.cfg)
	if err == nil {
		return out, false
	}
	var e *Error
	switch {
	case errors.As(err, &e) && errors.Is(err, ErrUnsupported):
		s.stats.count(&s.stats.refused, "["+w.name+"] "+e.Msg)
	default:
		s.mismatch(w, c, "the pass rejects a module wazero accepts: %v", err)
	}
	return wasm, true
}

func (s *specRun) module(c *specCommand, as string) {
	wasm := s.read(c)
	p := &specPair{}
	var err error
	s.last = nil
	if p.orig, err = s.instantiate(s.orig, wasm, as); err != nil {
		s.disagree(c, "%s does not instantiate: %v", c.Filename, err)
		return
	}
	for _, w := range s.worlds {
		out, refused := s.instrument(w, c, wasm)
		w.resetFuel()
		inst, err := s.instantiate(w.r, out, as)
		if err != nil && !refused {
			// Go on with the original there, so that one mismatch does
			// not cascade into every module that imports this one.
			s.mismatch(w, c, "%s instrumented does not instantiate: %v", c.Filename, err)
			refused = true
			inst, err = s.instantiate(w.r, wasm, as)
		}
		if err != nil {
			s.mismatch(w, c, "%s does not instantiate in this variant's runtime: %v", c.Filename, err)
		}
		if !refused && !w.cfg.NoMetering {
			f, ok1 := inst.ExportedGlobal(ExportName).(api.MutableGlobal)
			m, ok2 := inst.ExportedGlobal(MarkExportName).(api.MutableGlobal)
			require.True(s.t, ok1 && ok2, "%s: no fuel or mark global", s.where(c))
			w.fuel = append(w.fuel, f, m)
		}
		p.inst, p.refused = append(p.inst, inst), append(p.refused, refused)
	}
	s.stats.modules++
	if slices.Contains(p.refused, true) {
		s.stats.refusedModules++
	}
	s.last = p
	if c.Name != "" {
		s.named[c.Name] = p
	}
}

// result is what an action did in one runtime.
type specResult struct {
	values []uint64
	trap   string // the kind of trap: the error's first line, "" when none
}

// specCall formats an action for a message, only when there is one.
type specCall struct{ a *specAction }

func (c specCall) String() string {
	return fmt.Sprintf("%s %s(%s)", c.a.Type, c.a.Field, c.a.Args)
}

func (r specResult) String() string {
	if r.trap != "" {
		return "trap " + strconv.Quote(r.trap)
	}
	return fmt.Sprint(r.values)
}

func (r specResult) equal(o specResult) bool {
	return r.trap == o.trap && slices.Equal(r.values, o.values)
}

// do runs the action a on m.
func (s *specRun) do(m api.Module, a *specAction) (specResult, error) {
	switch a.Type {
	case "invoke":
		f := m.ExportedFunction(a.Field)
		if f == nil {
			return specResult{}, fmt.Errorf("no exported function %q", a.Field)
		}
		var args []uint64
		for _, v := range a.Args {
			w, err := v.encode()
			if err != nil {
				return specResult{}, err
			}
			args = append(args, w...)
		}
		res, err := f.Call(s.ctx, args...)
		if err != nil {
			// The kind of trap: the first line, whose "wasm error: "
			// prefix wazero leaves out of a stack overflow in some paths.
			line, _, _ := strings.Cut(err.Error(), "\n")
			return specResult{trap: strings.TrimPrefix(line, "wasm error: ")}, nil
		}
		return specResult{values: res}, nil
	case "get":
		g := m.ExportedGlobal(a.Field)
		if g == nil {
			return specResult{}, fmt.Errorf("no exported global %q", a.Field)
		}
		return specResult{values: []uint64{g.Get()}}, nil
	}
	return specResult{}, fmt.Errorf("unknown action type %q", a.Type)
}

func (s *specRun) action(c *specCommand) {
	p := s.last
	if c.Action.Module != "" {
		p = s.named[c.Action.Module]
	}
	if p == nil {
		s.skip(c, "its module did not instantiate")
		return
	}
	call := specCall{&c.Action}
	var orig specResult
	var err error
	if c.Type == "assert_exhaustion" && raceEnabled {
		orig = specResult{trap: specStackOverflow}
		s.skip(c, "original not run under -race: wazero's stack overflow expected")
	} else if orig, err = s.do(p.orig, &c.Action); err != nil {
		s.t.Fatalf("%s: %v", s.where(c), err)
	}
	okOrig := false
	switch c.Type {
	case "assert_return":
		if okOrig, err = specMatches(c.Expected, orig); err != nil {
			s.t.Fatalf("%s: %v", s.where(c), err)
		}
	case "assert_trap", "assert_exhaustion":
		okOrig = orig.trap != "" && (c.Type != "assert_exhaustion" || orig.trap == specStackOverflow)
		if !okOrig {
			s.disagree(c, "%s: expected trap %q, original %s", call, c.Text, orig)
		}
	}
	for i, w := range s.worlds {
		if p.refused[i] {
			continue
		}
		w.resetFuel()
		inst, err := s.do(p.inst[i], &c.Action)
		if err != nil {
			s.t.Fatalf("%s: %v", s.where(c), err)
		}
		if w.outOfFuel() {
			s.mismatch(w, c, "%s: the instrumented module ran out of MaxFuel", call)
		}
		switch c.Type {
		case "assert_return":
			okInst, err := specMatches(c.Expected, inst)
			if err != nil {
				s.t.Fatalf("%s: %v", s.where(c), err)
			}
			if !okInst && (okOrig || !orig.equal(inst)) {
				s.mismatch(w, c, "%s: expected %s, original %s, instrumented %s", call, c.Expected, orig, inst)
			}
		case "action":
			if !orig.equal(inst) {
				s.mismatch(w, c, "%s: original %s, instrumented %s", call, orig, inst)
			}
		case "assert_trap", "assert_exhaustion":
			if okOrig && inst.trap != orig.trap {
				s.mismatch(w, c, "%s: expected trap %q, original %s, instrumented %s", call, c.Text, orig, inst)
			}
		}
	}
	if c.Type == "assert_return" && !okOrig {
		s.disagree(c, "%s: expected %s, original %s", call, c.Expected, orig)
	}
	s.compared(c, p.refused)
}

// invalid checks that a module the spec calls invalid or malformed does not
// come out of the pass valid: the pass rejects it, or its output does not
// instantiate either. Validity is "compiles and instantiates", as wazero
// checks some rules (a constant expression naming an imported mutable
// global) only when it instantiates. Where the pass rejects the module, its
// runtime tries the original, so that every runtime sees the same attempts.
func (s *specRun) invalid(c *specCommand) {
	if c.ModuleType != "binary" {
		s.skip(c, c.ModuleType+" module")
		return
	}
	wasm := s.read(c)
	if _, err := s.instantiate(s.orig, wasm, ""); err == nil {
		s.disagree(c, "%s (%s) instantiates", c.Filename, c.Text)
	}
	for _, w := range s.worlds {
		out, _, err := Instrument(wasm, w.cfg)
		w.resetFuel()
		if err != nil {
			_, _ = s.instantiate(w.r, wasm, "")
			continue
		}
		if _, err := s.instantiate(w.r, out, ""); err == nil {
			s.mismatch(w, c, "%s (%s): the pass made it valid", c.Filename, c.Text)
		}
	}
	s.compared(c, nil)
}

// uninstantiable checks that a module whose linking or start fails fails
// instrumented too. A module the pass refuses runs as the original in its
// runtime, so that what its failed instantiation wrote to imported memories
// and tables is the same in every runtime.
func (s *specRun) uninstantiable(c *specCommand) {
	if c.ModuleType != "" && c.ModuleType != "binary" {
		s.skip(c, c.ModuleType+" module")
		return
	}
	wasm := s.read(c)
	_, origErr := s.instantiate(s.orig, wasm, "")
	if origErr == nil && c.Text != "out of bounds table access" {
		// wazero keeps such a module's instance, as its own runner notes.
		s.disagree(c, "%s (%s) instantiates", c.Filename, c.Text)
	}
	refused := make([]bool, len(s.worlds))
	for i, w := range s.worlds {
		var out []byte
		out, refused[i] = s.instrument(w, c, wasm)
		w.resetFuel()
		_, instErr := s.instantiate(w.r, out, "")
		if !refused[i] && (origErr == nil) != (instErr == nil) {
			s.mismatch(w, c, "%s (%s): original %v, instrumented %v", c.Filename, c.Text, origErr, instErr)
		}
	}
	s.compared(c, refused)
}

// specMatches reports whether r is the results exp expects.
func specMatches(exp []specValue, r specResult) (bool, error) {
	if r.trap != "" {
		return false, nil
	}
	got := r.values
	for _, v := range exp {
		n := 1
		if v.Type == "v128" {
			n = 2
		}
		if len(got) < n {
			return false, nil
		}
		ok, err := v.matches(got[:n])
		if err != nil || !ok {
			return false, err
		}
		got = got[n:]
	}
	return len(got) == 0, nil
}

func (v specValue) String() string {
	return v.Type + ":" + string(v.Value)
}

// lanes returns the lane type and lane strings of a v128 value.
func (v specValue) lanes() (string, []string, error) {
	var lanes []string
	if err := json.Unmarshal(v.Value, &lanes); err != nil {
		return "", nil, fmt.Errorf("v128 value %s: %w", v.Value, err)
	}
	if w := laneBits(v.LaneType); w == 0 || len(lanes)*w != 128 {
		return "", nil, fmt.Errorf("v128 value %s of lane type %q", v.Value, v.LaneType)
	}
	return v.LaneType, lanes, nil
}

// scalar returns a scalar's value string, "" when absent.
func (v specValue) scalar() (string, error) {
	if len(v.Value) == 0 {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return "", fmt.Errorf("%s value %s: %w", v.Type, v.Value, err)
	}
	return s, nil
}

func laneBits(typ string) int {
	switch typ {
	case "i8":
		return 8
	case "i16":
		return 16
	case "i32", "f32":
		return 32
	case "i64", "f64":
		return 64
	}
	return 0
}

// encode returns an argument as wazero passes it: one word, or two for v128
// (low lanes first). An externref n is n+1, since wazero's null is 0.
func (v specValue) encode() ([]uint64, error) {
	if v.Type == "v128" {
		typ, lanes, err := v.lanes()
		if err != nil {
			return nil, err
		}
		w := laneBits(typ)
		words := make([]uint64, 2)
		for i, l := range lanes {
			b, err := strconv.ParseUint(l, 10, w)
			if err != nil {
				return nil, fmt.Errorf("v128 lane %q: %w", l, err)
			}
			bit := i * w
			words[bit/64] |= b << (bit % 64)
		}
		return words, nil
	}
	s, err := v.scalar()
	if err != nil {
		return nil, err
	}
	switch v.Type {
	case "externref", "funcref":
		if s == "null" {
			return []uint64{0}, nil
		}
		if v.Type == "funcref" {
			return nil, fmt.Errorf("non-null funcref argument %q", s)
		}
		n, err := strconv.ParseUint(s, 10, 63)
		return []uint64{n + 1}, err
	}
	w := laneBits(v.Type)
	if w < 32 {
		return nil, fmt.Errorf("value type %q", v.Type)
	}
	n, err := strconv.ParseUint(s, 10, w)
	return []uint64{n}, err
}

// matches reports whether got (one word, two for v128) is the value v
// expects.
func (v specValue) matches(got []uint64) (bool, error) {
	if v.Type == "v128" {
		typ, lanes, err := v.lanes()
		if err != nil {
			return false, err
		}
		w := laneBits(typ)
		for i, l := range lanes {
			bit := i * w
			lane := got[bit/64] >> (bit % 64)
			if w < 64 {
				lane &= 1<<w - 1
			}
			ok, err := scalarMatches(typ, l, lane)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
	s, err := v.scalar()
	if err != nil {
		return false, err
	}
	switch v.Type {
	case "externref", "funcref":
		switch s {
		case "":
			return got[0] != 0, nil // any non-null reference
		case "null":
			return got[0] == 0, nil
		}
		if v.Type == "funcref" {
			return false, fmt.Errorf("funcref expectation %q", s)
		}
		n, err := strconv.ParseUint(s, 10, 63)
		return got[0] == n+1, err
	}
	w := laneBits(v.Type)
	if w < 32 {
		return false, fmt.Errorf("value type %q", v.Type)
	}
	word := got[0]
	if w == 32 {
		word &= 1<<32 - 1
	}
	return scalarMatches(v.Type, s, word)
}

// scalarMatches reports whether bits, a value of typ (i8 ... f64), is s:
// its bits in decimal, or for floats "nan:canonical" (a NaN whose payload is
// only its most significant bit, of either sign) or "nan:arithmetic" (a NaN
// with that bit set). Specific NaNs compare bit for bit.
func scalarMatches(typ, s string, bits uint64) (bool, error) {
	var sign, quiet uint64 // sign bit; exponent and payload MSB
	switch typ {
	case "f32":
		sign, quiet = 1<<31, 0x7fc00000
	case "f64":
		sign, quiet = 1<<63, 0x7ff8000000000000
	}
	switch s {
	case "nan:canonical":
		if quiet == 0 {
			return false, fmt.Errorf("%s of type %s", s, typ)
		}
		return bits&^sign == quiet, nil
	case "nan:arithmetic":
		if quiet == 0 {
			return false, fmt.Errorf("%s of type %s", s, typ)
		}
		return bits&quiet == quiet, nil
	}
	want, err := strconv.ParseUint(s, 10, laneBits(typ))
	return bits == want, err
}
