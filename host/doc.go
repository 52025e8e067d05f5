// Package host runs kernelhost access contracts: WebAssembly modules that
// implement the contract ABI of package abi, executed under wazero.
//
// A Host owns one wazero runtime with an optional on-disk compilation cache,
// keeps compiled modules by the sha256 of their bytes, and keeps a bounded
// pool of warm instances per module. Every call runs on a fuel budget (the
// module is instrumented at deploy time by host/internal/fuel, so a guest
// stops itself, deterministically, with ErrOutOfFuel) and under a memory cap
// that holds during the call: the pass also makes every memory.grow and
// table.grow check the cap, the smaller of Config.MemoryLimitBytes and the
// caller's quota, linear memory and tables together (memcap.go); no call
// arms a timer. The compiled modules, the pools' memory and the on-disk
// cache are bounded too (cache.go): the least recently used modules are
// evicted and compiled again by the next Prepare (Prepared tells). One watchdog goroutine per Host stops calls still
// running long past their deadline, which fuel cannot prevent when the time
// goes into host calls (see Config.Watchdog). With Config.DisableMetering,
// deadlines interrupt guests instead. An instance that trapped, ran out of
// fuel, timed out or hit a limit is closed and never reused. Guests see a deterministic WASI subset: no filesystem,
// no environment, no arguments, no network, fixed clocks and a fixed random
// stream, stdout and stderr discarded.
//
// The protocol is: Validate (or Prepare) a module at deploy time, Prepare it
// once per process, then Evaluate it for each action. Evaluate returns
// ErrNotPrepared for an unknown hash, so that a caller holding the module's
// bytes can Prepare them and retry.
package host
