//go:build wasip1

package guest

import (
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
