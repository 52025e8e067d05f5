package host

// The host-call costs (hostcall.go), for the tests of package host_test.
const (
	CostHostCall   = costHostCall
	CostKernelCall = costKernelCall
	CostHostByte   = costHostByte
	StartExport    = startExport
)

// InitFuelOf is what initialising one instance of the prepared module hash
// runs (withReplacement), or 0 for a module that is not prepared.
func (h *Host) InitFuelOf(hash [32]byte) uint64 {
	if m := h.lookup(hash); m != nil {
		return m.initFuel
	}
	return 0
}
