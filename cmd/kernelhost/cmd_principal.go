package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/kernel"
)

func newPrincipalCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "principal",
		Short: "Create, show and list principals (agents)",
		Example: `  kernelhost principal create carol --balance 100
  kernelhost principal show carol
  kernelhost principal list`,
	}
	cmd.AddCommand(newPrincipalCreateCmd(g), newPrincipalShowCmd(g), newPrincipalListCmd(g), newPrincipalTokenCmd(g))
	return cmd
}

// principalToken is what create and token print with --output json.
type principalToken struct {
	Principal kernel.Principal `json:"principal"`
	Token     string           `json:"token"`
}

func newPrincipalCreateCmd(g *globals) *cobra.Command {
	var balance int64
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a principal with a starting balance and print its token once",
		Long: `create makes a new principal, mints its starting balance, and issues its
bearer token for the HTTP API. The token is printed this once; only its hash
is stored. Ids are 1-128 letters, digits and - _ . : / @. Over HTTP it needs
the admin token (POST /v1/principals).`,
		Example: `  kernelhost principal create carol
  kernelhost principal create sponsor --balance 10000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if balance < 0 {
				return usagef("--balance %d: a balance cannot be negative", balance)
			}
			id := args[0]
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				p, tok, err := b.createPrincipal(cmd.Context(), id, balance)
				if err != nil {
					return err
				}
				return g.emit(principalToken{p, tok}, func(out io.Writer) {
					fmt.Fprintf(out, "created principal %s with balance %d\n", p.ID, p.Balance)
					fmt.Fprintf(out, "token (shown this once): %s\n", tok)
				})
			})
		},
	}
	cmd.Flags().Int64Var(&balance, "balance", 0, "starting scrip balance, minted for the principal")
	return cmd
}

func newPrincipalTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token ID",
		Short: "Issue a new default token for a principal, revoking the old one; create, list and revoke named tokens",
		Example: `  kernelhost principal token alice
  kernelhost principal token create alice reader --scope read-only
  kernelhost principal token list alice
  kernelhost principal token revoke alice reader`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				p, tok, err := b.issueToken(cmd.Context(), id)
				if err != nil {
					return err
				}
				return g.emit(principalToken{p, tok}, func(out io.Writer) {
					fmt.Fprintf(out, "new token for %s (shown this once; the old one no longer works): %s\n", id, tok)
				})
			})
		},
	}
	addTokenCmds(g, cmd) // cmd_token.go
	return cmd
}

// principalShow is what show prints with --output json.
type principalShow struct {
	kernel.Principal
	Quotas []kernel.QuotaStatus `json:"quotas"`
}

func newPrincipalShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "show ID",
		Short:             "Show a principal's balance and quotas",
		Example:           `  kernelhost principal show alice`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				p, qs, err := b.principal(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return g.emit(principalShow{p, qs}, func(out io.Writer) {
					fmt.Fprintf(out, "id:         %s\n", p.ID)
					fmt.Fprintf(out, "balance:    %d\n", p.Balance)
					fmt.Fprintf(out, "created_at: %s\n", p.CreatedAt.Format(time.RFC3339))
					writeQuotas(out, qs)
				})
			})
		},
	}
}

func newPrincipalListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every principal and its balance",
		Example: `  kernelhost principal list
  kernelhost principal list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				ps, err := b.principals(cmd.Context())
				if err != nil {
					return err
				}
				return g.emit(ps, func(out io.Writer) {
					fmt.Fprintf(out, "%-24s %12s\n", "PRINCIPAL", "BALANCE")
					for _, p := range ps {
						fmt.Fprintf(out, "%-24s %12d\n", p.ID, p.Balance)
					}
				})
			})
		},
	}
}
