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
	// MemoryLimitBytes caps the linear memory of every instance: memory.grow
	// past it returns -1. It is rounded down to whole 64 KiB pages. A call's
	// abi.Limits.MemoryBytes may cap it further. Default 64 MiB.
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
	// InitFuel is the fuel an instance's start function and _initialize
	// run on; it is built into the instrumented module. Default 10,000,000.
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
	// MaxInstancesPerModule bounds the live instances of one module; callers
	// beyond it wait for a free one (or for their ctx). Default
	// 2*GOMAXPROCS.
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
	return nil
}

// memoryLimitPages is MemoryLimitBytes in whole pages.
func (c *Config) memoryLimitPages() uint32 { return uint32(c.MemoryLimitBytes / pageSize) }
