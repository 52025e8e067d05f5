package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/kernel"
)

func resourceNames() string {
	names := make([]string, 0, len(kernel.Resources))
	for _, r := range kernel.Resources {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

func checkResource(r string) error {
	for _, x := range kernel.Resources {
		if string(x) == r {
			return nil
		}
	}
	return usagef("--resource %q: use one of %s", r, resourceNames())
}

// writeQuotas prints a quota table.
func writeQuotas(w io.Writer, qs []kernel.QuotaStatus) {
	fmt.Fprintf(w, "%-12s %14s %14s %14s  %s\n", "RESOURCE", "QUOTA", "USED", "AVAILABLE", "FREES UP IN")
	for _, q := range qs {
		retry := "-"
		if q.RetryAfter > 0 {
			retry = roundUp(q.RetryAfter).String()
		}
		fmt.Fprintf(w, "%-12s %14d %14d %14d  %s\n", q.Resource, q.Quota, q.Used, q.Available, retry)
	}
}

func newQuotaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Show, transfer and set resource quotas",
		Long: `Quotas are kernel state per principal: cpu_rate (µs of contract CPU per
rolling window), llm_rate (tokens per window), llm_budget (micro-dollars,
depletable), disk (bytes stored), memory (bytes per WASM execution). Actions
are checked against them before they run; QUOTA_EXCEEDED is retriable.`,
		Example: `  kernelhost quota show bob
  kernelhost quota transfer --as alice --to bob --resource llm_rate --amount 500
  kernelhost quota set bob --resource disk --quota 10000000
  kernelhost quota consume --as bob --resource llm_rate --amount 60`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:               "show ID",
		Short:             "Show a principal's quotas, usage and availability",
		Example:           `  kernelhost quota show bob`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				qs, err := b.quotas(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return g.emit(qs, func(out io.Writer) { writeQuotas(out, qs) })
			})
		},
	})

	var as, to, res, rid string
	var amount int64
	transfer := &cobra.Command{
		Use:   "transfer --as P --to Q --resource R --amount N",
		Short: "Give N of P's quota of resource R to Q (a transfer_quota action)",
		Long: `transfer moves quota, not usage: P can give only what it is not using (for
a rate, what is not used inside the current window). The world's total of
each resource never changes.`,
		Example: `  kernelhost quota transfer --as alice --to bob --resource llm_rate --amount 500`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkResource(res); err != nil {
				return err
			}
			if amount <= 0 {
				return usagef("--amount %d: transfer a positive amount", amount)
			}
			a := kernel.Action{Kind: kernel.KindTransferQuota, To: to, Resource: res, Amount: amount, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "transferred %d %s quota from %s to %s\n", amount, res, caller, to)
			})
		},
	}
	addAs(transfer, &as)
	transfer.Flags().StringVar(&to, "to", "", "recipient principal (required)")
	transfer.Flags().StringVar(&res, "resource", "", "resource: "+resourceNames()+" (required)")
	transfer.Flags().Int64Var(&amount, "amount", 0, "amount of quota, positive (required)")
	for _, f := range []string{"to", "resource", "amount"} {
		_ = transfer.MarkFlagRequired(f)
	}
	actionCmd(transfer, kernel.KindTransferQuota, &rid)

	var sres string
	var quota int64
	set := &cobra.Command{
		Use:   "set ID --resource R --quota N",
		Short: "Set a principal's quota of a resource (administrative)",
		Long: `set changes the world's total of a resource, which no action can: it is the
operator's tool, like 'principal create'. Over HTTP it needs the admin token.`,
		Example:           `  kernelhost quota set bob --resource llm_rate --quota 1000`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkResource(sres); err != nil {
				return err
			}
			if quota < 0 {
				return usagef("--quota %d: a quota cannot be negative", quota)
			}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				st, err := b.setQuota(cmd.Context(), args[0], kernel.Resource(sres), quota)
				if err != nil {
					return err
				}
				return g.emit(st, func(out io.Writer) {
					fmt.Fprintf(out, "%s quota of %s is now %d (%d available)\n", sres, args[0], st.Quota, st.Available)
				})
			})
		},
	}
	set.Flags().StringVar(&sres, "resource", "", "resource: "+resourceNames()+" (required)")
	set.Flags().Int64Var(&quota, "quota", 0, "the new quota (required)")
	_ = set.MarkFlagRequired("resource")
	_ = set.MarkFlagRequired("quota")
	cmd.AddCommand(transfer, set, newQuotaConsumeCmd(g))
	return cmd
}

func newQuotaConsumeCmd(g *globals) *cobra.Command {
	var as, res, rid string
	var amount int64
	cmd := &cobra.Command{
		Use:   "consume --as P --resource R --amount N",
		Short: "Report that P used N of resource R (a consume_quota action)",
		Long: `consume records usage of resource R by P, checked against P's quota before
it counts: for a rate (cpu_rate, llm_rate) it uses N of the rolling window,
for llm_budget it spends N for good. It fails with QUOTA_EXCEEDED when N is
more than is available (retriable when waiting frees enough). An agent
runtime reports its LLM use this way.`,
		Example: `  kernelhost quota consume --as bob --resource llm_rate --amount 60
  kernelhost quota consume --as bob --resource llm_budget --amount 1500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkResource(res); err != nil {
				return err
			}
			if amount <= 0 {
				return usagef("--amount %d: consume a positive amount", amount)
			}
			a := kernel.Action{Kind: kernel.KindConsumeQuota, Resource: res, Amount: amount, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s used %d %s\n", caller, amount, res)
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&res, "resource", "", "resource: "+resourceNames()+" (required)")
	cmd.Flags().Int64Var(&amount, "amount", 0, "amount used, positive (required)")
	_ = cmd.MarkFlagRequired("resource")
	_ = cmd.MarkFlagRequired("amount")
	return actionCmd(cmd, kernel.KindConsumeQuota, &rid)
}
