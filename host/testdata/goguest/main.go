// Command goguest is a freeware-like contract in standard Go (GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared). host's tests build it to check that a Go
// guest passes validation with the WASI subset and decides correctly. It
// uses fmt and time on purpose, so that it imports what a typical Go guest
// imports.
package main

import (
	"fmt"
	"time"

	"github.com/kernelhost/kernelhost/abi"
)

var (
	req []byte
	out []byte
	v   abi.RequestView
	// calls counts the checks by caller "counter".
	calls int
)

//go:wasmexport kh_abi_version
func version() int32 { return int32(abi.Version) }

//go:wasmexport kh_alloc
func alloc(n int32) int32 {
	req = make([]byte, n)
	return ptr(req)
}

//go:wasmexport kh_check
func check(p, n int32) int64 {
	d := decide(req[:n])
	var err error
	if out, err = abi.AppendDecision(out[:0], &d); err != nil {
		panic(err)
	}
	return int64(ptr(out))<<32 | int64(len(out))
}

func decide(b []byte) abi.Decision {
	if err := v.Parse(b); err != nil {
		return abi.Decision{Reason: "bad request"}
	}
	if string(v.Caller()) == "counter" {
		// A stateful contract (host's TestStatefulContractIsDeterministic):
		// it counts its calls in memory and allows only the first.
		calls++
		return abi.Decision{Allowed: calls == 1, Reason: fmt.Sprintf("call %d", calls)}
	}
	switch v.Action() {
	case abi.ActionRead, abi.ActionInvoke:
		return abi.Decision{Allowed: true}
	case abi.ActionWrite, abi.ActionEdit, abi.ActionDelete, abi.ActionSetContract:
		if string(v.Caller()) == string(v.Controller()) {
			return abi.Decision{Allowed: true}
		}
		return abi.Decision{Reason: fmt.Sprintf("%s is not the controller (checked %d)", v.Caller(), time.Now().Year())}
	}
	return abi.Decision{Reason: "unknown action"}
}

func main() {}
