package postgres

import (
	"github.com/kernelhost/kernelhost/store"
	gatepkg "github.com/kernelhost/kernelhost/store/internal/gate"
)

// gate counts running transactions so that Close can refuse new ones and
// wait for the running ones (package gate, shared with the store package's
// implementations), answering store.ErrClosed.
type gate struct{ g gatepkg.Gate }

// enter registers a transaction, or returns store.ErrClosed.
func (g *gate) enter() error {
	if !g.g.Enter() {
		return store.ErrClosed
	}
	return nil
}

// exit unregisters a transaction registered by enter.
func (g *gate) exit() { g.g.Exit() }

// close refuses new transactions and waits for the running ones. It returns
// store.ErrClosed if the gate was already closed.
func (g *gate) close() error {
	if !g.g.Close() {
		return store.ErrClosed
	}
	return nil
}
