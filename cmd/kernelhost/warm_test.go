package main

import (
	"flag"

	market "github.com/kernelhost/kernelhost/examples/rights-market"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

var warm = flag.Bool("warm", false, "compile the Go guests of this package's worlds into the shared compilation cache and exit (make test-warm)")

// warmCache compiles into this package's shared compilation cache the Go
// guests its worlds prepare: the genesis executables (every init) and the
// demo's escrow. TestMain runs it for -warm. A test binary of this main
// package reports wazero's module version, not "dev" (its build info lists
// the dependencies of kernelhost), so it has a cache directory of its own,
// which internal/testworld's -warm does not fill; examples/embed and the
// kernelhost that examples/http-agent builds share it. See
// internal/testworld's TestMain.
func warmCache() error {
	hosted := [][]byte{market.Escrow}
	for _, wasm := range genesis.Executables() {
		hosted = append(hosted, wasm)
	}
	return testworld.WarmCache(hosted, nil)
}
