package kernel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// fakeGateway is an LLMGateway over the kernel's own ReserveLLM and
// SettleLLM, as the HTTP gateway is: every call reserves the prompt's bytes
// plus max_tokens at 1,000 and 2,000 µ$ per 1k tokens and settles to 10
// input and min(max_tokens, 5) output tokens. Its answer echoes the
// prompt, numbered.
type fakeGateway struct {
	k *kernel.Kernel

	mu      sync.Mutex
	callers []string
	prompts []string
	charged int64 // µ$ the settlements charged
	asked   atomic.Int64
}

func (g *fakeGateway) Chat(ctx context.Context, caller, token string, req []byte, maxCost int64) (kernel.LLMAnswer, error) {
	n := g.asked.Add(1)
	var body struct {
		Model     string `json:"model"`
		MaxTokens int64  `json:"max_tokens"`
		Messages  []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(req, &body); err != nil || len(body.Messages) == 0 {
		return kernel.LLMAnswer{}, &kernel.Error{Code: abi.InvalidArgument, Msg: "not a chat request"}
	}
	call := kernel.LLMCall{Caller: caller, Model: body.Model, MaxInputTokens: int64(len(req)), MaxOutputTokens: body.MaxTokens,
		InputPrice: 1000, OutputPrice: 2000, Cap: maxCost, Token: token}
	r, res := g.k.ReserveLLM(ctx, call)
	if !res.OK {
		return kernel.LLMAnswer{}, &kernel.Error{Code: res.Code, Msg: res.Message}
	}
	u := kernel.LLMUsage{InputTokens: 10, OutputTokens: min(body.MaxTokens, 5)}
	sres := g.k.SettleLLM(ctx, r, u)
	if !sres.OK {
		return kernel.LLMAnswer{}, &kernel.Error{Code: sres.Code, Msg: sres.Message}
	}
	cost := call.LLMCost(u)
	g.mu.Lock()
	g.callers = append(g.callers, caller)
	g.prompts = append(g.prompts, body.Messages[0].Content)
	g.charged += cost
	g.mu.Unlock()
	out, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{
		"role": "assistant", "content": fmt.Sprintf("answer %d to %s", n, body.Messages[0].Content)}}}})
	return kernel.LLMAnswer{Response: out, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, Cost: cost}, nil
}

// llmReply is an LLM host call's answer as an executable decodes it.
type llmReply struct {
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
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	Cost         int64 `json:"cost_microdollars"`
}

func askLLM(calls abi.HostCalls, prompt string, maxTokens int) llmReply {
	b, _ := json.Marshal(map[string]any{"llm": map[string]any{"model": "m", "max_tokens": maxTokens,
		"messages": []any{map[string]any{"role": "user", "content": prompt}}}})
	var r llmReply
	_ = json.Unmarshal(calls.Call(b), &r)
	return r
}

// asker is an executable that asks the LLM n times (n is its method, a
// number) and writes the answers into artifact "answers"; the output is
// the answers, or the first refusal's code.
func asker(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
	n, _ := strconv.Atoi(req.Method)
	var answers []string
	for i := 0; i < n; i++ {
		r := askLLM(calls, fmt.Sprintf("q%d", i), 50)
		if !r.OK {
			return abi.InvokeResult{OK: true, Output: []byte("refused " + r.ErrorCode + ": " + r.Message)}, nil
		}
		answers = append(answers, r.Response.Choices[0].Message.Content)
	}
	text := strings.Join(answers, "|")
	w := call(calls, act(map[string]any{"kind": "write", "target": "answers", "type": "data", "text": text}))
	if w["ok"] != true {
		return abi.InvokeResult{Output: []byte(fmt.Sprint(w["error_code"], w["message"]))}, nil
	}
	return abi.InvokeResult{OK: true, Output: []byte(text)}, nil
}

// llmWorld is a world whose kernel has a fakeGateway and in which alice
// may use 1,000,000 llm_rate and llm_budget.
func llmWorld(t *testing.T, mutate func(*kernel.Config)) (*kerneltest.World, *fakeGateway) {
	w := kerneltest.NewWorld(t, mutate)
	g := &fakeGateway{k: w.K}
	w.K.SetLLMGateway(g)
	for _, p := range []string{"alice", "bob"} {
		w.Principal(t, p, 100)
		require.NoError(t, w.K.SetQuota(ctx, p, kernel.LLMRate, 1_000_000))
		require.NoError(t, w.K.SetQuota(ctx, p, kernel.LLMBudget, 1_000_000))
	}
	w.DeployExecutable(t, "bob", "asker", "allow-all", asker)
	return w, g
}

