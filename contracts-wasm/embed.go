package contracts

import "embed"

// Names of the genesis contracts, as used as keys of Genesis.
const (
	NameFreeware = "freeware"
	NamePrivate  = "private"
	NamePublic   = "public"
)

// NameRightsRegistry is the name of the genesis rights registry, an
// executable built from Go in rights/ (not one of Genesis' access contracts).
const NameRightsRegistry = "rights"

// NB: the files are listed one by one, not as *.wasm, so that a missing module
// fails the build instead of the first lookup.
//
//go:embed freeware.wasm private.wasm public.wasm rights/rights.wasm
var modules embed.FS

// module returns a fresh copy of the embedded module name.
func module(name string) []byte {
	file := name + ".wasm"
	if name == NameRightsRegistry {
		file = name + "/" + file
	}
	b, err := modules.ReadFile(file)
	if err != nil {
		// Unreachable: go:embed above lists every name this package passes.
		panic("contracts: " + name + ".wasm is not embedded: " + err.Error())
	}
	return b
}

// Freeware returns the freeware contract module: anyone reads and invokes;
// only the controller writes, edits, deletes and sets the contract. Each call
// returns a new copy that the caller owns.
func Freeware() []byte { return module(NameFreeware) }

// Private returns the private contract module: only the controller does
// anything. Each call returns a new copy that the caller owns.
func Private() []byte { return module(NamePrivate) }

// Public returns the public contract module: anyone reads, writes, edits and
// invokes; only the controller deletes and sets the contract. Each call
// returns a new copy that the caller owns.
func Public() []byte { return module(NamePublic) }

// Genesis returns every genesis contract module keyed by contract name
// ("freeware", "private", "public"). The map and the slices are
// new on each call and owned by the caller.
func Genesis() map[string][]byte {
	return map[string][]byte{
		NameFreeware: Freeware(),
		NamePrivate:  Private(),
		NamePublic:   Public(),
	}
}

// RightsRegistry returns the genesis rights registry module: an executable
// (it exports kh_invoke, built from Go in rights/) with the methods
// get_quota, available_capacity and transfer_quota, each a call of the kernel
// host API as the invoking caller. Each call returns a new copy that the
// caller owns.
func RightsRegistry() []byte { return module(NameRightsRegistry) }
