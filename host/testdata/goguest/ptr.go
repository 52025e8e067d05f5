package main

import "unsafe"

// ptr returns the linear-memory address of b's first byte.
func ptr(b []byte) int32 {
	if cap(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
