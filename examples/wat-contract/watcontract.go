// Package watcontract is the frozen access contract written in WebAssembly
// text (frozen.wat) and its committed module, built with wat2wasm (see
// README.md).
//
// Anyone reads and invokes what it governs, free; nobody, the creator
// included, writes, edits, deletes or sets the contract of it: the artifact
// can never change again. Unknown actions and malformed requests are denied.
package watcontract

import _ "embed" // for go:embed

//go:embed frozen.wasm
var frozen []byte

// Reasons the contract gives when it denies, as they appear in
// abi.Decision.Reason. An allowed action has an empty reason.
const (
	ReasonFrozen    = "frozen: this artifact can no longer change"
	ReasonUnknown   = "frozen: unknown action"
	ReasonMalformed = "frozen: malformed request"
)

// Frozen returns the contract module. Each call returns a new copy that the
// caller owns.
func Frozen() []byte { return append([]byte(nil), frozen...) }
