package kernel

import (
	"errors"
	"fmt"

	"github.com/kernelhost/kernelhost/abi"
)

// Error is a kernel failure with a stable code. Results carry the same code;
// methods of Kernel that return errors return *Error.
type Error struct {
	Code abi.Code
	Msg  string
	Err  error // cause, may be nil

	// final marks an error of a retriable code that no retry can cure: a
	// QUOTA_EXCEEDED that waiting does not fix (see quotaErr).
	final bool
}

// Retriable reports whether the same request may succeed later: its code
// is retriable (abi.Code.Retriable) and nothing known makes the failure
// final, as for a QUOTA_EXCEEDED of more than the whole quota, or of a
// resource that does not refill with time.
func (e *Error) Retriable() bool { return e.Code.Retriable() && !e.final }

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("kernel: %s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("kernel: %s: %s", e.Code, e.Msg)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel for e's code, so that
// errors.Is(err, ErrNotFound) works on any *Error with code NOT_FOUND.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.code == e.Code
}

// sentinel is an exported error value matched by code.
type sentinel struct{ code abi.Code }

func (s *sentinel) Error() string { return "kernel: " + s.code.String() }

// Sentinels, one per code, for errors.Is. Each is returned (inside an *Error)
// by Do's Result.Err and by the Kernel methods whose docs name it.
var (
	ErrInvalidArgument    error = &sentinel{abi.InvalidArgument}    // malformed action or argument
	ErrNotFound           error = &sentinel{abi.NotFound}           // unknown principal or artifact
	ErrAlreadyExists      error = &sentinel{abi.AlreadyExists}      // id taken
	ErrPermissionDenied   error = &sentinel{abi.PermissionDenied}   // the contract said no
	ErrContractFailed     error = &sentinel{abi.ContractFailed}     // the contract trapped or answered garbage
	ErrContractTimeout    error = &sentinel{abi.ContractTimeout}    // the contract ran too long
	ErrContractInUse      error = &sentinel{abi.ContractInUse}      // deleting a contract that still governs
	ErrImmutableField     error = &sentinel{abi.ImmutableField}     // changing type or created_by
	ErrInsufficientFunds  error = &sentinel{abi.InsufficientFunds}  // payer's balance too low
	ErrPayerNotAuthorized error = &sentinel{abi.PayerNotAuthorized} // payer did not consent
	ErrQuotaExceeded      error = &sentinel{abi.QuotaExceeded}      // a quota is exhausted; retriable when waiting helps
	ErrConflict           error = &sentinel{abi.Conflict}           // too many transaction conflicts; retriable
	ErrInternal           error = &sentinel{abi.Internal}           // storage or kernel fault
	ErrContractInvalid    error = &sentinel{abi.ContractInvalid}    // module rejected at deploy
	ErrKernelProtected    error = &sentinel{abi.KernelProtected}    // kernel-managed artifact
	ErrClosed             error = &sentinel{abi.Unavailable}        // the kernel is closed
)

func errf(code abi.Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// codeOf extracts a stable code from any error: a kernel *Error, an error
// from the Evaluator carrying Code() (package host's errors do), or INTERNAL.
func codeOf(err error) abi.Code {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	var ce interface{ Code() abi.Code }
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return abi.Internal
}
