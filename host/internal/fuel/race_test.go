//go:build race

package fuel

// raceEnabled is true when tests run under the race detector, which makes
// wazero compile the Go contract about ten times slower.
const raceEnabled = true
