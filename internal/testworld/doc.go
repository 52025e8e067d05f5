// Package testworld builds the worlds of tests that run real contracts: a
// wasm host with test settings, and a kernel on an in-memory store with
// genesis installed. It is apart from internal/testenv, which the tests of
// package host use, because it imports host.
package testworld
