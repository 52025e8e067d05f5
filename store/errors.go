package store

import "errors"

var (
	// ErrNotFound is returned by [Txn.Get] when the key is absent.
	ErrNotFound = errors.New("store: not found")

	// ErrConflict is returned (wrapped) by [Store.Update] when the commit is
	// aborted because a concurrent transaction wrote a key this one read.
	// Nothing was written; the caller may run the transaction again. Update
	// never retries by itself. The in-memory store never returns it.
	ErrConflict = errors.New("store: transaction conflict")

	// ErrReadOnly is returned by [Txn.Set] and [Txn.Delete] inside
	// [Store.View].
	ErrReadOnly = errors.New("store: read-only transaction")

	// ErrStop may be returned by the callback of [Txn.Iterate] to end the
	// iteration early; Iterate then returns nil. It is never returned by the
	// store itself.
	ErrStop = errors.New("store: stop iteration")

	// ErrClosed is returned by [Store.View], [Store.Update] and [Store.Close]
	// once Close has been called.
	ErrClosed = errors.New("store: closed")

	// ErrTxnTooBig is returned (wrapped) by [Txn.Set], [Txn.Delete] or
	// [Store.Update] when a transaction holds more writes than the store can
	// commit at once (Badger: about 15% of the memtable size, see
	// [BadgerOptions]). Split the work into smaller transactions.
	ErrTxnTooBig = errors.New("store: transaction too big")

	// ErrInvalidKey is returned (wrapped) by every [Txn] method given a key
	// that no implementation can store: an empty key, a key longer than
	// [MaxKeySize], or a key with Badger's reserved "!badger!" prefix.
	ErrInvalidKey = errors.New("store: invalid key")

	// ErrTxnDone is returned by every [Txn] method called after the closure
	// passed to [Store.View] or [Store.Update] has returned.
	ErrTxnDone = errors.New("store: transaction has ended")
)
