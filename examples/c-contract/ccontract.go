// Package ccontract is the pay-per-read access contract written in
// freestanding C against abi/kernelhost.h (src/pay_per_read.c), and its
// committed module, built with clang 14 (see README.md).
//
// A read is allowed for everyone at the contract's config "price", charged to
// config "sponsor" (absent or empty: the caller) and credited to config
// "payee" (absent or empty: burned); the kernel charges a sponsor only once it
// consented to the contract. Every other action needs the controller (the
// "controller" metadata value when set, else created_by).
package ccontract

import _ "embed" // for go:embed

//go:embed pay_per_read.wasm
var payPerRead []byte

// Reasons the contract gives, as they appear in abi.Decision.Reason.
const (
	ReasonPaid          = "pay_per_read: paid read"
	ReasonNotController = "pay_per_read: only the controller may change or invoke this artifact"
	ReasonBadPrice      = "pay_per_read: config price is not a decimal integer of at most 18 digits"
	ReasonLongID        = "pay_per_read: config sponsor or payee is longer than 128 bytes"
	ReasonUnknown       = "pay_per_read: unknown action"
)

// PayPerRead returns the contract module. Each call returns a new copy that
// the caller owns.
func PayPerRead() []byte { return append([]byte(nil), payPerRead...) }
