package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/kernelhost/kernelhost"

// rule says what the non-test code of a package tree may import directly. A
// rule covers pkg and every package under it, except where a rule for a
// longer path takes over. Every package may import its own tree.
type rule struct {
	pkg      string   // module-relative path
	std      bool     // the standard library, minus banned
	banned   []string // standard packages refused, each with its subtree
	module   []string // module-relative packages allowed (exact paths)
	external []string // external import paths allowed, each with its subtree
	// externalDeps also allows what the external packages depend on,
	// directly or not (e.g. ristretto, which badger imports).
	externalDeps bool
	extra        []string // more allowed import paths, exact
}

// kernelBans are the standard packages that would let the kernel reach the
// outside world or nondeterminism. See docs/ARCHITECTURE.md.
var kernelBans = []string{"os", "net", "math/rand", "syscall", "unsafe", "plugin", "runtime/cgo"}

// rules is the import table of docs/ARCHITECTURE.md.
var rules = []rule{
	{pkg: "abi", std: true},
	{pkg: "abi/guest", std: true, module: []string{"abi"}},
	{pkg: "store/internal/gate", std: true},
	{pkg: "store", std: true, module: []string{"abi", "store/internal/gate"}, external: []string{"github.com/dgraph-io/badger/v4", "github.com/google/btree"}, externalDeps: true},
	{pkg: "store/postgres", std: true, module: []string{"store", "store/internal/gate"}, external: []string{"github.com/jackc/pgx/v5"}, externalDeps: true},
	{pkg: "host", std: true, module: []string{"abi"}, external: []string{"github.com/tetratelabs/wazero"}},
	{pkg: "kernel", std: true, banned: kernelBans, module: []string{"abi", "store"}},
	// The harness may also use testing and testify's require (STYLE.md 22),
	// which its helpers call on the caller's *testing.T.
	{
		pkg: "kernel/kerneltest", std: true, banned: kernelBans, module: []string{"kernel", "abi", "store"},
		extra: []string{"testing"}, external: []string{"github.com/stretchr/testify"},
	},
	{pkg: "genesis", std: true, module: []string{"kernel", "abi", "store", "contracts-wasm"}},
	{pkg: "contracts-wasm", std: true},
	// The rights registry is a Go guest (an executable) built for wasip1.
	{pkg: "contracts-wasm/rights", std: true, module: []string{"abi", "abi/guest"}},
}

// pkgInfo is the part of `go list -json` this test reads.
type pkgInfo struct {
	ImportPath string
	Standard   bool
	DepOnly    bool
	Imports    []string
}

// goList lists every package of the module and its dependencies, for the
// host platform and for wasip1/wasm (abi/guest and guest sources build only
// there), merging the imports of both.
func goList(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "go test puts the go command on PATH")
	pkgs := map[string]*pkgInfo{}
	for _, env := range [][]string{nil, {"GOOS=wasip1", "GOARCH=wasm"}} {
		cmd := exec.Command(goBin, "list", "-e", "-deps", "-json=ImportPath,Standard,DepOnly,Imports", module+"/...")
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "go list %v: %s", env, stderr.String())
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p pkgInfo
			if err := dec.Decode(&p); errors.Is(err, io.EOF) {
				break
			} else {
				require.NoError(t, err)
			}
			if q, ok := pkgs[p.ImportPath]; ok {
				q.DepOnly = q.DepOnly && p.DepOnly
				for _, imp := range p.Imports {
					if !slices.Contains(q.Imports, imp) {
						q.Imports = append(q.Imports, imp)
					}
				}
				continue
			}
			pkgs[p.ImportPath] = &p
		}
	}
	return pkgs
}

// under reports whether path is root or inside it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// ruleFor returns the rule with the longest pkg covering rel, or nil.
func ruleFor(rel string) *rule {
	var best *rule
	for i := range rules {
		if under(rel, rules[i].pkg) && (best == nil || len(rules[i].pkg) > len(best.pkg)) {
			best = &rules[i]
		}
	}
	return best
}

