// Package lint holds repository-wide lint tests: the import direction of
// docs/ARCHITECTURE.md and the determinism bans on kernel. It has no non-test code.
package lint
