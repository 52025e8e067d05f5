// Package fuel instruments a WebAssembly module at deploy time so that it
// meters its own execution: a deterministic fuel counter, kept in an exported
// mutable i64 global, is decremented by the static cost of each straight-line
// run of code and by the size argument of bulk memory and table operations,
// and the module traps as soon as the counter goes negative. Every
// [TickSlice] fuel a running guest steps out to the host for an instant, so
// that Go's garbage collector, which stops the world, never waits for a
// guest's whole budget (COSTS.md, "Ticks").
//
// # Usage
//
// The host runs [Instrument] once per module, at deploy time, and compiles its
// output instead of the original (keying its caches by the output's hash,
// which covers [CostTableVersion] and [Config.StartFuel]). A start function
// runs at instantiation on [Config.StartFuel]. Before each call, _initialize
// included, the host sets the global exported as [ExportName] to the call's
// budget; after the call it reads it back:
//
//  1. Set kh_fuel to the budget b, with 0 <= b <= [MaxFuel], and
//     kh_fuel_mark ([MarkExportName]) to [Mark](b).
//  2. Call the guest.
//  3. Read kh_fuel as an int64 r. If the call trapped and r < 0, the guest ran
//     out of fuel; any other trap is an ordinary guest failure. Fuel used is
//     b - r when r >= 0 (and more than b when r < 0).
//
// Same module, same input and same budget give the same result and the same
// fuel used on every machine. See COSTS.md for the cost table.
//
// # Memory and table caps
//
// Every instrumented module, metered or not ([Config.NoMetering]), also
// caps its own growth: before each memory.grow and table.grow it compares
// the memory's bytes plus [TableElemBytes] per table element, after the
// growth, with the global exported as [CapExportName], and past it the
// instruction returns -1 (and sets [DeniedExportName]). The host sets the
// cap before a call to the smaller of its memory limit and the caller's
// quota, so that a guest never holds more during the call; a runtime-wide
// limit such as wazero's WithMemoryLimitPages cannot differ per call.
// [TableElemsExportName] counts the tables' elements for the host. The
// checks cost no fuel: fuel used never depends on the caller's cap.
//
// # Write tracking
//
// With [Config.TrackWrites] the module also records where it writes, for a
// host that restores every instance to its post-initialisation state before
// each call: one dirty range (track.go), or with [Config.TrackPages] the
// pages of [PageSize] bytes it wrote (pages.go). Tracking costs no fuel
// either.
package fuel
