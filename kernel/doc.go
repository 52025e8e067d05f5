// Package kernel holds the physics of a kernelhost world: principals and
// their scrip, artifacts and their access contracts, consent grants, the
// ledger and the audit log, all kept in a [store.Store].
//
// The kernel never decides who may act on an artifact. Every action on an
// existing artifact is judged by the artifact's access contract, run through
// the narrow [Evaluator] interface (implemented by package host). The kernel
// hands the contract facts, among them the immutable created_by, and acts on
// its decision: allowed or not, a cost, a payer who must have consented, and
// a payee.
//
// # Usage
//
//  1. Open a store (store.OpenBadger or store.NewMem) and an Evaluator
//     (host.New), then kernel.Open(ctx, Config{...}).
//  2. Create principals and genesis artifacts (package genesis does this).
//  3. Call (*Kernel).Do for every action. Do never panics on input and
//     always returns a Result; a failure is a Result with a stable code.
//
// The kernel is deterministic: time comes from Config.Clock, contracts run
// through Evaluator, and the kernel starts no goroutines of its own.
// See docs/ARCHITECTURE.md, "One action, end to end".
package kernel
