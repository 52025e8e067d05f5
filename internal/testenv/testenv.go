// Package testenv holds helpers shared by the tests of several packages.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
)

// CacheDir returns a wazero compilation cache directory shared by every test
// process on this machine and user, creating it if needed. Go guests of a few
// MB take seconds to compile (tens of seconds under the race detector); with
// the cache each compiles once per machine and wazero version. wazero keys
// its cache by version and writes entries atomically, so concurrent test
// binaries may share it. It returns "" (no cache) if the directory cannot be
// made.
func CacheDir() string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("kernelhost-test-wazero-cache-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}
