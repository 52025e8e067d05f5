package llm

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kernelhost/kernelhost/kernel"
)

// Outcomes of a call, the outcome label of /metrics'
// kernelhost_llm_calls_total. A fixed set: with the price table's models,
// the labels a client can make are bounded.
const (
	OutcomeOK            = "ok"             // the provider answered (a stream to its end)
	OutcomeQuotaExceeded = "quota_exceeded" // refused before anything was sent
	OutcomeUpstreamError = "upstream_error" // the provider failed, refused or could not be reached
	OutcomeTimeout       = "timeout"        // the call ran past Config.Timeout
	OutcomeClientGone    = "client_gone"    // the client went before the answer was through
)

// ModelStats is what the gateway counted for one model since it started:
// the tokens and micro-dollars charged (settled) and the calls by outcome.
type ModelStats struct {
	Model                     string
	InputTokens, OutputTokens int64
	CostMicrodollars          int64
	Calls                     map[string]uint64 // by outcome
}

// stats counts per model; only models of the price table get here.
type stats struct {
	mu sync.Mutex // guards m
	m  map[string]*ModelStats
}

func (s *stats) get(model string) *ModelStats {
	m := s.m[model]
	if m == nil {
		m = &ModelStats{Model: model, Calls: map[string]uint64{}}
		s.m[model] = m
	}
	return m
}

func (s *stats) refused(model string) {
	s.mu.Lock()
	s.get(model).Calls[OutcomeQuotaExceeded]++
	s.mu.Unlock()
}

func (s *stats) call(model, outcome string, u kernel.LLMUsage, cost int64) {
	s.mu.Lock()
	m := s.get(model)
	m.Calls[outcome]++
	m.InputTokens += u.InputTokens
	m.OutputTokens += u.OutputTokens
	m.CostMicrodollars += cost
	s.mu.Unlock()
}

// Stats returns the counts per model, in model order.
func (g *Gateway) Stats() []ModelStats {
	g.stats.mu.Lock()
	defer g.stats.mu.Unlock()
	out := make([]ModelStats, 0, len(g.stats.m))
	for _, m := range g.stats.m {
		c := *m
		c.Calls = maps.Clone(m.Calls)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ModelStats) int { return strings.Compare(a.Model, b.Model) })
	return out
}
