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

// TestCacheRootOutsideTempDir: the shared cache outlives the temporary
// directory that `make test` gives each run and removes: it is in the
// user's cache directory, or where $KERNELHOST_TEST_CACHE says, never
// under $TMPDIR when a cache directory exists.
func TestCacheRootOutsideTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv(CacheRootEnv, "")
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	require.Equal(t, filepath.Join(home, "kernelhost", "test-wazero-cache"), CacheRoot())
	require.Equal(t, filepath.Join(home, "kernelhost", "test-wazero-cache", "dev"), CacheDir())

	set := filepath.Join(t.TempDir(), "cache")
	t.Setenv(CacheRootEnv, set)
	require.Equal(t, set, CacheRoot())
	require.Equal(t, filepath.Join(set, "dev"), CacheDir())
	fi, err := os.Stat(filepath.Join(set, "dev"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())

	// Without a user cache directory ($XDG_CACHE_HOME and $HOME unset):
	// one per user in the temporary directory.
	t.Setenv(CacheRootEnv, "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	require.Equal(t, tmp, filepath.Dir(CacheRoot()))
}
