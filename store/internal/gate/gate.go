// Package gate counts the running transactions of a store, so that Close
// can refuse new ones and wait for the running ones. Every Store
// implementation of the module uses it.
package gate

import "sync"

// Gate counts running transactions. Unlike a RWMutex, it never deadlocks
// when a closure starts a nested transaction while Close is waiting: the
// nested one is refused. The zero Gate is open.
type Gate struct {
	// mu guards closed and running; it is taken briefly by every Enter,
	// Exit and Close.
	mu      sync.Mutex
	idle    sync.Cond // signalled, with mu held, when running drops to 0
	closed  bool
	running int
}

// Enter registers a transaction; it reports false once the gate is closed.
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.running++
	return true
}

// Exit unregisters a transaction registered by Enter.
func (g *Gate) Exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.running == 0 && g.idle.L != nil {
		g.idle.Broadcast()
	}
}

// Close refuses new transactions and waits for the running ones. It
// reports false if the gate was already closed.
func (g *Gate) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	if g.idle.L == nil {
		g.idle.L = &g.mu
	}
	for g.running > 0 {
		g.idle.Wait()
	}
	return true
}
