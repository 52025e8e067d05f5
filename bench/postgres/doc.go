// Package postgres measures and tests the kernel on PostgreSQL
// (store/postgres) with one node and with several: a node is one
// kernel.Kernel with its own connection pool (its own postgres.Open) and its
// own wasm host, and several nodes share one database, as the processes of
// one world would. The nodes of a test or benchmark run in one process,
// which changes nothing for the database: each has its own connections.
//
// It has no code outside its tests: BenchmarkAction/transfer-postgres-* (in
// `make bench`, since it is part of the main module) and
// TestThreeNodesOnePostgres. Both start a real PostgreSQL through
// internal/testenv/pgtest and skip where it is not installed.
package postgres