func invokeLLM(caller, target, method string, maxLLMCost int64) kernel.Action {
	a := invoke(caller, target, method)
	a.MaxLLMCost = &maxLLMCost
	return a
}

func budgetUsed(t *testing.T, w *kerneltest.World, p string) int64 {
	t.Helper()
	st, err := w.K.QuotaStatus(ctx, p, kernel.LLMBudget)
	require.NoError(t, err)
	return st.Used
}

// TestExecutableLLMCall: an executable's LLM host calls go to the gateway
// as its caller, once each (the action's reruns answer from its tape),
// and the caller's llm_budget is charged what the gateway settled.
func TestExecutableLLMCall(t *testing.T) {
	w, g := llmWorld(t, nil)
	// What an invoke that calls no LLM is charged: its check and one run.
	requireCode(t, abi.OK, w.Do(invokeLLM("alice", "asker", "0", 10_000)))
	evs, err := w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	plain := evs[len(evs)-1].CPU
	require.Positive(t, plain)

	a := invokeLLM("alice", "asker", "3", 10_000)
	a.Token = "agent-1"
	res := w.Do(a)
	requireCode(t, abi.OK, res)
	require.Equal(t, "answer 1 to q0|answer 2 to q1|answer 3 to q2", string(res.Output))
	require.Equal(t, int64(3), g.asked.Load(), "each call is asked once, however often the action reran")
	require.Equal(t, []string{"alice", "alice", "alice"}, g.callers, "as the invoking caller")
	require.Equal(t, g.charged, budgetUsed(t, w, "alice"), "the caller pays what the calls were charged")
	require.Zero(t, budgetUsed(t, w, "bob"), "never the executable's author")

	evs, err = w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	var kinds []kernel.Kind
	for _, ev := range evs[len(evs)-5:] {
		kinds = append(kinds, ev.Kind)
	}
	require.Equal(t, []kernel.Kind{kernel.KindLLMCall, kernel.KindLLMCall, kernel.KindLLMCall, kernel.KindWrite, kernel.KindInvoke}, kinds)
	for _, ev := range evs[len(evs)-5:] {
		require.Equal(t, "agent-1", ev.Token, "%s: the executable's calls and actions are the top-level token's use", ev.Kind)
	}
	inv := evs[len(evs)-1]
	// 3 interrupted runs besides the last one, 1 µs each (the fake
	// evaluator); the contract's check is not run again.
	require.Equal(t, plain+3, inv.CPU, "the runs the calls interrupted are charged and shown")
	got, code := readText(t, w, "alice", "answers")
	require.Equal(t, abi.OK, code)
	require.Equal(t, string(res.Output), got)
}

// TestExecutableLLMNeedsMaxLLMCost: an executable cannot spend its
// caller's llm_budget unless the invoke allows it; the refusals are the
// kernel's (nothing reaches the gateway) and cap what the calls cost.
func TestExecutableLLMNeedsMaxLLMCost(t *testing.T) {
	w, g := llmWorld(t, nil)
	res := w.Do(invoke("alice", "asker", "1"))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "refused PERMISSION_DENIED")
	require.Contains(t, string(res.Output), "max_llm_cost")
	require.Zero(t, g.asked.Load())
	require.Zero(t, budgetUsed(t, w, "alice"))

	// A cap below one call's reservation: refused by the reservation,
	// nothing taken. (A call reserves its prompt's bytes at 1 µ$/token
	// and 50 output tokens at 2: above 100.)
	res = w.Do(invokeLLM("alice", "asker", "1", 100))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "refused COST_LIMIT_EXCEEDED")
	require.Zero(t, budgetUsed(t, w, "alice"), "nothing reserved above the cap")

	// A cap that covers one call's reservation (173 µ$: 73 prompt bytes,
	// 50 output tokens) but not two: the second is refused, and the two
	// never cost more than the cap.
	asked := g.asked.Load()
	res = w.Do(invokeLLM("alice", "asker", "2", 190))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "refused COST_LIMIT_EXCEEDED")
	require.Equal(t, asked+2, g.asked.Load(), "the second call reached the gateway, whose reservation refused it")
	require.LessOrEqual(t, budgetUsed(t, w, "alice"), int64(190))
	require.Positive(t, budgetUsed(t, w, "alice"))

	// max_llm_cost belongs to invoke, and is never negative.
	neg := int64(-1)
	requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "asker", Method: "1", MaxLLMCost: &neg}))
	one := int64(1)
	requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1, MaxLLMCost: &one}))
}

