package contracts_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/internal/testenv"
)

// rightsBuiltWith is the Go release that built the committed
// rights/rights.wasm; another release emits other bytes.
const rightsBuiltWith = "go1.26.8"

// rightsBuildArgs is the documented build command of the rights registry,
// minus the output path (rights/main.go, the Makefile's contracts target).
var rightsBuildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid="}

// TestRightsRegistryReproducible rebuilds the rights registry with the
// documented command and requires the committed module byte for byte.
func TestRightsRegistryReproducible(t *testing.T) {
	if runtime.Version() != rightsBuiltWith {
		skipOrFail(t, "rights/rights.wasm was built with "+rightsBuiltWith+"; this test runs "+runtime.Version())
	}
	out := filepath.Join(t.TempDir(), "rights.wasm")
	cmd := exec.Command("go", append(rightsBuildArgs, "-o", out, ".")...)
	cmd.Dir = "rights"
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", msg)
	rebuilt, err := os.ReadFile(out)
	require.NoError(t, err)
	committed := contracts.RightsRegistry()
	require.True(t, bytes.Equal(committed, rebuilt),
		"rights/rights.wasm differs from a rebuild (%d vs %d bytes): run `make contracts` and commit the result",
		len(committed), len(rebuilt))
}

// goWASI are the WASI functions a standard Go guest may import (SPEC
// section 1; the host refuses the others, e.g. fd_read).
var goWASI = []string{
	"args_get", "args_sizes_get", "clock_time_get", "environ_get", "environ_sizes_get",
	"fd_close", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_prestat_dir_name", "fd_prestat_get",
	"fd_write", "poll_oneoff", "proc_exit", "random_get", "sched_yield",
}

// TestRightsRegistryShape checks the module's exports and imports: an
// executable (kh_invoke) whose only kernel imports are the host API's.
func TestRightsRegistryShape(t *testing.T) {
	ctx := context.Background()
	// The shared compilation cache: the registry (3.4 MB) compiles once per
	// machine, not once per run (tens of seconds under -race).
	r := testenv.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, contracts.RightsRegistry())
	require.NoError(t, err)
	exports := cm.ExportedFunctions()
	for _, name := range []string{"kh_abi_version", "kh_alloc", "kh_invoke", "_initialize"} {
		require.Contains(t, exports, name)
	}
	var kernel []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case "kernel":
			kernel = append(kernel, name)
		case "wasi_snapshot_preview1":
			require.Contains(t, goWASI, name, "the host refuses this WASI import")
		default:
			t.Errorf("unexpected import module %q (%s)", mod, name)
		}
	}
	sort.Strings(kernel)
	require.Equal(t, []string{"call", "result"}, kernel)
	// A fresh copy per call.
	a, b := contracts.RightsRegistry(), contracts.RightsRegistry()
	a[0] ^= 0xff
	require.NotEqual(t, a[0], b[0])
}
