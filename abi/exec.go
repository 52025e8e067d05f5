package abi

import (
	"fmt"
	"time"
)

// Limits bound one execution of guest code. The kernel derives them from the
// paying principal's quotas; a zero field means the host's default.
type Limits struct {
	MemoryBytes uint64        // cap on the instance's linear memory plus 8 bytes per table element, during the call
	Timeout     time.Duration // wall-clock deadline of the call
	Fuel        uint64        // fuel budget of the call (metered hosts); running out is OUT_OF_FUEL
}

// Usage is what one execution of guest code consumed.
type Usage struct {
	CPU         time.Duration // wall time of the call; 0 when the host meters fuel instead
	Fuel        uint64        // fuel used; 0 when metering is off
	MemoryBytes uint64        // the instance's linear memory plus 8 bytes per table element after the call
}

// InvokeResultMagic opens an encoded invoke result.
const InvokeResultMagic = "KHIR"

// MaxOutputLen bounds an invoke result's output or error message.
const MaxOutputLen = 1 << 20

// InvokeResult is what an executable's kh_invoke returns: an output, or an
// error message that rolls back every write of the invocation.
type InvokeResult struct {
	OK     bool
	Output []byte // result bytes when OK, else the error message
}

// AppendInvokeResult appends the encoding of r to dst:
// magic "KHIR", u16 version, u8 status (0 ok, 1 error), u8 reserved 0,
// u32 length, output bytes.
func AppendInvokeResult(dst []byte, r *InvokeResult) ([]byte, error) {
	if len(r.Output) > MaxOutputLen {
		return dst, fmt.Errorf("invoke output: %d bytes > %d: %w", len(r.Output), MaxOutputLen, ErrTooLarge)
	}
	dst = append(dst, InvokeResultMagic...)
	dst = le.AppendUint16(dst, Version)
	status := byte(1)
	if r.OK {
		status = 0
	}
	dst = append(dst, status, 0)
	dst = le.AppendUint32(dst, uint32(len(r.Output)))
	return append(dst, r.Output...), nil
}

// DecodeInvokeResult decodes an invoke result; the output is copied out of b.
func DecodeInvokeResult(b []byte) (InvokeResult, error) {
	const fixed = 12
	if len(b) < fixed {
		return InvokeResult{}, fmt.Errorf("invoke result: %d bytes < header %d: %w", len(b), fixed, ErrMalformed)
	}
	if string(b[:4]) != InvokeResultMagic {
		return InvokeResult{}, fmt.Errorf("invoke result: bad magic %q: %w", b[:4], ErrMalformed)
	}
	if v := le.Uint16(b[4:]); v != Version {
		return InvokeResult{}, fmt.Errorf("invoke result: version %d, want %d: %w", v, Version, ErrVersion)
	}
	if b[6] > 1 || b[7] != 0 {
		return InvokeResult{}, fmt.Errorf("invoke result: bad status or reserved byte: %w", ErrMalformed)
	}
	n := le.Uint32(b[8:])
	if n > MaxOutputLen || uint64(n) != uint64(len(b)-fixed) {
		return InvokeResult{}, fmt.Errorf("invoke result: output length %d does not match %d bytes: %w", n, len(b)-fixed, ErrMalformed)
	}
	r := InvokeResult{OK: b[6] == 0}
	if n > 0 {
		r.Output = append([]byte(nil), b[fixed:]...)
	}
	return r, nil
}

// HostCalls is what an executable may ask of the kernel while it runs: the
// kernel implements it for one invocation (carrying that invocation's
// context) and the host calls it from the imported functions of module
// "kernel". Identity is bound by the implementation: nothing in a request
// names the caller. (No context parameter: package abi stays free of
// imports that would grow every Go guest.)
type HostCalls interface {
	// Call performs one kernel request (JSON, see SPEC.md "Host API") as the
	// invoking principal and returns the JSON result. It never fails: errors
	// are results with ok false.
	Call(request []byte) []byte
	// Log records a message of the executable (bounded by the kernel).
	Log(msg []byte)
}
