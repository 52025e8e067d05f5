package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/kernel"
)

// TestKinds lists every kind an action (and so an event) can have.
func TestKinds(t *testing.T) {
	ks := kernel.Kinds()
	require.Contains(t, ks, kernel.KindRead)
	require.Contains(t, ks, kernel.KindRedeemRight)
	require.IsIncreasing(t, ks)
	for _, k := range ks {
		require.True(t, kernel.KnownKind(k))
	}
	require.False(t, kernel.KnownKind("tranfser"))
	require.True(t, kernel.KnownKind(kernel.KindLLMCall), "an event kind, not an action's: the events filter takes it")
	require.NotContains(t, kernel.Kinds(), kernel.KindLLMCall, "no client sends it")
}
