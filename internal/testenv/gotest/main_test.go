package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSummarize replays go test -json of four packages (testdata/mixed.json,
// recorded with go1.26): b does not build, p has a passing, a skipped and a
// failing test (one subtest passes, one fails), q passes with a skipped
// subtest, r has no test files.
func TestSummarize(t *testing.T) {
	in, err := os.Open("testdata/mixed.json")
	require.NoError(t, err)
	defer in.Close()
	var out strings.Builder
	sum := summarize(in, &out)
	require.True(t, sum.failed)
	require.Equal(t, []string{"x/p.TestSkip", "x/q.TestQ/skipped"}, sum.skipped)
	require.Equal(t, "skipped: 2 tests (x/p.TestSkip, x/q.TestQ/skipped)", sum.line())
	require.Equal(t, `# github.com/kernelhost/kernelhost/x/b [github.com/kernelhost/kernelhost/x/b.test]
b/b_test.go:5:28: undefined: undefined
FAIL	github.com/kernelhost/kernelhost/x/b [build failed]
=== RUN   TestFail
=== RUN   TestFail/bad
    p_test.go:9: boom
--- FAIL: TestFail/bad (0.00s)
--- FAIL: TestFail (0.00s)
FAIL
FAIL	github.com/kernelhost/kernelhost/x/p	0.048s
ok  	github.com/kernelhost/kernelhost/x/q	0.030s
?   	github.com/kernelhost/kernelhost/x/r	[no test files]
`, out.String(), "passing tests' output and the verbose PASS lines are left out")
}

// TestSummarize_status: only failures count as failed; skips do not.
func TestSummarize_status(t *testing.T) {
	const pkg = `"Package":"github.com/kernelhost/kernelhost/host"`
	for _, tc := range []struct {
		name    string
		in      string
		failed  bool
		skipped int
		out     string
	}{
		{"all pass", `{"Action":"output",` + pkg + `,"Output":"ok  \thost\t1s\n"}
{"Action":"pass",` + pkg + `}`, false, 0, "ok  \thost\t1s\n"},
		{"a skip passes", `{"Action":"skip",` + pkg + `,"Test":"TestEvaluate_allocs"}
{"Action":"pass",` + pkg + `}`, false, 1, ""},
		{"a failing package fails", `{"Action":"fail",` + pkg + `}`, true, 0, ""},
		{"a build failure fails", `{"Action":"build-fail","ImportPath":"host"}`, true, 0, ""},
		{"a package that never ends fails", `{"Action":"output",` + pkg + `,"Test":"TestHang","Output":"panic: test timed out\n"}`, true, 0, "panic: test timed out\n"},
		{"a line that is not JSON is copied", "go: downloading x", false, 0, "go: downloading x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			sum := summarize(strings.NewReader(tc.in), &out)
			require.Equal(t, tc.failed, sum.failed)
			require.Len(t, sum.skipped, tc.skipped)
			require.Equal(t, tc.out, out.String())
		})
	}
	require.Equal(t, "skipped: 0 tests", summary{}.line())
	require.Equal(t, "skipped: 1 test (host.TestX)", summary{skipped: []string{"host.TestX"}}.line())
}
