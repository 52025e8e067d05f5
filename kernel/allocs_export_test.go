package kernel

// RaceEnabled reports whether the tests run under the race detector, which
// allocates on its own: allocation tests skip then. Test-only export.
const RaceEnabled = raceEnabled
