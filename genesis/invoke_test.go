package genesis_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestInvokeEndToEnd runs a real wasm executable (host/testdata/exec.wat)
// through the kernel and the wazero host.
func TestInvokeEndToEnd(t *testing.T) {
	exec, err := os.ReadFile("../host/testdata/exec.wasm")
	require.NoError(t, err)
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice", Balance: 100}, {ID: "bob"}}})
	do := func(a kernel.Action) kernel.Result { return k.Do(ctx, a) }
	res := do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "tool", Type: kernel.TypeExecutable, Content: exec})
	require.True(t, res.OK, res.Message)
	inv := func(caller, method, args string) kernel.Result {
		return do(kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: "tool", Method: method, Args: []byte(args)})
	}

	t.Run("host calls act as the caller", func(t *testing.T) {
		res := inv("alice", "call", `{"action":{"kind":"transfer","to":"bob","amount":7}}`)
		require.True(t, res.OK, res.Message)
		require.Contains(t, string(res.Output), `"ok":true`)
		p, err := k.Principal(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, uint64(7), p.Balance)
		// bob invoking the same tool moves bob's scrip, never alice's.
		res = inv("bob", "call", `{"action":{"kind":"transfer","to":"alice","amount":50}}`)
		require.True(t, res.OK, res.Message)
		require.Contains(t, string(res.Output), "INSUFFICIENT_FUNDS")
	})
	t.Run("a trap rolls back every write", func(t *testing.T) {
		res := inv("alice", "trap", `{"action":{"kind":"write","target":"partial","type":"data","text":"half"}}`)
		require.Equal(t, abi.ExecutionFailed, res.Code, res.Message)
		got := do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "partial"})
		require.Equal(t, abi.NotFound, got.Code, "the write inside the trapped invocation was rolled back")
	})
	t.Run("an error result rolls back too", func(t *testing.T) {
		res := inv("alice", "fail", "")
		require.Equal(t, abi.ExecutionFailed, res.Code)
		require.Contains(t, res.Message, "failed on purpose")
	})
	t.Run("an infinite loop is stopped by its fuel and charged exactly", func(t *testing.T) {
		require.NoError(t, k.SetQuota(ctx, "alice", kernel.CPURate, 200_000)) // 0.2 CPU-s per window
		before, err := k.QuotaStatus(ctx, "alice", kernel.CPURate)
		require.NoError(t, err)
		start := time.Now()
		res := inv("alice", "spin", "")
		require.Equal(t, abi.OutOfFuel, res.Code, res.Message)
		require.Less(t, time.Since(start), 30*time.Second)
		after, err := k.QuotaStatus(ctx, "alice", kernel.CPURate)
		require.NoError(t, err)
		// The budget was the invoke contract's check plus everything alice
		// had left; the loop used all of it: the charge is exact and the
		// same on every machine.
		require.Equal(t, before.Available, after.Used-before.Used)
		require.Equal(t, int64(0), after.Available)
		require.Greater(t, res.Fuel, uint64(100_000_000))
		// The window is used up: the next invocation is refused before it
		// runs, with a retriable error.
		res = inv("alice", "spin", "")
		require.Equal(t, abi.QuotaExceeded, res.Code, res.Message)
		require.True(t, res.Retriable)
		require.Equal(t, "cpu_rate", res.Resource)
	})
	require.NoError(t, k.CheckLedger(ctx))
}

// A module of the wrong kind is refused at deploy with CONTRACT_INVALID: an
// executable deployed as a contract, a contract deployed as an executable.
func TestDeployChecksModuleKind(t *testing.T) {
	exec, err := os.ReadFile("../host/testdata/exec.wasm")
	require.NoError(t, err)
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice"}}})
	for _, tc := range []struct {
		typ  string
		wasm []byte
		want string
	}{
		{kernel.TypeContract, exec, "must export kh_check"},
		{kernel.TypeExecutable, genesis.Contracts()[genesis.Freeware], "must export kh_invoke"},
	} {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "m-" + tc.typ, Type: tc.typ, Content: tc.wasm})
		require.Equal(t, abi.ContractInvalid, res.Code, res.Message)
		require.Contains(t, res.Message, tc.want)
	}
	// The right kinds deploy.
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "tool", Type: kernel.TypeExecutable, Content: exec})
	require.True(t, res.OK, res.Message)
	// Replacing an executable's code with a contract's is refused too.
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "tool", Content: genesis.Contracts()[genesis.Freeware]})
	require.Equal(t, abi.ContractInvalid, res.Code, res.Message)
}
