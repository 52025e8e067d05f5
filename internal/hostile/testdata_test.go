package hostile_test

import (
	"testing"

	"github.com/kernelhost/kernelhost/internal/testenv"
)

// TestTestdataReproducible rebuilds every testdata/*.wat with wat2wasm and
// compares the result with the committed .wasm. It skips without wabt unless
// KERNELHOST_REQUIRE_TOOLCHAIN=1.
func TestTestdataReproducible(t *testing.T) {
	testenv.CheckWATs(t, "testdata", nil, "run make testdata")
}
