package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
)

// LLMAnswer is the gateway's answer to one call: the provider's JSON answer
// and what the call was charged (the answer's X-Kernelhost-Llm-* headers).
type LLMAnswer struct {
	Response     json.RawMessage `json:"response"`
	InputTokens  int64           `json:"input_tokens"`
	OutputTokens int64           `json:"output_tokens"`
	Cost         int64           `json:"cost_microdollars"`
	Event        uint64          `json:"event,omitempty"`
}

// LLMChat posts body, a chat-completions request that is not streamed, to
// the server's gateway (POST /v1/llm/chat) as the token's principal; a
// sponsor, when given, pays under its grant_llm_consent (?payer=).
func (c *Client) LLMChat(ctx context.Context, body []byte, sponsor string) (LLMAnswer, error) {
	var q url.Values
	if sponsor != "" {
		q = url.Values{"payer": {sponsor}}
	}
	status, h, b, err := c.request(ctx, http.MethodPost, "/v1/llm/chat", q, body, "application/json")
	if err != nil {
		return LLMAnswer{}, err
	}
	if status < 200 || status >= 300 {
		return LLMAnswer{}, answerError(status, h, b, "POST /v1/llm/chat")
	}
	if !json.Valid(b) {
		return LLMAnswer{}, &Error{Status: status, API: api.NewError(abi.Unavailable, fmt.Sprintf("POST /v1/llm/chat: the provider's answer is not JSON (%.64q)", b))}
	}
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(h.Get(name), 10, 64)
		return n
	}
	ev, _ := strconv.ParseUint(h.Get(llm.HeaderEvent), 10, 64)
	return LLMAnswer{Response: b, InputTokens: num(llm.HeaderInputTokens), OutputTokens: num(llm.HeaderOutputTokens),
		Cost: num(llm.HeaderCost), Event: ev}, nil
}
