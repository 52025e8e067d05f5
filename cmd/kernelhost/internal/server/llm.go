package server

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
)

// llmChatPath is the LLM gateway's route (package llm).
const llmChatPath = "/v1/llm/chat"

// llmRoutes registers POST /v1/llm/chat: a principal's chat-completions
// call through the metered gateway. It is registered on every server (the
// OpenAPI document names it); one without a gateway answers UNAVAILABLE.
func (s *Server) llmRoutes() {
	s.handle(llmChatPath, methods{http.MethodPost: s.principal(s.llmChat)})
}

func (s *Server) llmChat(w http.ResponseWriter, r *http.Request, caller string) {
	if s.cfg.LLM == nil {
		writeError(w, http.StatusServiceUnavailable, api.NewError(abi.Unavailable,
			"this server has no LLM gateway: start it with 'kernelhost serve --llm-endpoint URL --llm-prices FILE'"))
		return
	}
	id, ok := identityOf(r)
	if ok && llmCapped(id) { // tokens.go
		writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied, fmt.Sprintf(
			"token %q of %s caps llm_rate or llm_budget, which the gateway's calls are not bounded by: call the LLM with a token without those caps", id.Token, caller)))
		return
	}
	token := ""
	if ok {
		token = id.TokenName()
	}
	s.cfg.LLM.ServeChat(w, r, caller, token)
}

// isLLM reports whether r is an LLM call: it runs under the gateway's
// timeout (llm.Config.Timeout), not the request timeout, which a long
// completion or stream would outlast.
func isLLM(r *http.Request) bool { return r.URL.Path == llmChatPath && r.Method == http.MethodPost }

// writeLLMMetrics writes the gateway's counters: tokens and micro-dollars
// charged per model, and calls per model and outcome. The models are
// those of the price table (a request for another is refused before it is
// counted), so the labels are bounded.
func writeLLMMetrics(w io.Writer, g *llm.Gateway) error {
	var st []llm.ModelStats
	if g != nil {
		st = g.Stats()
	}
	var b strings.Builder
	b.WriteString("# HELP kernelhost_llm_tokens_total LLM tokens charged through the gateway (settled), by model and direction.\n")
	b.WriteString("# TYPE kernelhost_llm_tokens_total counter\n")
	for _, m := range st {
		fmt.Fprintf(&b, "kernelhost_llm_tokens_total{model=%s,direction=\"input\"} %d\n", quote(m.Model), m.InputTokens)
		fmt.Fprintf(&b, "kernelhost_llm_tokens_total{model=%s,direction=\"output\"} %d\n", quote(m.Model), m.OutputTokens)
	}
	b.WriteString("# HELP kernelhost_llm_cost_microdollars_total LLM spend charged to llm_budget through the gateway, by model.\n")
	b.WriteString("# TYPE kernelhost_llm_cost_microdollars_total counter\n")
	for _, m := range st {
		fmt.Fprintf(&b, "kernelhost_llm_cost_microdollars_total{model=%s} %d\n", quote(m.Model), m.CostMicrodollars)
	}
	b.WriteString("# HELP kernelhost_llm_calls_total LLM calls through the gateway, by model and outcome.\n")
	b.WriteString("# TYPE kernelhost_llm_calls_total counter\n")
	for _, m := range st {
		outcomes := make([]string, 0, len(m.Calls))
		for o := range m.Calls {
			outcomes = append(outcomes, o)
		}
		slices.Sort(outcomes)
		for _, o := range outcomes {
			fmt.Fprintf(&b, "kernelhost_llm_calls_total{model=%s,outcome=%s} %d\n", quote(m.Model), quote(o), m.Calls[o])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
