// Package market is the rights market example: an escrow executable, written
// in Go with abi/guest (escrow/main.go), that swaps a tokenized right for
// scrip in one invocation. The package exposes the committed module so that
// embedding programs (and 'kernelhost demo') can deploy it. See README.md.
package market

import _ "embed"

// Escrow is the committed escrow module (escrow/escrow.wasm), a WASI reactor
// exporting kh_invoke. Deploy it as an artifact of type executable whose id
// is a principal's id, so that it has standing to hold rights:
//
//	k.CreatePrincipal(ctx, "escrow/market", 0)
//	k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "escrow/market",
//		Target: "escrow/market", Type: kernel.TypeExecutable, Content: market.Escrow})
//
//go:embed escrow/escrow.wasm
var Escrow []byte

// BuiltWith is the Go release that built Escrow; another release emits other
// bytes.
const BuiltWith = "go1.26.8"

// BuildArgs is the go command that builds the escrow (in escrow/, with
// GOOS=wasip1 GOARCH=wasm), minus the output path.
var BuildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid="}
