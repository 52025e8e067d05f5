package testenv

import (
	"context"

	"github.com/tetratelabs/wazero"
)

// RuntimeConfig is wazero's default runtime configuration (the compiler)
// with the compilation cache in CacheDir, for tests that run a module in a
// plain wazero runtime instead of the host: such a test compiles a Go guest
// of a few MB once per machine instead of once per runtime (tens of seconds
// each under the race detector). Compiled code is the same with or without
// the cache; only where it comes from differs. Without a cache directory it
// is the plain default.
func RuntimeConfig() wazero.RuntimeConfig {
	cfg := wazero.NewRuntimeConfig()
	if dir := CacheDir(); dir != "" {
		if cache, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
			cfg = cfg.WithCompilationCache(cache)
		}
	}
	return cfg
}

// NewRuntime is wazero.NewRuntime with RuntimeConfig.
func NewRuntime(ctx context.Context) wazero.Runtime {
	return wazero.NewRuntimeWithConfig(ctx, RuntimeConfig())
}