// TestForbiddenImports checks the direct imports of every package of the
// module that a rule covers. A package nobody has written yet is skipped.
func TestForbiddenImports(t *testing.T) {
	pkgs := goList(t)
	for i := range rules {
		r := &rules[i]
		t.Run(r.pkg, func(t *testing.T) {
			var own []*pkgInfo
			for path, p := range pkgs {
				rel, ok := strings.CutPrefix(path, module+"/")
				if ok && !p.DepOnly && ruleFor(rel) == r {
					own = append(own, p)
				}
			}
			if len(own) == 0 {
				t.Skipf("no package %s yet", r.pkg)
			}
			deps := map[string]bool{}
			if r.externalDeps {
				for _, ext := range r.external {
					for path := range pkgs {
						if under(path, ext) {
							collectDeps(pkgs, path, deps)
						}
					}
				}
			}
			for _, p := range own {
				for _, imp := range p.Imports {
					if err := r.check(pkgs, deps, p.ImportPath, imp); err != "" {
						t.Errorf("%s imports %s: %s (docs/ARCHITECTURE.md, package map)", p.ImportPath, imp, err)
					}
				}
			}
		})
	}
}

// collectDeps adds path and everything it imports, transitively, to deps.
func collectDeps(pkgs map[string]*pkgInfo, path string, deps map[string]bool) {
	if deps[path] {
		return
	}
	deps[path] = true
	if p, ok := pkgs[path]; ok {
		for _, imp := range p.Imports {
			collectDeps(pkgs, imp, deps)
		}
	}
}

// check returns why from may not import imp, or "" if it may.
func (r rule) check(pkgs map[string]*pkgInfo, deps map[string]bool, from, imp string) string {
	if slices.Contains(r.extra, imp) {
		return ""
	}
	if p, ok := pkgs[imp]; ok && p.Standard {
		for _, b := range r.banned {
			if under(imp, b) {
				return "banned in " + r.pkg
			}
		}
		if r.std {
			return ""
		}
		return "no standard library in " + r.pkg
	}
	if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
		if under(rel, r.pkg) || slices.Contains(r.module, rel) {
			return ""
		}
		return "not among " + r.pkg + "'s allowed packages " + strconv.Quote(strings.Join(r.module, ", "))
	}
	for _, ext := range r.external {
		if under(imp, ext) {
			return ""
		}
	}
	if r.externalDeps && deps[imp] {
		return ""
	}
	return "external package not allowed in " + r.pkg
}

// TestNoTimeNowInKernel fails on any reading of the wall clock (time.Now,
// time.Since, time.Until, as calls or as function values) in the non-test
// code under kernel/: the kernel gets time from its injected Clock, so that
// the same inputs give the same decision. It parses the code rather than
// grepping, so comments may mention time.Now and an import alias cannot hide
// a call.
func TestNoTimeNowInKernel(t *testing.T) {
	root := filepath.Join("..", "..", "kernel")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		t.Skip("no kernel/ yet")
	}
	found, files, err := clockReads(root)
	require.NoError(t, err)
	if files == 0 {
		t.Skip("no non-test Go files under kernel/ yet")
	}
	for _, f := range found {
		t.Error(f)
	}
}

// clockReads returns the wall-clock reads in the non-test Go files under
// root, and how many files it looked at. Files that do not parse are left to
// the compiler.
func clockReads(root string) (found []string, files int, err error) {
	banned := []string{"Now", "Since", "Until"}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil //nolint:nilerr // a syntax error is the compiler's to report
		}
		var names []string // local names of package time in f
		for _, imp := range f.Imports {
			if imp.Path.Value != `"time"` {
				continue
			}
			switch {
			case imp.Name == nil:
				names = append(names, "time")
			case imp.Name.Name == ".":
				found = append(found, fmt.Sprintf("%s: dot import of time hides clock reads", fset.Position(imp.Pos())))
			case imp.Name.Name != "_":
				names = append(names, imp.Name.Name)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && slices.Contains(names, x.Name) && slices.Contains(banned, sel.Sel.Name) {
				found = append(found, fmt.Sprintf("%s: %s.%s reads the wall clock; use the kernel's Clock", fset.Position(sel.Pos()), x.Name, sel.Sel.Name))
			}
			return true
		})
		return nil
	})
	return found, files, err
}

