package genesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

// Spec is a genesis file: the principals a world starts with.
//
//	{
//	  "principals": [
//	    {"id": "alice", "balance": 1000},
//	    {"id": "bob",   "balance": 500}
//	  ]
//	}
type Spec struct {
	Principals []PrincipalSpec `json:"principals"`
}

// PrincipalSpec is one principal of a genesis file.
type PrincipalSpec struct {
	ID      string `json:"id"`
	Balance uint64 `json:"balance"`
}

// ParseSpec decodes a genesis file, rejecting unknown fields and duplicate ids.
func ParseSpec(r io.Reader) (Spec, error) {
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("genesis: parse: %w", err)
	}
	seen := map[string]bool{Principal: true}
	for _, p := range s.Principals {
		if seen[p.ID] {
			return Spec{}, fmt.Errorf("genesis: principal %q appears twice (or is reserved)", p.ID)
		}
		seen[p.ID] = true
	}
	return s, nil
}

// LoadSpec reads a genesis file from path.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("genesis: %w", err)
	}
	return ParseSpec(bytes.NewReader(b))
}

// ErrInstalled is returned by Install when the world already has a genesis.
var ErrInstalled = errors.New("genesis: world already initialised")

// Install writes the genesis principal, the genesis contracts, the genesis
// executables and spec's principals into k. It fails with ErrInstalled if
// the genesis principal exists already, so a world is never initialised
// twice. k's Config.MaxModuleBytes must be at least MinContentBytes (its
// default is).
func Install(ctx context.Context, k *kernel.Kernel, spec Spec) error {
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
	for _, p := range spec.Principals {
		if err := k.CreatePrincipal(ctx, p.ID, p.Balance); err != nil {
			return fmt.Errorf("genesis: principal %q: %w", p.ID, err)
		}
	}
	return nil
}

var describe = map[string]string{
	Freeware: "anyone reads and invokes; only the controller writes, edits, deletes, sets contract",
	Private:  "only the controller does anything",
	Public:   "anyone reads, writes, edits, invokes; only the controller deletes and sets contract",
	RightsRegistry: "rights registry: get_quota, available_capacity, transfer_quota; " +
		"answers what the kernel answers and moves only the caller's quota",
}
