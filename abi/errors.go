package abi

import "errors"

// Errors returned by the codec. Every decoder failure wraps ErrMalformed, so
// callers can test for it with errors.Is and still read the precise step.
var (
	// ErrMalformed is wrapped by every decoding error: truncated input, bad
	// magic, a length past a limit, unsorted metadata, trailing bytes.
	ErrMalformed = errors.New("abi: malformed encoding")
	// ErrVersion is returned when the encoded version is not Version.
	ErrVersion = errors.New("abi: unsupported version")
	// ErrTooLarge is returned by the encoders when a field exceeds its limit.
	ErrTooLarge = errors.New("abi: field exceeds limit")
	// ErrUnsorted is returned by the encoders when metadata is not sorted by
	// key with unique keys, or caller rights by resource, unique, non-empty.
	ErrUnsorted = errors.New("abi: metadata not sorted by unique key")
)
