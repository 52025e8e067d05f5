package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCacheDirPerVersion: the shared cache is one directory per wazero
// version as the process reports it (a library package's test binary says
// "dev"), and built binaries get one of their own, so that no host removes
// another version's cache as stale.
func TestCacheDirPerVersion(t *testing.T) {
	require.Equal(t, "dev", wazeroVersion(), "a library package's test binary has no dependencies in its build info")
	dir, bin := CacheDir(), BinaryCacheDir()
	require.Equal(t, "dev", filepath.Base(dir))
	require.Equal(t, "bin", filepath.Base(bin))
	require.Equal(t, filepath.Dir(dir), filepath.Dir(bin))
	for _, d := range []string{dir, bin} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		require.True(t, fi.IsDir())
	}
}
