package hostile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestExplainDoesNotChangeState: explaining an action runs its contract,
// but leaves no trace in the contract's state: with a contract that counts
// its calls in memory and in a global and allows only the first call of an
// instance (host/testdata/counter.wat), every Do after any number of
// explains gets the decision a Do with no explain before it gets, and so
// does every explain. Before the per-call reset, one `check --explain`
// advanced the counter and the next read was denied.
func TestExplainDoesNotChangeState(t *testing.T) {
	w := newWorld(t, true)
	defer w.close(t)
	counter, err := os.ReadFile(filepath.Join("..", "..", "host", "testdata", "counter.wasm"))
	require.NoError(t, err)
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: "c/counter", Type: kernel.TypeContract, Content: counter})
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: "d/counted", Type: "data", Contract: "c/counter", Content: []byte("x")})
	read := kernel.Action{Kind: kernel.KindRead, Caller: alice, Target: "d/counted"}

	first := w.k.Do(ctx, read)
	require.True(t, first.OK, "the first call of a fresh instance is allowed: %s", first.Message)
	for i := 0; i < 20; i++ {
		ex, err := w.k.Explain(ctx, read)
		require.NoError(t, err)
		require.NotNil(t, ex.Decision)
		require.True(t, ex.Decision.Allowed, "explain %d saw a changed contract", i)
		res := w.k.Do(ctx, read)
		require.Equal(t, abi.OK, res.Code, "read %d after %d explains: %s", i, i+1, res.Message)
		require.Equal(t, first.Decision, res.Decision)
	}
}
