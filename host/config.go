package host

import (
	"errors"

	"fmt"
	"github.com/kernelhost/kernelhost/host/internal/fuel"
	"runtime"
	"time"
)

// Defaults of Config. See DefaultConfig.
const (
	DefaultTimeout               = 100 * time.Millisecond
	DefaultInvokeTimeout         = time.Second
	DefaultCheckFuel             = 50_000_000    // ~50ms of simple instructions; the C freeware check uses 403-771
	DefaultInvokeFuel            = 1_000_000_000 // ~1s
	DefaultInitFuel              = 10_000_000    // a Go guest's _initialize uses ~1M
	DefaultInitTimeout           = time.Second
	DefaultMemoryLimitBytes      = 64 << 20
	DefaultMaxModuleBytes        = 8 << 20
	DefaultMaxFunctions          = 50_000
	DefaultMaxGlobals            = 1_000
	DefaultMaxTableEntries       = 50_000
	DefaultMaxInitialMemoryPages = 256 // 16 MiB; a standard Go wasip1 guest declares ~40
	DefaultMaxModules            = 1024
	DefaultMaxCodeBytes          = 1 << 30
	DefaultMaxPoolBytes          = 1 << 30
	DefaultMaxCacheDirBytes      = 1 << 30
	pageSize                     = 65536
)

// Config configures a Host. The zero value of every field means its default,
// so Config{} is valid; DefaultConfig returns the defaults spelled out.
type Config struct {
	// Usually changed.

	// CacheDir is the directory of wazero's on-disk compilation cache, shared
	// by every Host that names it. Empty means compile in memory only.
	CacheDir string
	// Timeout is the default deadline of one check. A call's abi.Limits.Timeout may shorten
	// it, never lengthen it. Default 100ms.
	Timeout time.Duration
	// InvokeTimeout is the default deadline of one executable run
	// (kh_invoke, host calls included). A call's abi.Limits.Timeout may
	// shorten it. Default 1s.
	InvokeTimeout time.Duration
	// MemoryLimitBytes caps the memory of every instance: its linear memory
	// plus 8 bytes per table element. memory.grow and table.grow past it
	// return -1, during the call (host/internal/fuel checks every growth).
	// A call's abi.Limits.MemoryBytes caps it further, also during the
	// call. Default 64 MiB.
	MemoryLimitBytes uint64

	// DisableMetering turns deterministic fuel metering off. With metering
	// (the default) every module is instrumented at deploy time
	// (host/internal/fuel, COSTS.md there) and each call runs on a fuel
	// budget: a runaway guest stops with ErrOutOfFuel at the same point on
	// every machine, and no call needs a timer or wazero's per-call context
	// goroutine (WithCloseOnContextDone), which costs ~1µs a call. Without
	// metering, deadlines (Timeout, InvokeTimeout, InitTimeout) interrupt
	// guests instead, and abi.Limits.Fuel is ignored.
	DisableMetering bool
	// CheckFuel is the default fuel budget of one check; abi.Limits.Fuel may
	// lower it. Default 50,000,000.
	CheckFuel uint64
	// InvokeFuel is the default fuel budget of one executable run;
	// abi.Limits.Fuel may lower it. Default 1,000,000,000.
	InvokeFuel uint64
	// InitFuel is the one budget of an instance's start function and
	// _initialize together, which the host calls like any call (host calls
	// charged, under the watchdog). Default 10,000,000.
	InitFuel uint64

	// Tuning.

	// Watchdog is how long a metered call may run past its deadline
	// (Timeout, InvokeTimeout, InitTimeout, or the call's
	// abi.Limits.Timeout) before the host's watchdog stops it with
	// ErrTimeout and discards its instance. Fuel bounds what a guest
	// computes; the watchdog bounds what fuel cannot (time spent in host
	// calls, an overloaded machine). One goroutine per Host checks every
	// running call each Watchdog/4 (1ms to 250ms); no call arms a timer.
	// Default 5s; negative turns the watchdog off. Unused without
	// metering, where deadlines stop guests.
	//
	// NB: a garbage collection stops the world, watchdog included, and
	// waits for a goroutine running a guest until the guest's next tick
	// (host/internal/fuel: every 2^20 fuel, about a millisecond) or host
	// call. With metering off, nothing bounds that wait but the deadline.
	Watchdog time.Duration
	// MaxInstancesPerModule bounds the pooled instances of one module:
	// checks beyond it wait for a free one (or for their ctx), top-level
	// invocations too, for at most their deadline, and then fail with
	// ErrBusy (retriable). Nested invocations (abi.Request.Depth > 0) never
	// wait, for they may wait on the invocation they run inside: they get
	// an instance outside the pool, at most MaxInstancesPerModule*8 at a
	// time per module (the kernel's depth limit bounds one chain), beyond
	// which they fail with ErrBusy. Default 2*GOMAXPROCS.
	MaxInstancesPerModule int
	// InitTimeout is the deadline of an instance's initialisation: the start
	// function and _initialize, at Validate, Prepare or when a pool grows.
	// It is separate from Timeout because a standard Go guest's runtime
	// initialisation takes 4-20ms (ten times that under the race detector or
	// a loaded CPU), a one-off cost no single check should pay for. A
	// caller's ctx deadline still shortens it. Default 1s.
	InitTimeout time.Duration
	// MaxModuleBytes is the largest module Validate accepts. Default 8 MiB.
	MaxModuleBytes int
	// MaxFunctions, MaxGlobals and MaxTableEntries cap what a module may
	// declare, imports included; MaxInitialMemoryPages caps its declared
	// minimum memory. Defaults 50000, 1000, 50000 and 256 (16 MiB).
	MaxFunctions          int
	MaxGlobals            int
	MaxTableEntries       int
	MaxInitialMemoryPages uint32

	// Bounds of the caches: what a principal deploying modules can make
	// the host hold.

	// MaxModules bounds the prepared modules kept compiled. Beyond it, and
	// beyond MaxCodeBytes, the least recently used modules are evicted (an
	// approximation: a module used since the last sweep is spared once),
	// modules with calls in flight last; an evicted module is compiled
	// again by the next Prepare of its bytes (Evaluate and Invoke return
	// ErrNotPrepared until then; Prepared tells). Forget evicts one at once.
	// Default 1024.
	MaxModules int
	// MaxCodeBytes bounds the estimated size of the compiled modules kept:
	// 5 bytes per byte of instrumented module, about what wazero's machine
	// code and decoded module take. Default 1 GiB.
	MaxCodeBytes uint64
	// MaxPoolBytes bounds the memory of the live instances of every module
	// together (linear memory plus 8 bytes per table element, as
	// MemoryLimitBytes counts it). An instance returned to its pool while
	// the total is above it is closed instead, after the idle instances of
	// the least recently used modules. Default 1 GiB.
	MaxPoolBytes uint64
	// MaxCacheDirBytes bounds the files of the on-disk compilation cache
	// (CacheDir). New and every 16 compilations remove the oldest entries
	// beyond it, the caches of other wazero versions once nothing in them
	// changed for 10 minutes, and temporary files as old, left by an
	// interrupted write. Default 1 GiB.
	MaxCacheDirBytes int64
}

