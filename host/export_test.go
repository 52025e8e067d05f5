package host

// The host-call costs (hostcall.go), for the tests of package host_test.
const (
	CostHostCall   = costHostCall
	CostKernelCall = costKernelCall
	CostHostByte   = costHostByte
	StartExport    = startExport
)
