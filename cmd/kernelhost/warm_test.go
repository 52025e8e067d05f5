package main

import (
	"testing"

	market "github.com/kernelhost/kernelhost/examples/rights-market"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

// TestWarmCache compiles into this package's shared compilation cache the Go
// guests its worlds prepare: the genesis executables (every init) and the
// demo's escrow. A test binary of this main package reports wazero's
// module version, not "dev" (its build info lists the dependencies of
// kernelhost), so it has a cache directory of its own, which
// internal/testworld's TestWarmCache does not fill; examples/embed shares
// it. `make test-warm` runs it without the race detector (see there).
func TestWarmCache(t *testing.T) {
	hosted := [][]byte{market.Escrow}
	for _, wasm := range genesis.Executables() {
		hosted = append(hosted, wasm)
	}
	testworld.WarmCache(t, hosted, nil)
}
