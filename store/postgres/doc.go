// Package postgres is a [store.Store] on PostgreSQL, through pgx: the
// backend for several kernelhost nodes sharing one world.
//
// Every key and value is a row of one table, kernelhost_kv (k BYTEA
// PRIMARY KEY, v BYTEA), in the first schema of the connection's
// search_path; kernelhost_schema holds the schema version, which [Open]
// creates and migrates (see [SchemaVersion]). BYTEA compares bytewise, as
// the Store interface orders keys, and range reads walk the primary key in
// pages, so an iteration over many keys never loads them all.
//
// Transactions:
//   - Update is SERIALIZABLE. PostgreSQL's serialisation failures (SQLSTATE
//     40001) and deadlocks (40P01) come back as store.ErrConflict
//     (wrapped), at whichever statement the server raised them, and the
//     caller runs the transaction again; Update never retries by itself. A
//     Txn method that failed leaves the transaction failed: later calls and
//     the commit return the same error, so a closure that ignores an error
//     cannot commit half its work.
//   - Writes are buffered in the Txn (Get and Iterate see them) and sent in
//     one batch of multi-row statements with the COMMIT, so that an Update
//     costs round trips for its reads, not for each write.
//   - View is REPEATABLE READ READ ONLY, its snapshot taken before the
//     closure runs ([Options].SerializableViews: SERIALIZABLE READ ONLY
//     DEFERRABLE).
//
// Values may be as large as the kernel's largest module (8 MiB) and more:
// a transaction is bounded by [Options].MaxTxnBytes (64 MiB). Keys follow
// store.MaxKeySize (2048 bytes), which keeps them under PostgreSQL's own
// limit: a key is an entry of a B-tree index, at most about 2.7 KB once
// compressed (a longer one would fail the Update at commit with
// store.ErrInvalidKey).
//
// The SQL is kept portable to the PostgreSQL-wire distributed databases,
// CockroachDB and YugabyteDB (no extensions; INSERT ... ON CONFLICT;
// SERIALIZABLE asked for explicitly, which YugabyteDB needs; a range-sharded
// primary key on YugabyteDB), but only PostgreSQL is tested.
package postgres
