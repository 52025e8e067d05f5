package contracts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
)

// pinnedClangMajor is the clang major version the committed .wasm were built
// with. Another major version emits different code, so a rebuild with it
// cannot be compared byte for byte.
const pinnedClangMajor = "14"

// requireToolchain reports whether a missing or different toolchain must fail
// the test instead of skipping it (CI sets it after installing clang and lld).
func requireToolchain() bool { return os.Getenv("KERNELHOST_REQUIRE_TOOLCHAIN") == "1" }

// skipOrFail skips the test with msg, or fails it when the toolchain is required.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if requireToolchain() {
		t.Fatalf("%s (KERNELHOST_REQUIRE_TOOLCHAIN=1)", msg)
	}
	t.Skipf("%s; set KERNELHOST_REQUIRE_TOOLCHAIN=1 to make this a failure", msg)
}

// TestContractsReproducible rebuilds every contract with this directory's
// Makefile, in a temporary copy of contracts-wasm and abi/kernelhost.h, and
// requires the result to equal the committed modules byte for byte.
func TestContractsReproducible(t *testing.T) {
	for _, tool := range []string{"clang", "wasm-ld", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not found: install clang, lld and make (apt-get install -y clang lld make) to rebuild the contracts")
		}
	}
	out, err := exec.Command("clang", "--version").CombinedOutput()
	require.NoError(t, err, "clang --version: %s", out)
	m := regexp.MustCompile(`clang version (\d+)\.`).FindSubmatch(out)
	if m == nil || string(m[1]) != pinnedClangMajor {
		skipOrFail(t, "clang "+pinnedClangMajor+" built the committed contracts; found: "+firstLine(out))
	}

	root := t.TempDir()
	src, dst := ".", filepath.Join(root, "contracts-wasm")
	copyFiles(t, src, dst, "Makefile")
	copyFiles(t, filepath.Join(src, "src"), filepath.Join(dst, "src"), names(".c")...)
	copyFiles(t, filepath.Join("..", "abi"), filepath.Join(root, "abi"), "kernelhost.h")

	cmd := exec.Command("make", "-C", dst)
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "make: %s", out)

	for name, committed := range contracts.Genesis() {
		t.Run(name, func(t *testing.T) {
			rebuilt, err := os.ReadFile(filepath.Join(dst, name+".wasm"))
			require.NoError(t, err)
			require.True(t, string(committed) == string(rebuilt),
				"%s.wasm differs from a rebuild (%d vs %d bytes): run `make contracts` and commit the result", name, len(committed), len(rebuilt))
		})
	}
}

// names returns the genesis contract names with suffix appended.
func names(suffix string) []string {
	var out []string
	for name := range contracts.Genesis() {
		out = append(out, name+suffix)
	}
	return out
}

func copyFiles(t *testing.T, from, to string, files ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o755))
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, f), b, 0o644))
	}
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
