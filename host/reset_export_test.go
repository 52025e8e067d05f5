package host

// SetNoReset turns the per-call reset (reset.go) off or on for modules h
// prepares from now on: for the -noreset benchmark rows, which measure what
// the reset costs.
func SetNoReset(h *Host, off bool) { h.noReset = off }

// TracksPages reports whether the prepared module hash has its writes
// tracked by pages (reset.go), not by one range.
func TracksPages(h *Host, hash [32]byte) bool {
	m := h.lookup(hash)
	return m != nil && m.pageList != 0
}

// RestoredBytes returns the bytes that the last restore of the warmest idle
// instance of the prepared module hash copied back (before its last call),
// or false when none is idle.
func RestoredBytes(h *Host, hash [32]byte) (uint64, bool) {
	m := h.lookup(hash)
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.idle) == 0 {
		return 0, false
	}
	return m.idle[len(m.idle)-1].restored, true
}
