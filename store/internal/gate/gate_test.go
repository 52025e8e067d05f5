package gate

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGate: Close waits for the running transaction, refuses new ones, and
// a second Close reports false.
func TestGate(t *testing.T) {
	var g Gate
	require.True(t, g.Enter())
	var closed atomic.Bool
	done := make(chan struct{})
	go func() {
		require.True(t, g.Close())
		closed.Store(true)
		close(done)
	}()
	for !g.closing() {
	}
	require.False(t, closed.Load(), "Close waits for the running transaction")
	require.False(t, g.Enter(), "a closing gate refuses new ones")
	g.Exit()
	<-done
	require.True(t, closed.Load())
	require.False(t, g.Close())
}

func (g *Gate) closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
