package hostile_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTestdataReproducible rebuilds every testdata/*.wat with wat2wasm and
// compares the result with the committed .wasm. It skips without wabt unless
// KERNELHOST_REQUIRE_TOOLCHAIN=1.
func TestTestdataReproducible(t *testing.T) {
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("KERNELHOST_REQUIRE_TOOLCHAIN") == "1" {
			t.Fatal("wat2wasm (wabt) not found and KERNELHOST_REQUIRE_TOOLCHAIN=1: install wabt")
		}
		t.Skip("wat2wasm (wabt) not found: install wabt (make tools) to check testdata/*.wasm against their .wat")
	}
	wats, err := filepath.Glob(filepath.Join("testdata", "*.wat"))
	require.NoError(t, err)
	require.NotEmpty(t, wats)
	dir := t.TempDir()
	for _, wat := range wats {
		name := strings.TrimSuffix(filepath.Base(wat), ".wat")
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name+".wasm")
			b, err := exec.Command(tool, "-o", out, wat).CombinedOutput()
			require.NoError(t, err, "%s", b)
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Equal(t, readModule(t, name), got, "testdata/%s.wasm is stale: run make testdata", name)
		})
	}
}
