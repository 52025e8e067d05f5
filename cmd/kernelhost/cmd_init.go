package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/genesis"
)

// initOutput is what init prints with --output json.
type initOutput struct {
	DataDir string `json:"data_dir"`
	// Store is the --store URL, its password redacted; empty for the
	// Badger store in DataDir.
	Store           string          `json:"store,omitempty"`
	Contracts       []string        `json:"contracts"`
	Executables     []string        `json:"executables"`
	DefaultContract string          `json:"default_contract"`
	AdminToken      string          `json:"admin_token"`
	Principals      []initPrincipal `json:"principals"`
}

type initPrincipal struct {
	ID      string `json:"id"`
	Balance uint64 `json:"balance"`
	Token   string `json:"token"`
}

func newInitCmd(g *globals) *cobra.Command {
	var genesisFile, from string
	var force, newTokens bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a world: genesis contracts, principals and tokens",
		Long: `init creates a world in --data-dir, or with --store in a PostgreSQL
database that any number of 'kernelhost serve' nodes then share: the
genesis principal and contracts (genesis/freeware, genesis/private,
genesis/public), the principals of the genesis file with their balances,
an admin token and one token per principal. The tokens are printed once and stored only as hashes:
keep them.

init refuses to touch an existing world unless --force is given, which
deletes it first (store, compilation cache and tokens; nothing else in the
directory; with --store every key of the store's table, the local
compilation cache kept: stop the nodes serving it first).

With --from FILE (a file of 'kernelhost snapshot') init creates the world
from that snapshot instead of genesis: a fork, in exactly the state the
snapshot holds, which goes on from there apart from its source. The
snapshot holds the token hashes, so the fork accepts the source world's
tokens; --new-tokens replaces every one (the admin's and each principal's)
and prints the new ones. A snapshot without tokens (a world an embedding
program made, such as the demo's) gets new ones anyway.

With --record the world records every input from its first, genesis
included, so that 'kernelhost replay' can re-execute it from the empty
world (and a fork of a recorded snapshot goes on recording); every command
that changes a world holding records records too.`,
		Example: `  kernelhost init
  kernelhost init --genesis genesis/example.json
  kernelhost --data-dir /tmp/w init --force --genesis my-world.json
  kernelhost init --store postgres://kernelhost@db:5432/world?sslmode=verify-full
  kernelhost --data-dir fork init --from world.khsnap --new-tokens
  kernelhost init --record --genesis genesis/example.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.localOnly(cmd, "it creates the world"); err != nil {
				return err
			}
			if from != "" {
				return g.initFromCmd(cmd, from, genesisFile, force, newTokens) // cmd_snapshot.go
			}
			if newTokens {
				return usagef("--new-tokens goes with --from: a new world's tokens are new")
			}
			spec := genesis.Spec{}
			if genesisFile != "" {
				s, err := genesis.LoadSpec(genesisFile)
				if err != nil {
					return fmt.Errorf("%w: fix the genesis file (format: genesis/example.json)", err)
				}
				spec = s
			}
			pg, err := g.storeURL()
			if err != nil {
				return err
			}
			var out initOutput
			if pg != "" {
				out, err = g.initShared(cmd.Context(), pg, force, spec)
			} else {
				out, err = g.initLocal(cmd.Context(), force, spec)
			}
			if err != nil {
				return err
			}
			return g.emit(out, func(w io.Writer) {
				if out.Store != "" {
					fmt.Fprintf(w, "Initialised a world in %s\n", out.Store)
				} else {
					fmt.Fprintf(w, "Initialised a world at %s\n", out.DataDir)
				}
				fmt.Fprintf(w, "  genesis contracts: %v (default for new artifacts: %s)\n", out.Contracts, out.DefaultContract)
				fmt.Fprintf(w, "  genesis executables: %v\n", out.Executables)
				fmt.Fprintf(w, "  principals: %d\n\n", len(out.Principals))
				fmt.Fprintln(w, "Tokens, shown this once (only their hashes are stored):")
				fmt.Fprintf(w, "  %-12s %s\n", "admin", out.AdminToken)
				for _, p := range out.Principals {
					fmt.Fprintf(w, "  %-12s %s   (balance %d)\n", p.ID, p.Token, p.Balance)
				}
			})
		},
	}
	cmd.Flags().StringVar(&genesisFile, "genesis", "", "genesis file (JSON, see genesis/example.json); default: no principals but genesis")
	cmd.Flags().BoolVar(&force, "force", false, "delete an existing world at --data-dir (or in --store) first")
	cmd.Flags().StringVar(&from, "from", "", "create the world from this snapshot file ('kernelhost snapshot') instead of genesis: a fork")
	cmd.Flags().BoolVar(&newTokens, "new-tokens", false, "with --from: replace every token of the snapshot with a new one, printed once")
	g.recordFlag(cmd, "record every input from the first (genesis included), for 'kernelhost replay'")
	return cmd
}

// initLocal creates the Badger world in --data-dir, wiping an existing
// one with force, and removes what it wrote if it fails.
func (g *globals) initLocal(ctx context.Context, force bool, spec genesis.Spec) (out initOutput, err error) {
	dir := g.dataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return initOutput{}, err
	}
	// The lock first: --force must not wipe a world a server is serving.
	lock, err := lockDir(dir, lockExclusive, g.command, g.wait)
	if err != nil {
		return initOutput{}, err
	}
	defer func() { err = errors.Join(err, lock.release()) }()
	if worldExists(dir) {
		if !force {
			return initOutput{}, fmt.Errorf("a world already exists at %s: use --force to delete it and start over, or another --data-dir", dir)
		}
		if err := wipe(dir); err != nil {
			return initOutput{}, err
		}
	}
	out, err = func() (initOutput, error) {
		st, where, err := g.openKV(dir, "", false)
		if err != nil {
			return initOutput{}, err
		}
		w, err := g.openWorld(ctx, dir, where, st, false)
		if err != nil {
			return initOutput{}, err
		}
		defer func() { _ = w.close() }()
		return initWorld(ctx, w, spec)
	}()
	if err != nil {
		_ = wipe(dir) // leave no half world behind
	}
	return out, err
}

// initShared creates the world in the PostgreSQL database at pg, wiping an
// existing one with force. If it fails it deletes what it wrote, unless
// another init on the same database got there first: that world is not
// its to delete.
func (g *globals) initShared(ctx context.Context, pg string, force bool, spec genesis.Spec) (initOutput, error) {
	st, where, err := g.openKV(g.dataDir, pg, false)
	if err != nil {
		return initOutput{}, err
	}
	none, err := empty(st)
	if err != nil {
		_ = st.Close()
		return initOutput{}, fmt.Errorf("read store %s: %w", where, err)
	}
	if !none {
		if !force {
			_ = st.Close()
			return initOutput{}, fmt.Errorf("a world already exists in %s: use --force to delete it and start over (stop the nodes serving it first), or another database or schema", where)
		}
		if err := wipeStore(st); err != nil {
			_ = st.Close()
			return initOutput{}, err
		}
	}
	w, err := g.openWorld(ctx, g.dataDir, where, st, true)
	if err != nil {
		return initOutput{}, err
	}
	out, err := initWorld(ctx, w, spec)
	switch {
	case errors.Is(err, genesis.ErrInstalled), errors.Is(err, auth.ErrExists):
		err = fmt.Errorf("another init created a world in %s at the same time: %w", where, err)
	case err != nil:
		_ = wipeStore(w.st) // leave no half world behind
	}
	out.Store = where
	return out, errors.Join(err, w.close())
}

// initWorld installs genesis into the fresh world w and writes its tokens,
// in the store's last transaction of init.
func initWorld(ctx context.Context, w *world, spec genesis.Spec) (initOutput, error) {
	if err := genesis.Install(ctx, w.k, spec); err != nil {
		if errors.Is(err, genesis.ErrInstalled) {
			return initOutput{}, err
		}
		return initOutput{}, codedError(err)
	}
	ids := make([]string, len(spec.Principals))
	for i, p := range spec.Principals {
		ids[i] = p.ID
	}
	_, adminTok, toks, err := auth.Init(w.st, ids)
	if err != nil {
		return initOutput{}, err
	}
	out := initOutput{DataDir: w.dir, DefaultContract: genesis.DefaultContract, AdminToken: adminTok, Principals: []initPrincipal{}}
	for id := range genesis.Contracts() {
		out.Contracts = append(out.Contracts, id)
	}
	sort.Strings(out.Contracts)
	for id := range genesis.Executables() {
		out.Executables = append(out.Executables, id)
	}
	sort.Strings(out.Executables)
	for i, p := range spec.Principals {
		out.Principals = append(out.Principals, initPrincipal{ID: p.ID, Balance: p.Balance, Token: toks[i]})
	}
	return out, nil
}
