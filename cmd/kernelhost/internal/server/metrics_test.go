package server

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestMetrics_pools: the host's pool statistics, the watchdog's stops
// included, are summed over modules and rendered.
func TestMetrics_pools(t *testing.T) {
	st := host.Stats{
		Modules: map[[32]byte]host.ModuleStats{
			{1}: {Live: 3, Idle: 2, Instantiated: 5, Discarded: 2},
			{2}: {Live: 1, Idle: 1, Instantiated: 1},
		},
		WatchdogStops: 2,
	}
	var b strings.Builder
	require.NoError(t, newMetrics().write(&b, &st, kernel.CommitStats{}))
	for _, want := range []string{
		"kernelhost_contract_modules 2\n",
		`kernelhost_contract_instances{state="live"} 4` + "\n",
		`kernelhost_contract_instances{state="idle"} 3` + "\n",
		"kernelhost_contract_instances_created_total 6\n",
		"kernelhost_contract_instances_discarded_total 2\n",
		"kernelhost_contract_watchdog_stops_total 2\n",
	} {
		require.Contains(t, b.String(), want)
	}
}

// TestMetrics_commit: the group commit's counters are rendered, the read
// events a crash would lose among them.
func TestMetrics_commit(t *testing.T) {
	var b strings.Builder
	require.NoError(t, newMetrics().write(&b, nil, kernel.CommitStats{Batches: 3, Actions: 40, EventsFlushed: 7, EventsPending: 2}))
	for _, want := range []string{
		"kernelhost_commit_batches_total 3\n",
		"kernelhost_commit_actions_total 40\n",
		"kernelhost_read_events_flushed_total 7\n",
		"kernelhost_read_events_pending 2\n",
	} {
		require.Contains(t, b.String(), want)
	}
}
