package kernel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// call performs a host call from a fake executable and decodes the result.
func call(calls abi.HostCalls, req map[string]any) map[string]any {
	b, _ := json.Marshal(req)
	var out map[string]any
	_ = json.Unmarshal(calls.Call(b), &out)
	return out
}

func act(a map[string]any) map[string]any { return map[string]any{"action": a} }

// counter increments the number stored in artifact "count", as the caller.
func counter(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
	r := call(calls, act(map[string]any{"kind": "read", "target": "count"}))
	n := 0
	if r["ok"] == true {
		content, _ := r["content"].(string) // base64
		var b []byte
		_ = json.Unmarshal([]byte(strconv.Quote(content)), &b)
		n, _ = strconv.Atoi(string(b))
	}
	w := call(calls, act(map[string]any{"kind": "write", "target": "count", "type": "data", "text": strconv.Itoa(n + 1)}))
	if w["ok"] != true {
		return abi.InvokeResult{Output: []byte(fmt.Sprint("counter: ", w["error_code"], ": ", w["message"]))}, nil
	}
	return abi.InvokeResult{OK: true, Output: []byte(strconv.Itoa(n + 1))}, nil
}

func invoke(caller, target, method string) kernel.Action {
	return kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: target, Method: method}
}

func readText(t *testing.T, w *kerneltest.World, caller, id string) (string, abi.Code) {
	t.Helper()
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: id})
	return string(res.Content), res.Code
}

func TestInvoke(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	w.DeployExecutable(t, "alice", "counter", "freeware", counter)

	res := w.Do(invoke("alice", "counter", "incr"))
	requireCode(t, abi.OK, res)
	require.Equal(t, "1", string(res.Output))
	res = w.Do(invoke("alice", "counter", "incr"))
	requireCode(t, abi.OK, res)
	require.Equal(t, "2", string(res.Output))
	got, _ := readText(t, w, "bob", "count")
	require.Equal(t, "2", got)

	// Host calls run as the caller: bob may invoke the freeware counter, but
	// its write of alice's freeware artifact is judged as bob's, and denied;
	// the whole invocation fails.
	before := snapshot(t, w.Store)
	res = w.Do(invoke("bob", "counter", "incr"))
	requireCode(t, abi.ExecutionFailed, res)
	require.Contains(t, res.Message, "PERMISSION_DENIED")
	require.Equal(t, before, snapshot(t, w.Store))

	// The executable's events are nested one level deeper than the invoke.
	evs, err := w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	var nested int
	for _, ev := range evs {
		if ev.Depth == 1 {
			nested++
			require.Equal(t, "alice", ev.Caller)
		}
	}
	require.Equal(t, 4, nested, "two reads and two writes inside alice's invocations; bob's failed one left none")
}

// An access contract judges invoke like any action, and may charge for it.
func TestInvokeJudgedByContract(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "stranger", 10)
	w.DeployExecutable(t, "alice", "secret", "private", counter)
	before := snapshot(t, w.Store)
	res := w.Do(invoke("stranger", "secret", "incr"))
	requireCode(t, abi.PermissionDenied, res)
	require.Equal(t, before, snapshot(t, w.Store))

	w.Deploy(t, "alice", "pay-to-run", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionInvoke {
			return abi.Decision{Allowed: true, Cost: 3, Payee: "alice"}, nil
		}
		return abi.Decision{Allowed: req.Caller == "stranger"}, nil
	})
	w.DeployExecutable(t, "alice", "paid", "pay-to-run", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		return abi.InvokeResult{OK: true, Output: []byte(req.Method + ":" + string(req.Args))}, nil
	})
	a := invoke("stranger", "paid", "echo")
	a.Args = []byte("hi")
	res = w.Do(a)
	requireCode(t, abi.OK, res)
	require.Equal(t, "echo:hi", string(res.Output))
	require.Equal(t, uint64(7), w.Balance(t, "stranger"))
	require.Equal(t, uint64(3), w.Balance(t, "alice"))

	// Only executables can be invoked.
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
	requireCode(t, abi.InvalidArgument, w.Do(invoke("alice", "doc", "run")))
}

// A trap, or an error result, rolls back every write of the invocation,
// including the contract's charge; only the failed invoke's event remains.
func TestInvokeRollsBack(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 0)
	for name, fail := range map[string]func() (abi.InvokeResult, error){
		"trap":  func() (abi.InvokeResult, error) { return abi.InvokeResult{}, errors.New("wasm trap: unreachable") },
		"error": func() (abi.InvokeResult, error) { return abi.InvokeResult{Output: []byte("changed my mind")}, nil },
	} {
		t.Run(name, func(t *testing.T) {
			id := "flaky-" + name
			w.DeployExecutable(t, "alice", id, "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
				for _, r := range []map[string]any{
					act(map[string]any{"kind": "write", "target": "scratch-" + name, "type": "data", "text": "partial"}),
					act(map[string]any{"kind": "transfer", "to": "bob", "amount": 40}),
				} {
					if res := call(calls, r); res["ok"] != true {
						return abi.InvokeResult{}, fmt.Errorf("setup: %v", res)
					}
				}
				return fail()
			})
			before := snapshot(t, w.Store)
			evsBefore, err := w.K.Events(ctx, 0, 0)
			require.NoError(t, err)
			res := w.Do(invoke("alice", id, "go"))
			requireCode(t, abi.ExecutionFailed, res)
			require.Nil(t, res.Charges)
			require.Equal(t, before, snapshot(t, w.Store), "no partial writes")
			require.Equal(t, uint64(100), w.Balance(t, "alice"))
			evs, err := w.K.Events(ctx, evsBefore[len(evsBefore)-1].Seq, 0)
			require.NoError(t, err)
			require.Len(t, evs, 1, "only the failed invoke is recorded")
			require.Equal(t, "EXECUTION_FAILED", evs[0].Code)
			require.Equal(t, kernel.KindInvoke, evs[0].Kind)
		})
	}
	require.NoError(t, w.K.CheckLedger(ctx))
}

