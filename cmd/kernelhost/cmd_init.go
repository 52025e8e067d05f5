package main

import (
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
	DataDir         string          `json:"data_dir"`
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
	var genesisFile string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a world: genesis contracts, principals and tokens",
		Long: `init creates a world in --data-dir: the genesis principal and contracts
(genesis/freeware, genesis/private, genesis/public), the
principals of the genesis file with their balances, an admin token and one
token per principal. The tokens are printed once and stored only as hashes:
keep them.

init refuses to touch an existing world unless --force is given, which
deletes it first (store, compilation cache and tokens; nothing else in the
directory).`,
		Example: `  kernelhost init
  kernelhost init --genesis genesis/example.json
  kernelhost --data-dir /tmp/w init --force --genesis my-world.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := genesis.Spec{}
			if genesisFile != "" {
				s, err := genesis.LoadSpec(genesisFile)
				if err != nil {
					return fmt.Errorf("%w: fix the genesis file (format: genesis/example.json)", err)
				}
				spec = s
			}
			dir := g.dataDir
			if worldExists(dir) {
				if !force {
					return fmt.Errorf("a world already exists at %s: use --force to delete it and start over, or another --data-dir", dir)
				}
				if err := wipe(dir); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			out, err := g.initWorld(cmd, dir, spec)
			if err != nil {
				_ = wipe(dir) // leave no half world behind
				return err
			}
			return g.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "Initialised a world at %s\n", out.DataDir)
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
	cmd.Flags().BoolVar(&force, "force", false, "delete an existing world at --data-dir first")
	return cmd
}

// initWorld installs genesis into a fresh store at dir and writes the tokens.
func (g *globals) initWorld(cmd *cobra.Command, dir string, spec genesis.Spec) (initOutput, error) {
	ctx := cmd.Context()
	w, err := g.openStore(ctx, dir)
	if err != nil {
		return initOutput{}, err
	}
	defer func() { _ = w.close() }()
	if err := genesis.Install(ctx, w.k, spec); err != nil {
		return initOutput{}, codedError(err)
	}
	a, adminTok, err := auth.Create(authPath(dir))
	if err != nil {
		return initOutput{}, err
	}
	out := initOutput{DataDir: dir, DefaultContract: genesis.DefaultContract, AdminToken: adminTok, Principals: []initPrincipal{}}
	for id := range genesis.Contracts() {
		out.Contracts = append(out.Contracts, id)
	}
	sort.Strings(out.Contracts)
	for id := range genesis.Executables() {
		out.Executables = append(out.Executables, id)
	}
	sort.Strings(out.Executables)
	for _, p := range spec.Principals {
		tok, err := a.Issue(p.ID)
		if err != nil {
			return initOutput{}, err
		}
		out.Principals = append(out.Principals, initPrincipal{ID: p.ID, Balance: p.Balance, Token: tok})
	}
	return out, nil
}
