package postgres

import (
	"sync"

	"github.com/kernelhost/kernelhost/store"
)

// gate counts running transactions so that Close can refuse new ones and
// wait for the running ones (the store package's implementations have the
// same, unexported). A closure that starts a nested View while Close waits
// is refused with ErrClosed instead of deadlocking, as a RWMutex would.
type gate struct {
	mu      sync.Mutex
	idle    sync.Cond // signalled, with mu held, when running drops to 0
	closed  bool
	running int
}

// enter registers a transaction, or returns store.ErrClosed.
func (g *gate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return store.ErrClosed
	}
	g.running++
	return nil
}

// exit unregisters a transaction registered by enter.
func (g *gate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.running == 0 && g.idle.L != nil {
		g.idle.Broadcast()
	}
}

// close refuses new transactions and waits for the running ones. It returns
// store.ErrClosed if the gate was already closed.
func (g *gate) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return store.ErrClosed
	}
	g.closed = true
	if g.idle.L == nil {
		g.idle.L = &g.mu
	}
	for g.running > 0 {
		g.idle.Wait()
	}
	return nil
}
