package host_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// ExampleHost prepares the freeware test contract and asks it about two
// actions on an artifact alice created.
func ExampleHost() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(ctx)

	wasm, err := os.ReadFile("testdata/freeware.wasm")
	if err != nil {
		log.Fatal(err)
	}
	hash, err := h.Prepare(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	for _, caller := range []string{"alice", "bob"} {
		req := &abi.Request{
			Action:       abi.ActionWrite,
			TargetExists: true,
			Caller:       caller,
			TargetID:     "notes",
			TargetType:   "data",
			CreatedBy:    "alice",
		}
		d, _, err := h.Evaluate(ctx, hash, req, abi.Limits{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s write: allowed=%v reason=%q\n", caller, d.Allowed, d.Reason)
	}
	// Output:
	// alice write: allowed=true reason=""
	// bob write: allowed=false reason="caller is not the creator"
}

// ExampleHost_Validate shows the message an author gets for a forbidden
// import, and the code the kernel reports.
func ExampleHost_Validate() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(ctx)

	wasm, err := os.ReadFile("testdata/import_fs.wasm")
	if err != nil {
		log.Fatal(err)
	}
	err = h.Validate(ctx, wasm)
	var coded interface{ Code() abi.Code }
	if errors.As(err, &coded) {
		fmt.Println(coded.Code())
	}
	fmt.Println(err)
	// Output:
	// CONTRACT_INVALID
	// host: invalid module: import "wasi_snapshot_preview1"."path_open" is not allowed: contracts get no filesystem
}
