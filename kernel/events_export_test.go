package kernel

import "context"

// EventsForScan is EventsFor with a bound of maxScan examined events instead
// of 10000, so that tests can reach the bound with a few events. Test-only
// export.
func EventsForScan(ctx context.Context, k *Kernel, principal string, since uint64, limit, maxScan int) ([]Event, uint64, error) {
	return k.eventsFor(ctx, principal, since, limit, maxScan)
}