// TestExecutableLLMAskBound: however many LLM calls an executable makes,
// one action asks the gateway at most 16 times (each ask reruns it).
func TestExecutableLLMAskBound(t *testing.T) {
	w, g := llmWorld(t, nil)
	res := w.Do(invokeLLM("alice", "asker", "100", 1_000_000))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "refused INVALID_ARGUMENT: more than 16 LLM calls")
	require.Equal(t, int64(16), g.asked.Load())
	require.Equal(t, g.charged, budgetUsed(t, w, "alice"))
}

// TestExecutableLLMNoGateway: a kernel without a gateway answers the call
// UNAVAILABLE, at once.
func TestExecutableLLMNoGateway(t *testing.T) {
	w, g := llmWorld(t, nil)
	w.K.SetLLMGateway(nil)
	res := w.Do(invokeLLM("alice", "asker", "1", 10_000))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "refused UNAVAILABLE")
	require.Zero(t, g.asked.Load())
}

// TestExecutableLLMNested: a call made by an executable that another
// executable invoked goes to the gateway as that invocation's caller, and
// its answer comes back up; a nested action cannot raise max_llm_cost.
func TestExecutableLLMNested(t *testing.T) {
	w, g := llmWorld(t, nil)
	w.DeployExecutable(t, "bob", "outer", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		if req.Method == "raise" {
			r := call(calls, act(map[string]any{"kind": "invoke", "target": "asker", "method": "1", "max_llm_cost": 1}))
			return abi.InvokeResult{OK: true, Output: []byte(fmt.Sprint(r["error_code"], ": ", r["message"]))}, nil
		}
		r := call(calls, act(map[string]any{"kind": "invoke", "target": "asker", "method": "2"}))
		out, _ := r["output"].(string)
		b, _ := json.Marshal(out)
		var raw []byte
		_ = json.Unmarshal(b, &raw)
		return abi.InvokeResult{OK: r["ok"] == true, Output: raw}, nil
	})
	res := w.Do(invokeLLM("alice", "outer", "", 10_000))
	requireCode(t, abi.OK, res)
	require.Equal(t, "answer 1 to q0|answer 2 to q1", string(res.Output))
	require.Equal(t, []string{"alice", "alice"}, g.callers)

	res = w.Do(invokeLLM("alice", "outer", "raise", 10_000))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "INVALID_ARGUMENT: max_llm_cost belongs to top-level invokes")
	require.Equal(t, int64(2), g.asked.Load())

	// bob granted "outer" standing; alice's invoke runs asker as bob: its
	// LLM call would spend bob's budget under alice's max_llm_cost, which
	// is no word of bob's. Refused, nothing asked.
	w.GrantStanding(t, "bob", "outer")
	w.DeployExecutable(t, "bob", "as-bob", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		r := call(calls, map[string]any{"as": "bob", "action": map[string]any{"kind": "invoke", "target": "asker", "method": "1"}})
		out, _ := r["output"].(string)
		b, _ := json.Marshal(out)
		var raw []byte
		_ = json.Unmarshal(b, &raw)
		return abi.InvokeResult{OK: true, Output: raw}, nil
	})
	w.GrantStanding(t, "bob", "as-bob")
	res = w.Do(invokeLLM("alice", "as-bob", "", 10_000))
	requireCode(t, abi.OK, res)
	require.Contains(t, string(res.Output), "refused PERMISSION_DENIED: an LLM call is made as the top-level caller")
	require.Equal(t, int64(2), g.asked.Load())
	require.Zero(t, budgetUsed(t, w, "bob"))
}

