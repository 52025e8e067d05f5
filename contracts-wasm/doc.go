// Package contracts holds the genesis access contracts of kernelhost: their
// freestanding C sources, written against abi/kernelhost.h, and the committed
// WebAssembly modules built from them, embedded with go:embed.
//
// The rules, where the controller is the target's "controller" metadata value
// when set and its created_by otherwise (a contract-side convention the kernel
// never applies):
//
//   - freeware: anyone reads and invokes; only the controller writes, edits,
//     deletes and sets the contract.
//   - private: only the controller does anything.
//   - public: anyone reads, writes, edits and invokes; only the controller
//     deletes and sets the contract.
//   - self_owned: only the artifact itself acts on itself (caller equals the
//     target id).
//
// Every contract denies actions it does not know, denies a malformed request
// with the reason "malformed request", costs nothing and names no payer or
// payee. A denial carries a short reason such as
// "freeware: only the controller may write"; an allowance an empty one.
//
// `make contracts` at the repository root (or `make` in this directory)
// rebuilds the modules; TestContractsReproducible checks that the committed
// bytes equal a rebuild.
package contracts
