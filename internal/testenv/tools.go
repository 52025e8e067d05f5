package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// RequireToolchainEnv, set to 1 (CI does), turns a missing build tool from
// a skip into a failure, so that reproducibility checks always run in CI.
const RequireToolchainEnv = "KERNELHOST_REQUIRE_TOOLCHAIN"

// Tool returns the path of the build tool name (wat2wasm, clang, ...). When
// it is missing the test is skipped with install as the remedy, or fails
// when $KERNELHOST_REQUIRE_TOOLCHAIN is 1.
func Tool(tb testing.TB, name, install string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	SkipOrFail(tb, name+" not found: "+install)
	return ""
}

// SkipOrFail skips the test with msg, the reason a needed tool or Go
// version is missing, or fails it when $KERNELHOST_REQUIRE_TOOLCHAIN is 1,
// as CI sets it: there a skip would hide a check that must run.
func SkipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv(RequireToolchainEnv) == "1" {
		tb.Fatalf("%s (%s=1 makes this a failure)", msg, RequireToolchainEnv)
		return
	}
	tb.Skipf("%s (set %s=1 to make this a failure)", msg, RequireToolchainEnv)
}

// CheckWATs rebuilds every *.wat in dir with wat2wasm (extra flags per
// module name in flags, as the directory's Makefile passes them) and
// requires each result to equal the committed .wasm beside it; remedy says
// how to rebuild them.
func CheckWATs(t *testing.T, dir string, flags map[string][]string, remedy string) {
	t.Helper()
	tool := Tool(t, "wat2wasm", "install wabt (make tools)")
	wats, err := filepath.Glob(filepath.Join(dir, "*.wat"))
	require.NoError(t, err)
	require.NotEmpty(t, wats, "no .wat files in %s", dir)
	out := t.TempDir()
	for _, wat := range wats {
		name := strings.TrimSuffix(filepath.Base(wat), ".wat")
		t.Run(name, func(t *testing.T) {
			built := filepath.Join(out, name+".wasm")
			args := append(append([]string{}, flags[name]...), "-o", built, wat)
			b, err := exec.Command(tool, args...).CombinedOutput()
			require.NoError(t, err, "%s", b)
			got, err := os.ReadFile(built)
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
			require.NoError(t, err)
			require.Equal(t, want, got, "%s/%s.wasm is stale: %s", dir, name, remedy)
		})
	}
}
