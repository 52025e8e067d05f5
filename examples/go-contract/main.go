// Command go-contract is the genesis freeware access contract written in Go
// with the abi/guest SDK: anyone reads and invokes; only the controller (the
// "controller" metadata value when set, else created_by) writes, edits,
// deletes and sets the contract; unknown actions are denied.
//
// Build it as a WASI reactor (see README.md):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o freeware.wasm .
package main

import (
	"bytes"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/guest"
)

// denials holds the reason for each action only the controller may perform.
// They are constants so that a denial allocates nothing.
var denials = [...]string{
	abi.ActionWrite:       "freeware: only the controller may write",
	abi.ActionEdit:        "freeware: only the controller may edit",
	abi.ActionDelete:      "freeware: only the controller may delete",
	abi.ActionSetContract: "freeware: only the controller may set_contract",
}

// decide is the freeware rule.
func decide(req *abi.RequestView) abi.Decision {
	switch a := req.Action(); a {
	case abi.ActionRead, abi.ActionInvoke:
		return abi.Decision{Allowed: true}
	case abi.ActionWrite, abi.ActionEdit, abi.ActionDelete, abi.ActionSetContract:
		if c := req.Controller(); len(c) > 0 && bytes.Equal(req.Caller(), c) {
			return abi.Decision{Allowed: true}
		}
		return abi.Decision{Reason: denials[a]}
	default:
		return abi.Decision{Reason: "freeware: unknown action"}
	}
}

func init() { guest.Register(decide) }

// main is never called: the host runs _initialize (package init) and then
// the exports of abi/guest.
func main() {}