// DefaultConfig returns the configuration a zero Config stands for.
func DefaultConfig() Config {
	c := Config{}
	if err := c.validate(); err != nil {
		panic(err) // programmer error: the defaults themselves are invalid
	}
	return c
}

// WithCacheDir returns c with CacheDir set to dir.
func (c Config) WithCacheDir(dir string) Config { c.CacheDir = dir; return c }

// WithTimeout returns c with Timeout set to d.
func (c Config) WithTimeout(d time.Duration) Config { c.Timeout = d; return c }

// WithMemoryLimitBytes returns c with MemoryLimitBytes set to n.
func (c Config) WithMemoryLimitBytes(n uint64) Config { c.MemoryLimitBytes = n; return c }

// validate fills defaults and rejects impossible values.
func (c *Config) validate() error {
	if c.Timeout < 0 || c.InitTimeout < 0 || c.MaxInstancesPerModule < 0 || c.MaxModuleBytes < 0 ||
		c.MaxFunctions < 0 || c.MaxGlobals < 0 || c.MaxTableEntries < 0 {
		return errors.New("host: config: negative value")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.InvokeTimeout <= 0 {
		c.InvokeTimeout = DefaultInvokeTimeout
	}
	if c.CheckFuel == 0 {
		c.CheckFuel = DefaultCheckFuel
	}
	if c.InvokeFuel == 0 {
		c.InvokeFuel = DefaultInvokeFuel
	}
	if c.InitFuel == 0 {
		c.InitFuel = DefaultInitFuel
	}
	c.CheckFuel = min(c.CheckFuel, fuel.MaxFuel)
	c.InvokeFuel = min(c.InvokeFuel, fuel.MaxFuel)
	c.InitFuel = min(c.InitFuel, fuel.MaxFuel)
	if c.InitTimeout == 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.Watchdog == 0 {
		c.Watchdog = DefaultWatchdog
	}
	if c.MemoryLimitBytes == 0 {
		c.MemoryLimitBytes = DefaultMemoryLimitBytes
	}
	if c.MemoryLimitBytes < pageSize || c.MemoryLimitBytes > 1<<32 {
		return fmt.Errorf("host: config: MemoryLimitBytes %d outside [64 KiB, 4 GiB]", c.MemoryLimitBytes)
	}
	if c.MaxInstancesPerModule == 0 {
		c.MaxInstancesPerModule = 2 * runtime.GOMAXPROCS(0)
	}
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if c.MaxFunctions == 0 {
		c.MaxFunctions = DefaultMaxFunctions
	}
	if c.MaxGlobals == 0 {
		c.MaxGlobals = DefaultMaxGlobals
	}
	if c.MaxTableEntries == 0 {
		c.MaxTableEntries = DefaultMaxTableEntries
	}
	if c.MaxInitialMemoryPages == 0 {
		c.MaxInitialMemoryPages = DefaultMaxInitialMemoryPages
	}
	if c.MaxModules < 0 || c.MaxCacheDirBytes < 0 {
		return errors.New("host: config: negative value")
	}
	if c.MaxModules == 0 {
		c.MaxModules = DefaultMaxModules
	}
	if c.MaxCodeBytes == 0 {
		c.MaxCodeBytes = DefaultMaxCodeBytes
	}
	if c.MaxPoolBytes == 0 {
		c.MaxPoolBytes = DefaultMaxPoolBytes
	}
	if c.MaxCacheDirBytes == 0 {
		c.MaxCacheDirBytes = DefaultMaxCacheDirBytes
	}
	return nil
}

// maxNested is how many instances outside the pool the nested invocations
// of one module may hold at a time (Config.MaxInstancesPerModule).
func (c *Config) maxNested() int { return c.MaxInstancesPerModule * 8 }

// callCap is the memory cap of a call under lim: MemoryLimitBytes, lowered
// by lim.MemoryBytes when it sets one.
func (c *Config) callCap(lim uint64) uint64 {
	if lim > 0 && lim < c.MemoryLimitBytes {
		return lim
	}
	return c.MemoryLimitBytes
}

// memoryLimitPages is MemoryLimitBytes in whole pages.
func (c *Config) memoryLimitPages() uint32 { return uint32(c.MemoryLimitBytes / pageSize) }