// TestClockReads checks the checker on a made-up kernel.
func TestClockReads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	write("ok.go", "package k\n\nimport \"time\"\n\n// Never time.Now() here.\nvar d = time.Second\n")
	write("now.go", "package k\n\nimport \"time\"\n\nfunc f() time.Time { return time.Now() }\n")
	write("sub/alias.go", "package sub\n\nimport clock \"time\"\n\nvar since = clock.Since\n")
	write("dot.go", "package k\n\nimport . \"time\"\n\nvar _ = Second\n")
	write("now_test.go", "package k\n\nimport \"time\"\n\nvar _ = time.Now()\n")
	write("testdata/x.go", "package x\n\nimport \"time\"\n\nvar _ = time.Now()\n")
	found, files, err := clockReads(dir)
	require.NoError(t, err)
	require.Equal(t, 4, files)
	require.Len(t, found, 3, "%q", found)
	joined := strings.Join(found, "\n")
	require.Contains(t, joined, "now.go:5:29: time.Now")
	require.Contains(t, joined, "alias.go:5:13: clock.Since")
	require.Contains(t, joined, "dot.go:3:8: dot import")
}

// TestRules checks the import rules on made-up imports.
func TestRules(t *testing.T) {
	pkgs := map[string]*pkgInfo{
		"os":                                  {ImportPath: "os", Standard: true},
		"os/exec":                             {ImportPath: "os/exec", Standard: true},
		"net/http":                            {ImportPath: "net/http", Standard: true},
		"math/rand/v2":                        {ImportPath: "math/rand/v2", Standard: true},
		"fmt":                                 {ImportPath: "fmt", Standard: true},
		"testing":                             {ImportPath: "testing", Standard: true},
		"github.com/dgraph-io/badger/v4":      {ImportPath: "github.com/dgraph-io/badger/v4", Imports: []string{"github.com/dgraph-io/ristretto/v2/z"}},
		"github.com/dgraph-io/ristretto/v2/z": {ImportPath: "github.com/dgraph-io/ristretto/v2/z"},
	}
	deps := map[string]bool{}
	collectDeps(pkgs, "github.com/dgraph-io/badger/v4", deps)
	tests := []struct {
		name, from, imp string
		ok              bool
	}{
		{name: "abi fmt", from: "abi", imp: "fmt", ok: true},
		{name: "abi badger", from: "abi", imp: "github.com/dgraph-io/badger/v4"},
		{name: "guest abi", from: "abi/guest", imp: module + "/abi", ok: true},
		{name: "store badger", from: "store", imp: "github.com/dgraph-io/badger/v4", ok: true},
		{name: "store ristretto", from: "store", imp: "github.com/dgraph-io/ristretto/v2/z", ok: true},
		{name: "store kernel", from: "store", imp: module + "/kernel"},
		{name: "host wazero", from: "host", imp: "github.com/tetratelabs/wazero/api", ok: true},
		{name: "host store", from: "host", imp: module + "/store"},
		{name: "kernel store", from: "kernel", imp: module + "/store", ok: true},
		{name: "kernel sub", from: "kernel/ledger", imp: module + "/kernel", ok: true},
		{name: "kernel host", from: "kernel", imp: module + "/host"},
		{name: "kernel wazero", from: "kernel", imp: "github.com/tetratelabs/wazero"},
		{name: "kernel os", from: "kernel", imp: "os"},
		{name: "kernel os/exec", from: "kernel/x", imp: "os/exec"},
		{name: "kernel net/http", from: "kernel", imp: "net/http"},
		{name: "kernel math/rand/v2", from: "kernel", imp: "math/rand/v2"},
		{name: "kernel testing", from: "kernel", imp: "testing", ok: true},
		{name: "kerneltest testing", from: "kernel/kerneltest", imp: "testing", ok: true},
		{name: "kerneltest os", from: "kernel/kerneltest", imp: "os"},
		{name: "kerneltest kernel", from: "kernel/kerneltest", imp: module + "/kernel", ok: true},
		{name: "genesis contracts", from: "genesis", imp: module + "/contracts-wasm", ok: true},
		{name: "genesis host", from: "genesis", imp: module + "/host"},
		{name: "contracts abi", from: "contracts-wasm", imp: module + "/abi"},
		{name: "rights guest", from: "contracts-wasm/rights", imp: module + "/abi/guest", ok: true},
		{name: "rights abi", from: "contracts-wasm/rights", imp: module + "/abi", ok: true},
		{name: "rights kernel", from: "contracts-wasm/rights", imp: module + "/kernel"},
		{name: "rights fmt", from: "contracts-wasm/rights", imp: "fmt", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ruleFor(tc.from)
			require.NotNil(t, r)
			why := r.check(pkgs, deps, module+"/"+tc.from, tc.imp)
			if tc.ok {
				require.Empty(t, why)
			} else {
				require.NotEmpty(t, why)
			}
		})
	}
}
