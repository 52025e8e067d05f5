package server

import "github.com/kernelhost/kernelhost/kernel"

// CapClassified reports whether the spending-cap table classifies kind
// (capKinds): a kind it does not is refused to every capped token.
func CapClassified(k kernel.Kind) bool { _, ok := capKinds[k]; return ok }
