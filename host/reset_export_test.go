package host

// SetNoReset turns the per-call reset (reset.go) off or on for modules h
// prepares from now on: for the -noreset benchmark rows, which measure what
// the reset costs.
func SetNoReset(h *Host, off bool) { h.noReset = off }
