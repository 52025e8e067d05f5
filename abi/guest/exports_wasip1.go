//go:build wasip1

package guest

import (
	"runtime"
	"unsafe"

	"github.com/kernelhost/kernelhost/abi"
)

// The ABI exports (SPEC.md section 1). They exist only in wasip1 builds.

//go:wasmexport kh_abi_version
func khABIVersion() int32 { return int32(abi.Version) }

//go:wasmexport kh_alloc
func khAlloc(size uint32) uint32 {
	b := std.alloc(size)
	if b == nil {
		return 0
	}
	return addr(b)
}

// khCheck judges the request at ptr. ptr must lie in the buffer kh_alloc
// returned, as the SPEC requires of the host; anything else is denied as
// malformed rather than read, so no pointer is ever made from host input.
//
//go:wasmexport kh_check
func khCheck(ptr, size uint32) uint64 {
	var out []byte
	if len(std.req) == 0 || ptr < addr(std.req) {
		out = std.check(nil, false)
	} else {
		b, ok := std.region(uint64(ptr-addr(std.req)), uint64(size))
		out = std.check(b, ok)
	}
	return uint64(addr(out))<<32 | uint64(len(out))
}

// addr returns the linear-memory address of b's first element. Go's garbage
// collector does not move objects, and the handler keeps b referenced, so the
// address stays valid while the host uses it.
func addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// khInvoke runs the invocation at ptr (SPEC.md section 8); the same region
// rule as khCheck applies.
//
//go:wasmexport kh_invoke
func khInvoke(ptr, size uint32) uint64 {
	var out []byte
	if len(std.req) == 0 || ptr < addr(std.req) {
		out = std.invokeReq(nil, false)
	} else {
		b, ok := std.region(uint64(ptr-addr(std.req)), uint64(size))
		out = std.invokeReq(b, ok)
	}
	return uint64(addr(out))<<32 | uint64(len(out))
}

// The kernel host API (SPEC.md section 8, "Host API"). A region is passed as
// its address and length; the host traps on one outside memory.

//go:wasmimport kernel call
func kernelCall(reqPtr, reqLen, outPtr, outCap uint32) int32

//go:wasmimport kernel result
func kernelResult(outPtr, outCap uint32) int32

//go:wasmimport kernel log
func kernelLog(ptr, size uint32)

// imports serves kernelFuncs with the imported functions.
type imports struct{}

func (imports) call(req, out []byte) int32 {
	n := kernelCall(addr(req), uint32(len(req)), addr(out), uint32(len(out)))
	runtime.KeepAlive(req)
	runtime.KeepAlive(out)
	return n
}

func (imports) result(out []byte) int32 {
	n := kernelResult(addr(out), uint32(len(out)))
	runtime.KeepAlive(out)
	return n
}

func (imports) log(msg []byte) {
	kernelLog(addr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

func init() { kernelHost = imports{} }
