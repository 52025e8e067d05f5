// Command kernelhostwarm compiles the large Go guests that cmd/kernelhost's
// tests prepare (the genesis executables and the demo's escrow) into the
// shared compilation cache of main-package binaries, and exits.
//
// A binary of a main package reports wazero's module version, where a test
// binary of a library package reports "dev", so the two have cache
// directories of their own (testenv.CacheDir; internal/testworld's -warm
// fills the "dev" one). `make test-warm` runs this without the race
// detector before the race run, as it used to run cmd/kernelhost's test
// binary with -warm: this command imports only what the guests need, not
// the CLI's whole tree (cobra, pgx, chromedp, the MCP SDK, prometheus),
// which on an empty build cache was compiled a second time, without
// -race, for nothing but this.
package main

import (
	"fmt"
	"os"

	market "github.com/kernelhost/kernelhost/examples/rights-market"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

func main() {
	hosted := [][]byte{market.Escrow}
	for _, wasm := range genesis.Executables() {
		hosted = append(hosted, wasm)
	}
	if err := testworld.WarmCache(hosted, nil); err != nil {
		fmt.Fprintln(os.Stderr, "kernelhostwarm:", err)
		os.Exit(1)
	}
}
