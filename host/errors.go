package host

import (
	"errors"

	"github.com/kernelhost/kernelhost/abi"
)

// Sentinel errors. Failures are returned as *Error, whose chain wraps one of
// these: test with errors.Is, map to a stable code with (*Error).Code.
var (
	// ErrInvalidModule is returned by Validate and Prepare when a module fails
	// deploy-time validation; the message names what to fix.
	// Code: abi.ContractInvalid.
	ErrInvalidModule = errors.New("host: invalid module")
	// ErrNotPrepared is returned by Evaluate when no module with the given
	// hash has been prepared; the caller should Prepare the bytes and retry.
	// Code: abi.NotFound.
	ErrNotPrepared = errors.New("host: module not prepared")
	// ErrTrap is returned by Evaluate when the guest trapped (unreachable,
	// out-of-bounds access, stack exhaustion, ...). Code: abi.ContractFailed.
	ErrTrap = errors.New("host: contract trapped")
	// ErrTimeout is returned by Evaluate when the call ran past its deadline,
	// and by Validate and Prepare when initialisation did. Code:
	// abi.ContractTimeout.
	ErrTimeout = errors.New("host: contract timed out")

	// ErrOutOfFuel is returned when a metered module used its whole fuel
	// budget: a deterministic failure (code abi.OutOfFuel) at the same point
	// on every machine.
	ErrOutOfFuel = errors.New("host: contract ran out of fuel")
	// ErrMemoryLimit is returned by Evaluate when the instance's memory
	// exceeded the call's limit, or a trap happened with memory at the
	// runtime's limit. Code: abi.ContractFailed.
	ErrMemoryLimit = errors.New("host: contract exceeded its memory limit")
	// ErrBadAlloc is returned by Evaluate when kh_alloc returned 0 or a
	// region outside memory. Code: abi.ContractFailed.
	ErrBadAlloc = errors.New("host: kh_alloc failed")
	// ErrBadDecision is returned by Evaluate when kh_check returned a
	// decision outside memory, longer than abi.MaxDecisionSize or malformed.
	// Code: abi.ContractFailed.
	ErrBadDecision = errors.New("host: contract returned a bad decision")
	// ErrClosed is returned by every method after Close. Code: abi.Unavailable.
	ErrClosed = errors.New("host: closed")
	// ErrBusy is returned by Invoke when every instance the module may
	// have is in use for longer than the invocation's deadline (or, for a
	// nested invocation, at once): the host is overloaded, not the
	// request wrong. Code: abi.Unavailable, retriable.
	ErrBusy = errors.New("host: busy")
)

// Error is a failure with a stable code. The kernel maps it through
// interface{ Code() abi.Code }; Go callers branch with errors.Is on the
// sentinels above.
//
// The code and cause are unexported fields behind methods, as in wazero's
// sys.ExitError: Go does not allow a field and a method both named Code.
type Error struct {
	code abi.Code
	err  error
}

// Error returns the message of the wrapped chain.
func (e *Error) Error() string { return e.err.Error() }

// Unwrap returns the wrapped chain, which includes a sentinel of this package.
func (e *Error) Unwrap() error { return e.err }

// Code returns the stable code the kernel reports for this failure.
func (e *Error) Code() abi.Code { return e.code }

// Is reports whether target is the sentinel this error wraps.
func (e *Error) Is(target error) bool {
	for _, s := range sentinels {
		if target == s {
			return errors.Is(e.err, s)
		}
	}
	return false
}

var sentinels = [...]error{ErrInvalidModule, ErrNotPrepared, ErrTrap, ErrTimeout, ErrMemoryLimit, ErrBadAlloc, ErrBadDecision, ErrClosed, ErrBusy}

// codeOf maps each sentinel to its code.
func codeOf(sentinel error) abi.Code {
	switch sentinel {
	case ErrInvalidModule:
		return abi.ContractInvalid
	case ErrNotPrepared:
		return abi.NotFound
	case ErrTimeout:
		return abi.ContractTimeout
	case ErrOutOfFuel:
		return abi.OutOfFuel
	case ErrClosed, ErrBusy:
		return abi.Unavailable
	case ErrTrap, ErrMemoryLimit, ErrBadAlloc, ErrBadDecision:
		return abi.ContractFailed
	}
	return abi.Internal
}

// newError returns an *Error for sentinel, whose message is sentinel's text
// followed by detail (if any) and whose chain wraps sentinel and cause.
func newError(sentinel error, cause error) *Error {
	if cause == nil {
		return &Error{code: codeOf(sentinel), err: sentinel}
	}
	return &Error{code: codeOf(sentinel), err: &wrapped{sentinel: sentinel, cause: cause}}
}

// wrapped joins a sentinel and its cause: "sentinel: cause", matching both.
type wrapped struct {
	sentinel error
	cause    error
}

func (w *wrapped) Error() string   { return w.sentinel.Error() + ": " + w.cause.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.sentinel, w.cause} }
