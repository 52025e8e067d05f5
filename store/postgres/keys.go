package postgres

import (
	"bytes"
)

// bounds returns the key range [lo, hi) that Iterate(prefix, start) visits:
// lo is the later of prefix and start (never nil: a NULL parameter would
// match nothing), hi is prefixEnd(prefix), nil when the range is unbounded.
func bounds(prefix, start []byte) (lo, hi []byte) {
	lo = prefix
	if bytes.Compare(start, prefix) > 0 {
		lo = start
	}
	if lo == nil {
		lo = []byte{}
	}
	return lo, prefixEnd(prefix)
}

// prefixEnd returns the smallest key greater than every key that starts with
// prefix, or nil when there is none (prefix empty or all 0xff): the prefix
// with its trailing 0xff bytes dropped and its last byte incremented.
func prefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := bytes.Clone(prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}

// successor returns the smallest key greater than key: key followed by 0.
func successor(key []byte) []byte {
	s := make([]byte, len(key)+1)
	copy(s, key)
	return s
}

// inRange reports whether lo <= key < hi (hi nil: no upper bound).
func inRange(key, lo, hi []byte) bool {
	return bytes.Compare(key, lo) >= 0 && (hi == nil || bytes.Compare(key, hi) < 0)
}
