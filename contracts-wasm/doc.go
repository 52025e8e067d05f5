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
//
// (A fourth contract, self_owned, allowed a caller whose principal id equals
// the target's artifact id. Principal and artifact ids are separate
// namespaces that never alias, so it was retired.)
//
// Every contract denies actions it does not know, denies a malformed request
// with the reason "malformed request", costs nothing and names no payer or
// payee. A denial carries a short reason such as
// "freeware: only the controller may write"; an allowance an empty one.
//
// The package also embeds the genesis rights registry (RightsRegistry), an
// executable written in Go under rights/: get_quota, available_capacity and
// transfer_quota, each one call of the kernel host API as the invoking caller.
//
// `make contracts` at the repository root rebuilds the modules (`make` in
// this directory rebuilds the C ones); TestContractsReproducible and
// TestRightsRegistryReproducible check that the committed bytes equal a
// rebuild.
package contracts
