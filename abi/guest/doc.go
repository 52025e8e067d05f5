// Package guest is the Go guest SDK for kernelhost access contracts and
// executables: it provides the ABI exports (kh_abi_version, kh_alloc,
// kh_check, kh_invoke) so that a contract is one function from a request view
// to a decision, and an executable one function from a request view to an
// output; and it wraps the kernel host API (Call, Do, DoAs, Balance,
// Quota, Log) that executables use while they run.
//
// # Usage
//
// A contract is a main package that registers its decider in init:
//
//	package main
//
//	import (
//		"github.com/kernelhost/kernelhost/abi"
//		"github.com/kernelhost/kernelhost/abi/guest"
//	)
//
//	func init() {
//		guest.Register(func(req *abi.RequestView) abi.Decision {
//			if req.Action() == abi.ActionRead {
//				return abi.Decision{Allowed: true}
//			}
//			return abi.Decision{Reason: "example: only reads are allowed"}
//		})
//	}
//
//	func main() {}
//
// built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-buildid= -o contract.wasm .
//
// The host calls the module's _initialize export first, which runs package
// init functions and so the Register call; main is never called.
//
// # What the SDK does
//
// The exports are defined with //go:wasmexport in this package (Go 1.24 and
// later export them from any package linked into the binary, not only from
// main). kh_alloc hands the host a request buffer that is kept and reused
// across calls; kh_check parses the request in place with abi.RequestView and
// encodes the decision with abi.AppendDecision into a reused buffer, so a
// well-formed request costs no allocation in the SDK. A malformed request
// never reaches the decider: it is denied with the reason "malformed request".
// A reason longer than abi.MaxReasonLen is truncated; a payer or payee longer
// than abi.MaxIDLen turns the decision into a denial with the reason
// "invalid decision". Until Register is called every request is denied with
// the reason "guest: no decider registered".
//
// The view's slices alias the request buffer: they are valid only until the
// decider returns, so copy anything kept (a contract should keep nothing: the
// host reuses instances for many requests, see SPEC.md section 7).
//
// A decider that panics makes kh_check trap; the host then denies the action
// with CONTRACT_FAILED and discards the instance.
//
// # Executables
//
// An executable (SPEC.md section 8) registers an invoker instead:
//
//	func init() {
//		guest.RegisterInvoke(func(req *abi.RequestView) ([]byte, error) {
//			res, err := guest.Do(map[string]any{"kind": "transfer", "to": "bob", "amount": 1})
//			if err != nil {
//				return nil, err // rolls back everything this invocation did
//			}
//			return res.Raw, nil
//		})
//	}
//
// Both exports are always present: a module that registers only a decider
// fails every invocation with ErrMsgNoInvoker, one that registers only an
// invoker denies every check with ReasonNoDecider. The invoker's error becomes
// the invocation's error result; its output is copied into a reused result
// buffer (an output over abi.MaxOutputLen becomes the error
// ErrMsgOutputTooLarge). An invoker that panics makes kh_invoke trap.
//
// While the invoker runs, the host API functions call into the kernel
// through the imported functions call, result and log of module "kernel";
// the linker imports them only into modules that use them. Every action is
// performed as the invoking caller (DoAs: as a principal that granted the
// executable standing) and judged like any other action. Outside an invocation they fail
// with ErrNotInvoking, and in a build that is not wasip1/wasm with
// ErrNoKernel, so that code using them still compiles and tests natively.
// An action may carry "max_cost" like any other: what the whole invocation
// debits from its caller stays within the invoke's spending limit anyway
// (COST_LIMIT_EXCEEDED for the step that would pass it).
// The host API allocates (it speaks JSON through encoding/json); the check
// path does not.
//
// NB: decode with json.Unmarshal, not a json.Decoder: reading through an
// io.Reader links os.File.Read, whose WASI import fd_read the host refuses at
// deploy ("contracts get no filesystem").
package guest
