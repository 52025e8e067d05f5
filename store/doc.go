// Package store is kernelhost's durable state: an ordered key-value store
// behind a small [Store]/[Txn] interface with closure transactions.
//
// [OpenBadger] is the embedded default (Badger, serialisable snapshot
// isolation); [NewMem] is an in-memory implementation with the same semantics
// for tests. The package knows nothing of the kernel.
package store
