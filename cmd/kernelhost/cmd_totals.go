package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

func newTotalsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "totals",
		Short: "Print the world's totals and check the ledger",
		Long: `totals prints, read in one snapshot, the scrip minted and burned, the sum
of all balances and whether the ledger checks (minted = balances + burned),
and per resource the sum of all quotas and of all outstanding rights (their
sum changes only by 'quota set' and new principals). It records nothing.
A broken ledger is printed, then the command fails (exit 1). With -o json it
prints what GET /v1/totals answers the admin token; with --server it needs
the admin token.`,
		Example: `  kernelhost totals
  kernelhost totals -o json | jq .quota_totals`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				a, err := b.audit(cmd.Context())
				if err != nil {
					return err
				}
				if err := g.emit(server.TotalsResponse{OK: true, Audit: a}, func(out io.Writer) { totalsText(out, a) }); err != nil {
					return err
				}
				if !a.LedgerOK {
					return fmt.Errorf("INTERNAL: ledger broken: %s", a.LedgerProblem)
				}
				return nil
			})
		},
	}
}

func totalsText(out io.Writer, a kernel.Audit) {
	fmt.Fprintf(out, "minted      %d\n", a.Minted)
	fmt.Fprintf(out, "burned      %d\n", a.Burned)
	fmt.Fprintf(out, "balances    %d  (%d principals)\n", a.Balances, a.Principals)
	if a.LedgerOK {
		fmt.Fprintln(out, "ledger      ok: minted = balances + burned")
	} else {
		fmt.Fprintf(out, "ledger      BROKEN: %s\n", a.LedgerProblem)
	}
	fmt.Fprintf(out, "rights      %d outstanding\n", a.Rights)
	fmt.Fprintf(out, "%-12s %20s %20s %20s\n", "RESOURCE", "QUOTAS", "RIGHTS", "QUOTAS+RIGHTS")
	for _, r := range kernel.Resources {
		fmt.Fprintf(out, "%-12s %20d %20d %20d\n", r, a.QuotaTotals[r], a.RightTotals[r], a.QuotaTotals[r]+a.RightTotals[r])
	}
}
