// Package kerneltest is a harness for tests of code built on the kernel: a
// fake clock, a fake Evaluator whose contracts are Go functions, and a World
// that opens a kernel on an in-memory store in one call.
package kerneltest
