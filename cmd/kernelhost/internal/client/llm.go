package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
	"github.com/kernelhost/kernelhost/kernel"
)

// LLMChat posts body, a chat-completions request that is not streamed, to
// the server's gateway (POST /v1/llm/chat) as the token's principal; a
// sponsor, when given, pays under its grant_llm_consent (?payer=). The
// answer is the provider's JSON and what the call was charged (the
// X-Kernelhost-Llm-* headers), as an executable's call gets them.
func (c *Client) LLMChat(ctx context.Context, body []byte, sponsor string) (kernel.LLMAnswer, error) {
	var q url.Values
	if sponsor != "" {
		q = url.Values{"payer": {sponsor}}
	}
	status, h, b, err := c.request(ctx, http.MethodPost, "/v1/llm/chat", q, body, "application/json")
	if err != nil {
		return kernel.LLMAnswer{}, err
	}
	if status < 200 || status >= 300 {
		return kernel.LLMAnswer{}, answerError(status, h, b, "POST /v1/llm/chat")
	}
	if !json.Valid(b) {
		return kernel.LLMAnswer{}, &Error{Status: status, API: api.NewError(abi.Unavailable, fmt.Sprintf("POST /v1/llm/chat: the provider's answer is not JSON (%.64q)", b))}
	}
	return llm.AnswerOf(h, b), nil
}
