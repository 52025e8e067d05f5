// Command gotest runs `go test -json` with its arguments and prints what
// plain `go test` prints (a line per package; the output of failing tests
// only), then one line naming every skipped test:
//
//	skipped: 2 tests (host.TestEvaluate_allocs, examples/http-agent.TestServe)
//
// `make test` runs the suite through it, so that a skip (a missing tool, a
// race-detector build, -short) is seen instead of passing silently. It exits
// with go test's status, or 1 if go test reported a failure and still exited
// 0, so that a failing test fails `make test`.
//
//	go run ./internal/testenv/gotest -race -count=1 ./...
//
// $GO names the go command (default "go").
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	sum := summarize(out, w)
	fmt.Fprintln(w, sum.line())
	_ = w.Flush()
	code := 0
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintln(os.Stderr, "gotest:", err)
			os.Exit(2)
		}
		code = exit.ExitCode()
	}
	if code == 0 && sum.failed {
		code = 1
	}
	os.Exit(code)
}

// modulePath is trimmed from package paths in the skip list.
const modulePath = "github.com/kernelhost/kernelhost"

// event is one line of `go test -json` (cmd/test2json), with the fields this
// command reads.
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output, build-fail
}

// line is one output line of a package: of test, or of the package when
// test is "".
type line struct{ test, text string }

// pkgState is what a package has printed so far and how its tests ended.
type pkgState struct {
	lines  []line
	result map[string]string // test -> pass, fail or skip
}

// summary is what summarize found.
type summary struct {
	skipped []string // "pkg.Test/sub", sorted
	failed  bool     // a test, a package or a build failed
}

// line is the one-line skip report.
func (s summary) line() string {
	if len(s.skipped) == 0 {
		return "skipped: 0 tests"
	}
	noun := "tests"
	if len(s.skipped) == 1 {
		noun = "test"
	}
	return fmt.Sprintf("skipped: %d %s (%s)", len(s.skipped), noun, strings.Join(s.skipped, ", "))
}

// summarize reads go test -json from r and writes to w what go test without
// -json prints: build errors, each package's own lines (ok, FAIL, "no test
// files") and, for a package that failed, the output of its failing or
// unfinished tests, in the order printed. Lines that are not JSON are
// copied as they are.
func summarize(r io.Reader, w io.Writer) summary {
	var sum summary
	pkgs := map[string]*pkgState{}
	state := func(p string) *pkgState {
		s := pkgs[p]
		if s == nil {
			s = &pkgState{result: map[string]string{}}
			pkgs[p] = s
		}
		return s
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text())
			continue
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			sum.failed = true
		case "output":
			s := state(e.Package)
			s.lines = append(s.lines, line{e.Test, e.Output})
		case "pass", "fail", "skip":
			s := state(e.Package)
			if e.Test != "" {
				s.result[e.Test] = e.Action
				if e.Action == "skip" {
					sum.skipped = append(sum.skipped, shortPkg(e.Package)+"."+e.Test)
				}
				continue
			}
			failed := e.Action == "fail"
			sum.failed = sum.failed || failed
			flush(w, s, failed)
			delete(pkgs, e.Package)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(w, "gotest: reading go test output:", err)
		sum.failed = true
	}
	// Packages that never ended (go test was killed): show everything.
	for _, p := range slices.Sorted(maps.Keys(pkgs)) {
		sum.failed = true
		flush(w, pkgs[p], true)
	}
	slices.Sort(sum.skipped)
	return sum
}

// flush prints a finished package: its own lines, and when it failed the
// lines of tests that failed or never finished, as go test -v prints them
// (=== RUN markers included, so that each line's test is plain).
func flush(w io.Writer, s *pkgState, failed bool) {
	for _, l := range s.lines {
		switch {
		case l.test == "":
			if l.text == "PASS\n" {
				continue // plain go test prints only the ok line
			}
		case !failed:
			continue
		default:
			if res := s.result[l.test]; res == "pass" || res == "skip" {
				continue
			}
		}
		fmt.Fprint(w, l.text)
	}
}

// shortPkg is p relative to the module, "." for the module root.
func shortPkg(p string) string {
	if p == modulePath {
		return "."
	}
	return strings.TrimPrefix(p, modulePath+"/")
}
