package host

import (
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/host/internal/fuel"
)

// The memory cap holds during a call, not only after it: every module is
// instrumented (host/internal/fuel, "Memory and table caps" in COSTS.md) so
// that each memory.grow and table.grow compares the instance's memory plus
// fuel.TableElemBytes per table element, after the growth, with a cap
// global, and returns -1 past it. Before each call the host sets that global
// to the smaller of Config.MemoryLimitBytes and the call's
// abi.Limits.MemoryBytes; wazero's WithMemoryLimitPages, one limit per
// runtime, stays as the backstop for memory.

// memCap is an instance's side of the memory cap.
type memCap struct {
	capG, elemsG, deniedG api.MutableGlobal
	cap                   uint64 // the value set in capG
	// footprint is what the instance holds against the cap, as last
	// measured (after initialisation, after each call), and what it counts
	// in Host.poolBytes.
	footprint uint64
	// From the module: grows is set when it has memory.grow or table.grow
	// sites, tableGrows when table.grow ones; tableBytes is what its tables
	// hold when they cannot grow.
	grows, tableGrows bool
	tableBytes        uint64
}

// bindCap finds the cap globals of inst's module, whose cap starts at
// initial (fuel.Config.MemoryCap).
func (inst *instance) bindCap(m *module, initial uint64) error {
	c, ok1 := inst.mod.ExportedGlobal(fuel.CapExportName).(api.MutableGlobal)
	e, ok2 := inst.mod.ExportedGlobal(fuel.TableElemsExportName).(api.MutableGlobal)
	d, ok3 := inst.mod.ExportedGlobal(fuel.DeniedExportName).(api.MutableGlobal)
	if !ok1 || !ok2 || !ok3 {
		return newError(ErrInvalidModule, errors.New("instrumented module lacks its memory-cap globals"))
	}
	inst.capG, inst.elemsG, inst.deniedG, inst.cap = c, e, d, initial
	inst.grows, inst.tableGrows, inst.tableBytes = m.grows, m.tableGrows, m.tableBytes
	return nil
}

// setCap caps inst's next call at c bytes: it writes the cap global only
// when c differs from the cap already set, so that the fast path of a
// module that never grows is unchanged, and clears the denied flag of a
// module that may grow.
func (inst *instance) setCap(c uint64) {
	if inst.cap != c {
		inst.capG.Set(c)
		inst.cap = c
	}
	if inst.grows {
		inst.deniedG.Set(0)
	}
}

// capDenied reports whether the cap refused a growth since setCap.
func (inst *instance) capDenied() bool {
	return inst.grows && inst.deniedG.Get() != 0
}

// measure returns what inst holds against the cap when its linear memory
// is mem bytes.
func (inst *instance) measure(mem uint64) uint64 {
	if inst.tableGrows {
		return mem + inst.elemsG.Get()*fuel.TableElemBytes
	}
	return mem + inst.tableBytes
}

// account records inst's footprint foot, keeping Host.poolBytes the sum of
// every live instance's.
func (h *Host) account(inst *instance, foot uint64) {
	if foot != inst.footprint {
		h.poolBytes.Add(int64(foot) - int64(inst.footprint))
		inst.footprint = foot
	}
}

// baseTooBig is the error of a call whose cap is below what a fresh
// instance of m holds.
func baseTooBig(m *module, limit uint64) error {
	return newError(ErrMemoryLimit, fmt.Errorf("the module needs %d bytes of memory and tables once initialised, the call's limit is %d", m.base, limit))
}
