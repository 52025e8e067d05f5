package fuel

import (
	"errors"
	"fmt"
)

// Sentinel errors returned, wrapped in an [*Error], by [Instrument].
var (
	// ErrMalformed is returned for input that is not a well-formed
	// WebAssembly 2.0 binary as far as the pass reads it: bad magic or
	// version, truncated or overlong sections, bad LEB128, sections out of
	// order, unbalanced blocks, an index out of range. A module rejected
	// with ErrMalformed would not compile either.
	ErrMalformed = errors.New("fuel: malformed module")

	// ErrUnsupported is returned for a well-formed module that uses a feature
	// the pass does not meter: SIMD (0xfd prefix), threads and atomics (0xfe
	// prefix, shared memories), multiple memories, 64-bit memories, exception
	// handling, tail calls, GC, any opcode the pass does not know, or a
	// module that already exports the name [ExportName].
	ErrUnsupported = errors.New("fuel: unsupported feature")
)

// Error is the error returned by [Instrument]. It wraps [ErrMalformed] or
// [ErrUnsupported], so callers branch with errors.Is, and says where the
// problem lies so that a contract author can find it (e.g. with
// wasm-objdump -d).
type Error struct {
	// Err is ErrMalformed or ErrUnsupported.
	Err error
	// Func is the function index (imports included) of the offending code,
	// or -1 when the problem is not inside a function body.
	Func int
	// Offset is the byte offset in the input module where the problem lies.
	Offset int
	// Msg says what is wrong, e.g. "SIMD instruction (0xfd prefix)".
	Msg string
}

// Error implements error, e.g. "fuel: unsupported feature: SIMD instruction
// (0xfd prefix) in function 12 at offset 0x4d2".
func (e *Error) Error() string {
	if e.Func >= 0 {
		return fmt.Sprintf("%v: %s in function %d at offset %#x", e.Err, e.Msg, e.Func, e.Offset)
	}
	return fmt.Sprintf("%v: %s at offset %#x", e.Err, e.Msg, e.Offset)
}

// Unwrap returns ErrMalformed or ErrUnsupported.
func (e *Error) Unwrap() error { return e.Err }