// Nested invocation is allowed down to the depth limit and no deeper.
func TestInvokeDepthLimit(t *testing.T) {
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.MaxDepth = 3 })
	w.Principal(t, "alice", 0)
	var deepest uint32
	w.DeployExecutable(t, "alice", "recurse", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		deepest = max(deepest, req.Depth)
		r := call(calls, act(map[string]any{"kind": "invoke", "target": "recurse", "method": "down"}))
		if r["ok"] != true {
			return abi.InvokeResult{Output: []byte(fmt.Sprint(r["error_code"]))}, nil
		}
		return abi.InvokeResult{OK: true}, nil
	})
	res := w.Do(invoke("alice", "recurse", "down"))
	requireCode(t, abi.ExecutionFailed, res)
	require.Equal(t, uint32(3), deepest, "depths 0..3 ran")
	require.Contains(t, res.Message, "DEPTH_EXCEEDED")

	// A bounded recursion within the limit succeeds.
	w.DeployExecutable(t, "alice", "twice", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		if req.Depth < 2 {
			if r := call(calls, act(map[string]any{"kind": "invoke", "target": "twice"})); r["ok"] != true {
				return abi.InvokeResult{Output: []byte(fmt.Sprint(r))}, nil
			}
		}
		return abi.InvokeResult{OK: true, Output: []byte{byte('0' + req.Depth)}}, nil
	})
	res = w.Do(invoke("alice", "twice", ""))
	requireCode(t, abi.OK, res)
}

// Host calls cannot bypass anything: identity is the caller's, acting as
// another principal needs its standing grant, queries work, malformed calls
// get errors.
func TestInvokeHostCalls(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 50)
	w.Principal(t, "bob", 0)
	w.Principal(t, "vault", 500) // the principal the executable vault acts as
	var got []map[string]any
	prog := func(reqs ...map[string]any) kerneltest.Program {
		return func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
			got = got[:0]
			for _, r := range reqs {
				got = append(got, call(calls, r))
			}
			calls.Log([]byte("done"))
			return abi.InvokeResult{OK: true}, nil
		}
	}
	w.DeployExecutable(t, "alice", "probe", "allow-all", prog(
		map[string]any{"query": "balance", "principal": "alice"},
		map[string]any{"query": "quota", "principal": "bob", "resource": "disk"},
		act(map[string]any{"kind": "transfer", "to": "bob", "amount": 5}),
		map[string]any{"action": map[string]any{"kind": "transfer", "to": "bob", "amount": 5}, "as_self": true},
		act(map[string]any{"kind": "transfer", "to": "bob", "amount": 5, "caller": "vault"}),
		act(map[string]any{"kind": "edit", "target": "probe", "created_by": "bob"}),
		map[string]any{"query": "secrets"},
		map[string]any{},
		map[string]any{"action": map[string]any{"kind": "transfer", "to": "bob", "amount": 5}, "as": "vault"},
		map[string]any{"action": map[string]any{"kind": "transfer", "to": "bob", "amount": 5}, "as": "../vault"},
	))
	res := w.Do(invoke("alice", "probe", ""))
	requireCode(t, abi.OK, res)
	require.Equal(t, []string{"done"}, res.Logs)
	require.Equal(t, true, got[0]["ok"])
	require.Equal(t, float64(50), got[0]["balance"])
	require.Equal(t, float64(1_000_000), got[1]["quotas"].([]any)[0].(map[string]any)["quota"])
	require.Equal(t, true, got[2]["ok"], "the caller's own scrip moves")
	require.Equal(t, "INVALID_ARGUMENT", got[3]["error_code"], "as_self is gone")
	require.Equal(t, "INVALID_ARGUMENT", got[4]["error_code"], "a host call cannot name the caller")
	require.Equal(t, "IMMUTABLE_FIELD", got[5]["error_code"])
	require.Equal(t, "INVALID_ARGUMENT", got[6]["error_code"])
	require.Equal(t, "INVALID_ARGUMENT", got[7]["error_code"])
	require.Equal(t, "NO_STANDING", got[8]["error_code"], "vault never granted probe standing")
	require.Equal(t, "INVALID_ARGUMENT", got[9]["error_code"])
	require.Equal(t, uint64(45), w.Balance(t, "alice"))
	require.Equal(t, uint64(5), w.Balance(t, "bob"))

	// An executable that vault granted standing acts as vault with "as".
	w.DeployExecutable(t, "alice", "vault", "allow-all", prog(
		map[string]any{"action": map[string]any{"kind": "transfer", "to": "bob", "amount": 100}, "as": "vault"},
	))
	w.GrantStanding(t, "vault", "vault")
	requireCode(t, abi.OK, w.Do(invoke("alice", "vault", "")))
	require.Equal(t, true, got[0]["ok"])
	require.Equal(t, uint64(400), w.Balance(t, "vault"))
	require.Equal(t, uint64(105), w.Balance(t, "bob"))
	require.NoError(t, w.K.CheckLedger(ctx))
}
