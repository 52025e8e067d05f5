// Package testenv holds helpers shared by the tests of several packages.
package testenv

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// CacheDir returns a wazero compilation cache directory shared by every test
// process on this machine and user that runs the same wazero version,
// creating it if needed: <CacheRoot>/<version>. Go guests of a few MB take
// seconds to compile (tens of seconds under the race detector); with the
// cache each compiles once per machine and wazero version. wazero keys its
// cache by version and writes entries atomically, so concurrent test
// binaries may share it. It returns "" (no cache) if the directory cannot
// be made.
//
// The directory is one per wazero version as this process reports it
// (wazeroVersion): a test binary of a library package says "dev", one of a
// main package that imports wazero (cmd/kernelhost) and any built binary
// say the module's version. A host removes the cache directories of other
// wazero versions that sat idle for ten minutes (host/cache.go), so two
// versions sharing one directory removed each other's caches, and every
// test process that came next compiled its modules again.
func CacheDir() string {
	return cacheDir(wazeroVersion())
}

// BinaryCacheDir is CacheDir for the Go binary at path, which a test built
// and runs: the directory of the wazero version in the binary's build info,
// the one it will name its cache by (a built kernelhost says the module's
// version, where the test process itself may say "dev"). Pass it to the
// child, e.g. as $KERNELHOST_WAZERO_CACHE. It returns "" if path has no
// build info.
func BinaryCacheDir(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	return cacheDir(versionOf(info))
}

func cacheDir(version string) string {
	dir := filepath.Join(CacheRoot(), version)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}

// CacheRootEnv names the environment variable that sets CacheRoot.
const CacheRootEnv = "KERNELHOST_TEST_CACHE"

// CacheRoot is the directory of the tests' shared compilation caches, one
// per wazero version: $KERNELHOST_TEST_CACHE when set, else
// kernelhost/test-wazero-cache in the user's cache directory
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux), else, without
// one, a directory per user in os.TempDir(). It is not in the temporary
// directory when it can be anywhere else: `make test` gives the tests a
// temporary directory of their own and removes it at the end, and the
// cache, about 170 MB once every Go guest is compiled, is what makes the
// next run fast. Its size is bounded by the hosts that use it
// (host.Config.MaxCacheDirBytes, 1 GiB by default), which also remove the directories of
// wazero versions idle for ten minutes (host/cache.go); deleting it costs
// only the next run's compilations.
func CacheRoot() string {
	if dir := os.Getenv(CacheRootEnv); dir != "" {
		return dir
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "kernelhost", "test-wazero-cache")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("kernelhost-test-wazero-cache-%d", os.Getuid()))
}

// wazeroVersion is the version wazero v1.11 names its cache by in this
// process (internal/version of wazero): its module's version in the build
// info, else the main module's, else "dev". Unlike wazero it maps any
// character outside [A-Za-z0-9.+-] to '_', as the result names a directory.
func wazeroVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(info)
}

// versionOf is wazeroVersion for the build info info (nil: none).
func versionOf(info *debug.BuildInfo) string {
	v := ""
	if info != nil {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '+', r == '-':
			return r
		}
		return '_'
	}, v)
}

// ExitIfWarming is the -warm step of a test binary's TestMain (make
// test-warm), called after flag.Parse: when warm is set it runs fill, which
// compiles modules into the shared compilation cache, and exits the process
// (status 1, the error on stderr, when fill fails); otherwise it returns and
// the tests run.
func ExitIfWarming(warm bool, fill func() error) {
	if !warm {
		return
	}
	if err := fill(); err != nil {
		fmt.Fprintln(os.Stderr, "warm:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
