package abi

import "time"

// Limits bound one execution of guest code. The kernel derives them from the
// paying principal's quotas; a zero field means the host's default.
type Limits struct {
	MemoryBytes uint64        // cap on the instance's linear memory after the call
	Timeout     time.Duration // wall-clock deadline of the call
	Fuel        uint64        // reserved for deterministic metering
}

// Usage is what one execution of guest code consumed.
type Usage struct {
	CPU         time.Duration // wall time of the call
	Fuel        uint64        // fuel used; 0 while metering is off
	MemoryBytes uint64        // size of the instance's linear memory after the call
}
