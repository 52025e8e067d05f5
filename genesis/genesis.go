package genesis

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/kernelhost/kernelhost/abi"
	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/kernel"
)

// Principal is the id of the genesis principal, which creates and controls
// the genesis contracts. Nobody acts as it after Install.
const Principal = "genesis"

// Ids of the genesis contracts. Each is governed by Freeware (which governs
// itself): anyone can read their code, only the genesis principal can change
// them.
const (
	Freeware = "genesis/freeware" // anyone reads and invokes; the controller changes
	Private  = "genesis/private"  // only the controller does anything
	Public   = "genesis/public"   // anyone reads, writes, edits, invokes; the controller deletes and sets contract
)

// RightsRegistry is the id of the genesis rights registry: an executable
// with the methods get_quota, available_capacity and transfer_quota, each a
// call of the kernel host API as the invoking caller. It holds no state and
// has no standing (no principal has its id): it answers what the kernel
// answers and moves only the caller's quota. Governed by Freeware: anyone
// invokes it, only the genesis principal changes it. See
// contracts-wasm/rights.
const RightsRegistry = "genesis/rights"

// DefaultContract governs new artifacts whose write names no contract; pass
// it as kernel.Config.DefaultContract.
const DefaultContract = Freeware

// MinContentBytes is the module size limit a kernel must admit for Install
// to deploy the genesis executables (standard Go modules of a few MiB):
// kernel.Config.MaxModuleBytes must be at least this, as its default is. It
// equals host.DefaultMaxModuleBytes.
const MinContentBytes = 8 << 20

// Contracts returns the genesis access contracts' modules keyed by artifact
// id. The map and slices are new on each call and owned by the caller.
func Contracts() map[string][]byte {
	return map[string][]byte{
		Freeware: contracts.Freeware(),
		Private:  contracts.Private(),
		Public:   contracts.Public(),
	}
}

// Executables returns the genesis executables' modules keyed by artifact id
// (today only RightsRegistry). The map and slices are new on each call and
// owned by the caller.
func Executables() map[string][]byte {
	return map[string][]byte{
		RightsRegistry: contracts.RightsRegistry(),
	}
}

// ErrInstalled is returned by Install when the world already has a genesis.
var ErrInstalled = errors.New("genesis: world already initialised")

// Install writes the genesis principal, the genesis contracts, the genesis
// executables, spec's principals with their quotas, then spec's artifacts
// in order, into k. It fails with ErrInstalled if the genesis principal
// exists already, so a world is never initialised twice. It validates spec
// (Spec.Validate) before it writes anything; a failure after that (a module
// the host refuses, an artifact beyond its creator's disk quota: the error
// carries the kernel's code) leaves the world part-written, to be thrown
// away, as 'kernelhost init' does. k's Config.MaxModuleBytes must be at
// least MinContentBytes (its default is).
func Install(ctx context.Context, k *kernel.Kernel, spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := k.CreatePrincipal(ctx, Principal, 0); err != nil {
		if errors.Is(err, kernel.ErrAlreadyExists) {
			return ErrInstalled
		}
		return fmt.Errorf("genesis: %w", err)
	}
	mods := Contracts()
	execs := Executables()
	// The genesis principal holds exactly the disk its modules take, with
	// their descriptions and the kernel's per-artifact overhead.
	var size int64
	for id, m := range mods {
		size += kernel.StoredBytes(len(m), []abi.KV{{Key: "description", Value: describe[id]}})
	}
	for id, m := range execs {
		size += kernel.StoredBytes(len(m), []abi.KV{{Key: "description", Value: describe[id]}})
	}
	if err := k.SetQuota(ctx, Principal, kernel.Disk, size); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	// Freeware first: it governs itself and then the others.
	ids := []string{Freeware}
	for id := range mods {
		if id != Freeware {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids[1:])
	for _, id := range ids {
		res := k.Do(ctx, kernel.Action{
			Kind: kernel.KindWrite, Caller: Principal, Target: id,
			Type: kernel.TypeContract, Contract: Freeware, Content: mods[id],
			Metadata: map[string]string{"description": describe[id]},
		})
		if !res.OK {
			return fmt.Errorf("genesis: install %s: %s: %s", id, res.ErrorCode, res.Message)
		}
	}
	for id, mod := range execs {
		res := k.Do(ctx, kernel.Action{
			Kind: kernel.KindWrite, Caller: Principal, Target: id,
			Type: kernel.TypeExecutable, Contract: Freeware, Content: mod,
			Metadata: map[string]string{"description": describe[id]},
		})
		if !res.OK {
			return fmt.Errorf("genesis: install %s: %s: %s", id, res.ErrorCode, res.Message)
		}
	}
	// The principals in bulk: a few hundred to a transaction, as if each
	// were created and given its quotas (in the order of kernel.Resources)
	// by itself, which a world of 100,000 principals cannot wait for.
	ps := make([]kernel.NewPrincipal, len(spec.Principals))
	for i, p := range spec.Principals {
		ps[i] = kernel.NewPrincipal{ID: p.ID, Balance: p.Balance, Quotas: p.Quotas}
	}
	if n, err := k.CreatePrincipals(ctx, ps, nil); err != nil {
		return wrap(err, "genesis: principals (%d of %d created)", n, len(ps))
	}
	for _, a := range spec.Artifacts {
		res := k.Do(ctx, kernel.Action{
			Kind: kernel.KindWrite, Caller: a.CreatedBy, Target: a.ID,
			Type: a.Type, Contract: a.Contract, Content: a.content(), Metadata: a.Metadata,
		})
		if !res.OK {
			return wrap(res.Err(), "genesis: artifact %q", a.ID)
		}
	}
	return nil
}

// wrap prefixes err's message with what Install was doing. A *kernel.Error
// stays one, with its code, so that a caller that prints the code and the
// message (as kernelhost does) still says which entry failed.
func wrap(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var ke *kernel.Error
	if errors.As(err, &ke) {
		return &kernel.Error{Code: ke.Code, Msg: what + ": " + ke.Msg, Err: ke.Err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

var describe = map[string]string{
	Freeware: "anyone reads and invokes; only the controller writes, edits, deletes, sets contract",
	Private:  "only the controller does anything",
	Public:   "anyone reads, writes, edits, invokes; only the controller deletes and sets contract",
	RightsRegistry: "rights registry: get_quota, available_capacity, transfer_quota; " +
		"answers what the kernel answers and moves only the caller's quota",
}
