// Package host runs kernelhost access contracts: WebAssembly modules that
// implement the contract ABI of package abi, executed under wazero.
//
// A Host owns one wazero runtime with an optional on-disk compilation cache,
// keeps compiled modules by the sha256 of their bytes, and keeps a bounded
// pool of warm instances per module. Every call runs under a deadline and a
// memory cap; an instance that trapped, timed out or hit a limit is closed
// and never reused. Guests see a deterministic WASI subset: no filesystem,
// no environment, no arguments, no network, fixed clocks and a fixed random
// stream, stdout and stderr discarded.
//
// The protocol is: Validate (or Prepare) a module at deploy time, Prepare it
// once per process, then Evaluate it for each action. Evaluate returns
// ErrNotPrepared for an unknown hash, so that a caller holding the module's
// bytes can Prepare them and retry.
package host
