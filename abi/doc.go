// Package abi defines version 1 of the kernelhost contract ABI: the request a
// contract sees, the decision it returns, their byte-exact binary encoding and
// the stable error codes the kernel reports.
//
// The package imports only the standard library so that it compiles for
// GOOS=wasip1 GOARCH=wasm as well: guests (see package abi/guest) and the host
// share one codec. SPEC.md beside this file is the language-neutral
// specification; kernelhost.h is the C view of the same bytes.
package abi
