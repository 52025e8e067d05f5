package store

import (
	"bytes"
	"fmt"

	gatepkg "github.com/kernelhost/kernelhost/store/internal/gate"
)

// Store is an ordered key-value store with closure transactions.
//
// Store is safe for concurrent use. A closure passed to View or Update must
// not start another transaction on the same Store: with [NewMem] a nested
// Update deadlocks, and Close waits for every running closure.
type Store interface {
	// View runs fn in a read-only transaction over a consistent snapshot:
	// commits that happen while fn runs are not seen. It returns fn's error
	// unchanged, or ErrClosed.
	View(fn func(Txn) error) error

	// Update runs fn in a read-write transaction and commits it if fn returns
	// nil; on every other path (error, panic) the writes are discarded. It
	// returns fn's error unchanged, or a commit error: ErrConflict (wrapped)
	// when a serialisable conflict aborts the commit, ErrTxnTooBig (wrapped),
	// or ErrClosed. Update does not retry; the caller decides.
	//
	// Once Update returns nil the writes are durable, unless the store was
	// opened with BadgerOptions.NoSync or in memory.
	Update(fn func(Txn) error) error

	// Close waits for running transactions to finish, then releases the
	// store. Later calls to View, Update and Close return ErrClosed.
	Close() error
}

// DeferredSync is implemented by a Store whose commits can be made durable
// apart from committing them (Badger's): a group committer runs its next
// batch while the last one is being synced, instead of waiting.
type DeferredSync interface {
	// UpdateDeferred is Update, except that it may return before the
	// commit is durable: the writes are visible to later transactions at
	// once, and durable once a later Sync returns nil.
	UpdateDeferred(fn func(Txn) error) error
	// Sync returns once every commit that returned before it was called is
	// durable. It returns ErrClosed after Close.
	Sync() error
}

// Locker is implemented by the Txn of a store several processes share
// (store/postgres): GetForUpdate is Get that also locks the key against
// every other transaction that writes or locks it, until this one ends
// (SELECT ... FOR UPDATE). A transaction that waited for the lock while
// another committed a change to the key fails with ErrConflict. The kernel
// takes its event counter this way first thing in a batch, so that the
// batches of several nodes queue for it instead of running side by side
// and failing at commit, after all their work.
type Locker interface {
	GetForUpdate(key []byte) ([]byte, error)
}

// Txn is a transaction handed to the closure of [Store.View] or
// [Store.Update]. It reads its own writes.
//
// Txn is not safe for concurrent use, and it is valid only inside the
// closure: afterwards every method returns ErrTxnDone. Every method returns
// ErrInvalidKey (wrapped) for a key that breaks the rules of [MaxKeySize].
type Txn interface {
	// Get returns the value of key, or ErrNotFound if it is absent. The
	// returned slice is a copy the caller owns; it is never nil when err is
	// nil.
	Get(key []byte) ([]byte, error)

	// Set writes value under key. It returns ErrReadOnly in View, and
	// ErrTxnTooBig (wrapped) when the transaction holds too many writes.
	//
	// NB: the store may keep key and value until the transaction ends: the
	// caller must not modify them after Set until Update returns.
	Set(key, value []byte) error

	// Delete removes key; deleting an absent key is not an error. It returns
	// ErrReadOnly in View, and ErrTxnTooBig (wrapped) like Set.
	Delete(key []byte) error

	// Iterate calls fn for every key that starts with prefix, in ascending
	// byte order, beginning at the first key >= start (nil start, or a start
	// before prefix, means the prefix itself). A nil prefix means every key.
	//
	// It sees the transaction's own writes made before it was called; writes
	// made by fn during the iteration are not seen by it. key and value are
	// valid only during fn and must not be modified; copy them to keep them.
	// If fn returns ErrStop, Iterate stops and returns nil; any other error
	// stops it and is returned unchanged.
	Iterate(prefix, start []byte, fn func(key, value []byte) error) error
}

// MaxKeySize is the longest key a Store accepts, in bytes. Keys must also be
// non-empty and must not start with "!badger!", which Badger reserves. It is
// the same for every implementation and small enough for all of them:
// PostgreSQL indexes an entry of at most about 2.7 KB; the kernel's longest
// key is 259 bytes.
const MaxKeySize = 2048

// badgerPrefix is the key prefix Badger keeps for its own records.
var badgerPrefix = []byte("!badger!")

// CheckKey returns ErrInvalidKey (wrapped) for a key no Store may accept
// (see [MaxKeySize]), so that every implementation rejects the same keys.
func CheckKey(key []byte) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: %d bytes, over %d", ErrInvalidKey, len(key), MaxKeySize)
	case bytes.HasPrefix(key, badgerPrefix):
		return fmt.Errorf("%w: reserved prefix %q", ErrInvalidKey, badgerPrefix)
	}
	return nil
}

// checkKey is CheckKey, for the implementations in this package.
func checkKey(key []byte) error { return CheckKey(key) }

// seekKey returns where an iteration over prefix starting at start begins.
func seekKey(prefix, start []byte) []byte {
	if bytes.Compare(start, prefix) < 0 {
		return prefix
	}
	return start
}

// gate counts running transactions so that Close can refuse new ones and
// wait for the running ones (package gate), answering ErrClosed.
type gate struct{ g gatepkg.Gate }

// enter registers a transaction, or returns ErrClosed.
func (g *gate) enter() error {
	if !g.g.Enter() {
		return ErrClosed
	}
	return nil
}

// exit unregisters a transaction registered by enter.
func (g *gate) exit() { g.g.Exit() }

// close refuses new transactions and waits for the running ones. It returns
// ErrClosed if the gate was already closed.
func (g *gate) close() error {
	if !g.g.Close() {
		return ErrClosed
	}
	return nil
}
