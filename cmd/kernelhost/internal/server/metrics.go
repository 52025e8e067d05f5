package server

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
)

// latencyBuckets are the upper bounds, in seconds, of the action latency
// histogram: from a warm check (tens of µs) to a contract at its deadline.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// metrics counts what the server did, for GET /metrics in the Prometheus
// text exposition format (written by hand: no client library).
type metrics struct {
	// mu guards every field below; every request takes it briefly once or
	// twice, /metrics while it renders.
	mu      sync.Mutex
	actions map[actionKey]uint64
	buckets []uint64 // per latencyBuckets entry, not cumulative
	sum     float64
	count   uint64
	http    map[int]uint64 // by status code
}

type actionKey struct{ kind, code string }

func newMetrics() *metrics {
	return &metrics{actions: map[actionKey]uint64{}, buckets: make([]uint64, len(latencyBuckets)), http: map[int]uint64{}}
}

// action records one kernel action of kind that ended with code after d.
func (m *metrics) action(kind, code string, d time.Duration) {
	s := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.actions[actionKey{kind, code}]++
	m.sum += s
	m.count++
	for i, ub := range latencyBuckets {
		if s <= ub {
			m.buckets[i]++
			break
		}
	}
}

func (m *metrics) request(status int) {
	m.mu.Lock()
	m.http[status]++
	m.mu.Unlock()
}

// write renders every metric; pools may be nil.
func (m *metrics) write(w io.Writer, pools *host.Stats, commit kernel.CommitStats) error {
	var b strings.Builder
	m.mu.Lock()
	b.WriteString("# HELP kernelhost_actions_total Kernel actions handled, by kind and result code.\n")
	b.WriteString("# TYPE kernelhost_actions_total counter\n")
	keys := make([]actionKey, 0, len(m.actions))
	for k := range m.actions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].kind != keys[j].kind {
			return keys[i].kind < keys[j].kind
		}
		return keys[i].code < keys[j].code
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "kernelhost_actions_total{kind=%s,code=%s} %d\n", quote(k.kind), quote(k.code), m.actions[k])
	}

	b.WriteString("# HELP kernelhost_action_duration_seconds Latency of kernel actions: quota and permission checks, the contract run, settlement.\n")
	b.WriteString("# TYPE kernelhost_action_duration_seconds histogram\n")
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += m.buckets[i]
		fmt.Fprintf(&b, "kernelhost_action_duration_seconds_bucket{le=%q} %d\n", formatFloat(ub), cum)
	}
	fmt.Fprintf(&b, "kernelhost_action_duration_seconds_bucket{le=\"+Inf\"} %d\n", m.count)
	fmt.Fprintf(&b, "kernelhost_action_duration_seconds_sum %s\n", formatFloat(m.sum))
	fmt.Fprintf(&b, "kernelhost_action_duration_seconds_count %d\n", m.count)

	b.WriteString("# HELP kernelhost_http_requests_total HTTP requests answered, by status code.\n")
	b.WriteString("# TYPE kernelhost_http_requests_total counter\n")
	statuses := make([]int, 0, len(m.http))
	for s := range m.http {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	for _, s := range statuses {
		fmt.Fprintf(&b, "kernelhost_http_requests_total{code=\"%d\"} %d\n", s, m.http[s])
	}
	m.mu.Unlock()

	if pools != nil {
		var live, idle int
		var created, discarded uint64
		for _, ms := range pools.Modules {
			live += ms.Live
			idle += ms.Idle
			created += ms.Instantiated
			discarded += ms.Discarded
		}
		b.WriteString("# HELP kernelhost_contract_modules Contract modules compiled and pooled by the host.\n")
		b.WriteString("# TYPE kernelhost_contract_modules gauge\n")
		fmt.Fprintf(&b, "kernelhost_contract_modules %d\n", len(pools.Modules))
		b.WriteString("# HELP kernelhost_contract_instances Contract instances alive in the host's pools: in use or idle.\n")
		b.WriteString("# TYPE kernelhost_contract_instances gauge\n")
		fmt.Fprintf(&b, "kernelhost_contract_instances{state=\"live\"} %d\n", live)
		fmt.Fprintf(&b, "kernelhost_contract_instances{state=\"idle\"} %d\n", idle)
		b.WriteString("# HELP kernelhost_contract_instances_created_total Contract instances created.\n")
		b.WriteString("# TYPE kernelhost_contract_instances_created_total counter\n")
		fmt.Fprintf(&b, "kernelhost_contract_instances_created_total %d\n", created)
		b.WriteString("# HELP kernelhost_contract_instances_discarded_total Contract instances discarded after a trap, timeout or limit.\n")
		b.WriteString("# TYPE kernelhost_contract_instances_discarded_total counter\n")
		fmt.Fprintf(&b, "kernelhost_contract_instances_discarded_total %d\n", discarded)
		b.WriteString("# HELP kernelhost_contract_watchdog_stops_total Contract calls the host's watchdog stopped for running far past their deadline.\n")
		b.WriteString("# TYPE kernelhost_contract_watchdog_stops_total counter\n")
		fmt.Fprintf(&b, "kernelhost_contract_watchdog_stops_total %d\n", pools.WatchdogStops)
	}
	b.WriteString("# HELP kernelhost_commit_batches_total Store transactions the kernel's group commit committed.\n")
	b.WriteString("# TYPE kernelhost_commit_batches_total counter\n")
	fmt.Fprintf(&b, "kernelhost_commit_batches_total %d\n", commit.Batches)
	b.WriteString("# HELP kernelhost_commit_actions_total Action attempts committed in those batches.\n")
	b.WriteString("# TYPE kernelhost_commit_actions_total counter\n")
	fmt.Fprintf(&b, "kernelhost_commit_actions_total %d\n", commit.Actions)
	b.WriteString("# HELP kernelhost_read_events_flushed_total Audit events of reads written to the store (reads commit nothing themselves).\n")
	b.WriteString("# TYPE kernelhost_read_events_flushed_total counter\n")
	fmt.Fprintf(&b, "kernelhost_read_events_flushed_total %d\n", commit.EventsFlushed)
	b.WriteString("# HELP kernelhost_read_events_pending Audit events of answered reads not yet written: what a crash now would lose.\n")
	b.WriteString("# TYPE kernelhost_read_events_pending gauge\n")
	fmt.Fprintf(&b, "kernelhost_read_events_pending %d\n", commit.EventsPending)
	_, err := io.WriteString(w, b.String())
	return err
}

// quote writes a label value: backslash, double quote and newline escaped.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