// TestExecutableLLMStateChanges: an action whose state changes between the
// attempt that asked and the one that reruns asks again for the new
// question, never answers it with the old one, and its caller pays no
// more than its max_llm_cost in all. Concurrent invokers race on a counter
// that goes into each prompt.
func TestExecutableLLMStateChanges(t *testing.T) {
	w, g := llmWorld(t, nil)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "count", Type: "data", Contract: "allow-all", Content: []byte("0")}))
	w.DeployExecutable(t, "bob", "tick", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		r := call(calls, act(map[string]any{"kind": "read", "target": "count"}))
		content, _ := r["content"].(string)
		var b []byte
		_ = json.Unmarshal([]byte(strconv.Quote(content)), &b)
		n, _ := strconv.Atoi(string(b))
		a := askLLM(calls, fmt.Sprintf("count=%d", n), 5)
		if !a.OK {
			return abi.InvokeResult{Output: []byte(a.ErrorCode + ": " + a.Message)}, nil
		}
		got := a.Response.Choices[0].Message.Content
		if !strings.HasSuffix(got, fmt.Sprintf(" to count=%d", n)) {
			return abi.InvokeResult{Output: []byte("answered for another state: " + got)}, nil
		}
		wr := call(calls, act(map[string]any{"kind": "write", "target": "count", "type": "data", "text": strconv.Itoa(n + 1)}))
		return abi.InvokeResult{OK: wr["ok"] == true, Output: []byte(got)}, nil
	})
	const workers, each = 4, 5
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			me := []string{"alice", "bob"}[i%2]
			for j := 0; j < each; j++ {
				res := w.Do(invokeLLM(me, "tick", "", 200))
				if res.OK {
					ok.Add(1)
				} else {
					require.Equal(t, abi.ExecutionFailed, res.Code, res.Message)
					require.NotContains(t, res.Message, "answered for another state")
				}
			}
		}(i)
	}
	wg.Wait()
	got, _ := readText(t, w, "alice", "count")
	require.Equal(t, strconv.FormatInt(ok.Load(), 10), got, "every committed tick counted once")
	require.Positive(t, ok.Load())
	require.GreaterOrEqual(t, g.asked.Load(), ok.Load())
	require.Equal(t, g.charged, budgetUsed(t, w, "alice")+budgetUsed(t, w, "bob"), "the callers paid exactly what the gateway charged")
	require.LessOrEqual(t, budgetUsed(t, w, "alice"), int64(200*workers/2*each), "within max_llm_cost per action")
}

// TestExecutableLLMReplay: a recorded world whose executables call an LLM
// replays with no gateway at all, every result and the final state as
// recorded: the answers come from the records' tapes.
func TestExecutableLLMReplay(t *testing.T) {
	w, g := llmWorld(t, func(c *kernel.Config) { c.Record = true })
	w.DeployExecutable(t, "bob", "fails", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		a := askLLM(calls, "then fail", 5)
		return abi.InvokeResult{Output: []byte("failing after " + strconv.FormatBool(a.OK))}, nil
	})
	requireCode(t, abi.OK, w.Do(invokeLLM("alice", "asker", "2", 10_000)))
	requireCode(t, abi.OK, w.Do(invoke("alice", "asker", "1")))                      // refused: no max_llm_cost
	requireCode(t, abi.OK, w.Do(invokeLLM("bob", "asker", "20", 1_000_000)))         // 16 asks, then refused
	requireCode(t, abi.ExecutionFailed, w.Do(invokeLLM("alice", "fails", "", 1000))) // rolled back, the call paid
	require.Equal(t, int64(2+16+1), g.asked.Load())

	recs, err := kernel.Records(w.Store, 0, 100000)
	require.NoError(t, err)
	taped := 0
	for _, r := range recs {
		taped += len(r.Tape)
	}
	require.Equal(t, 2+1+17+1, taped, "every LLM host call is on its action's tape, refusals included")

	// The replaying kernel's evaluator runs the same programs; it has no
	// gateway, so any call not answered from the tape would diverge.
	st, err := replayInto(t, w, recs)
	require.NoError(t, err)
	want, err := kernel.StateHash(w.Store)
	require.NoError(t, err)
	got, err := kernel.StateHash(st)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, int64(19), g.asked.Load(), "the replay asked nothing")

	// A tape that answers another question diverges.
	for i := range recs {
		if len(recs[i].Tape) > 0 {
			recs[i].Tape[0].Request = strings.Repeat("0", 64)
			break
		}
	}
	_, err = replayInto(t, w, recs)
	var d *kernel.Divergence
	require.ErrorAs(t, err, &d)
}
