//go:build !unix

package store_test

import "time"

// processCPU is not measured here: the mem benchmarks report no cpu-ns/op.
func processCPU() (time.Duration, bool) { return 0, false }
