// Package market is the rights market example: an escrow executable, written
// in Go with abi/guest (escrow/main.go), that swaps a tokenized right for
// scrip in one invocation. The package exposes the committed module so that
// embedding programs (and 'kernelhost demo') can deploy it. See README.md.
package market

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/kernelhost/kernelhost/kernel"
)

// Escrow is the committed escrow module (escrow/escrow.wasm), a WASI reactor
// exporting kh_invoke. Deploy it with Deploy: an executable whose
// "principal" metadata names the principal it acts as, and which that
// principal granted standing.
//
//go:embed escrow/escrow.wasm
var Escrow []byte

// BuiltWith is the Go release that built Escrow; another release emits other
// bytes.
const BuiltWith = "go1.26.8"

// BuildArgs is the go command that builds the escrow (in escrow/, with
// GOOS=wasip1 GOARCH=wasm), minus the output path.
var BuildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid="}

// Deploy writes the escrow as executable id, created by principal (which
// then controls its code under the default contract) and configured to act
// as principal, and has principal grant it standing. Ids imply nothing:
// principal and id may be any ids, the same string or not. principal needs
// disk for a module of a few MiB.
func Deploy(ctx context.Context, k *kernel.Kernel, principal, id string) error {
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: principal, Target: id, Type: kernel.TypeExecutable, Content: Escrow,
			Metadata: map[string]string{"principal": principal}},
		{Kind: kernel.KindGrantStanding, Caller: principal, Target: id},
	} {
		if res := k.Do(ctx, a); !res.OK {
			return fmt.Errorf("market: deploy %s: %s: %s: %s", id, a.Kind, res.ErrorCode, res.Message)
		}
	}
	return nil
}
