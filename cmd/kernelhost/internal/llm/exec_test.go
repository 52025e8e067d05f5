package llm_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// execReply is an LLM host call's answer as an executable decodes it.
type execReply struct {
	OK        bool   `json:"ok"`
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
	Response  struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	} `json:"response"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	Cost         int64  `json:"cost_microdollars"`
	Event        uint64 `json:"event"`
}

// TestLLMExecutableCall: an executable's LLM host call goes through the
// gateway (Gateway.Chat, set on the kernel as serve does) to the real
// upstream over HTTP, as the invoking principal, reserved and settled like
// a call to POST /v1/llm/chat: the provider's answer reaches the
// executable with what it cost, the caller's quotas and the llm_call event
// agree. A streamed request and a call above the invoke's max_llm_cost are
// refused before anything is sent.
func TestLLMExecutableCall(t *testing.T) {
	e := newEnv(t, answer("hello from upstream", 12, 7), nil)
	e.w.K.SetLLMGateway(e.gw)
	var got []execReply
	e.w.Principal(t, "bob", 0)
	e.w.DeployExecutable(t, "bob", "thinker", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		var r execReply
		_ = json.Unmarshal(calls.Call([]byte(`{"llm":`+string(req.Args)+`}`)), &r)
		got = append(got, r)
		if !r.OK {
			return abi.InvokeResult{OK: true, Output: []byte(r.ErrorCode)}, nil
		}
		return abi.InvokeResult{OK: true, Output: []byte(r.Response.Choices[0].Message.Content)}, nil
	})
	invoke := func(body string, maxLLMCost int64) kernel.Result {
		return e.w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "thinker", Args: []byte(body), MaxLLMCost: &maxLLMCost})
	}

	res := invoke(hello, 1000)
	require.True(t, res.OK, res.Message)
	require.Equal(t, "hello from upstream", string(res.Output))
	reqs := e.up.requests()
	require.Len(t, reqs, 1, "asked once: the rerun answered from the tape")
	require.Equal(t, "Bearer "+testKey, reqs[0].header.Get("Authorization"))
	last := got[len(got)-1]
	require.Equal(t, int64(12), last.InputTokens)
	require.Equal(t, int64(7), last.OutputTokens)
	require.Equal(t, int64(12+2*7), last.Cost)
	evs := e.llmEvents(t)
	require.Len(t, evs, 1)
	requireEvent(t, evs[0], 12, 7, 26)
	require.Equal(t, evs[0].Seq, last.Event)
	require.Equal(t, int64(26), e.used(t, kernel.LLMBudget))
	require.Equal(t, int64(19), e.used(t, kernel.LLMRate))

	// The reservation (33 + 100 tokens: 233 µ$) is above a cap of 200:
	// refused before sending, nothing charged.
	res = invoke(hello, 200)
	require.True(t, res.OK, res.Message)
	require.Equal(t, "COST_LIMIT_EXCEEDED", string(res.Output))
	require.Len(t, e.up.requests(), 1)
	require.Equal(t, int64(26), e.used(t, kernel.LLMBudget))

	res = invoke(`{"model":"test-model","messages":[{"role":"user","content":"hello"}],"stream":true}`, 1000)
	require.True(t, res.OK, res.Message)
	require.Equal(t, "INVALID_ARGUMENT", string(res.Output))
	res = invoke(`{"model":"no-such-model","messages":[{"role":"user","content":"hello"}]}`, 1000)
	require.True(t, res.OK, res.Message)
	require.Equal(t, "INVALID_ARGUMENT", string(res.Output))
	require.Len(t, e.up.requests(), 1, "nothing else was sent")
	require.Len(t, e.llmEvents(t), 1)
}
