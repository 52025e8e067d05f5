//go:build unix

package store_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, this process has used:
// the mem benchmarks' cpu-ns/op, which other processes on a loaded machine
// move far less than they move ns/op.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
