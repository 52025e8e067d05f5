package testenv

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCacheDirPerVersion: the shared cache is one directory per wazero
// version as the process reports it (a library package's test binary says
// "dev"), and built binaries get one of their own, so that no host removes
// another version's cache as stale.
func TestCacheDirPerVersion(t *testing.T) {
	require.Equal(t, "dev", wazeroVersion(), "a library package's test binary has no dependencies in its build info")
	dir := CacheDir()
	require.Equal(t, "dev", filepath.Base(dir))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.True(t, fi.IsDir())

	// A binary's directory follows its own build info: this test binary's
	// is this process's.
	self, err := os.Executable()
	require.NoError(t, err)
	require.Equal(t, dir, BinaryCacheDir(self))
	require.Empty(t, BinaryCacheDir(filepath.Join(t.TempDir(), "missing")))

	// A binary that lists wazero among its dependencies names the cache by
	// that version; characters that cannot name a directory are replaced.
	deps := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: []*debug.Module{
		{Path: "github.com/spf13/cobra", Version: "v1.10.2"},
		{Path: "github.com/tetratelabs/wazero", Version: "v1.11.0"},
	}}
	require.Equal(t, "v1.11.0", versionOf(deps))
	deps.Deps[1].Version = "v0.0.0-2025/x"
	require.Equal(t, "v0.0.0-2025_x", versionOf(deps))
	require.Equal(t, "dev", versionOf(nil))
	require.Equal(t, "dev", versionOf(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}))
}
