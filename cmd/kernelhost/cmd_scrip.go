package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/kernel"
)

func newScripCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "scrip",
		Short:   "Move scrip between principals",
		Example: `  kernelhost scrip transfer --as alice --to bob --amount 10`,
	}
	var as, to string
	var amount int64
	transfer := &cobra.Command{
		Use:   "transfer --as P --to Q --amount N",
		Short: "Transfer N scrip from P to Q (a transfer action)",
		Long: `transfer moves N scrip from P's balance to Q's, atomically, and records it in
the audit trail. N must be positive and at most P's balance.`,
		Example: `  kernelhost scrip transfer --as alice --to bob --amount 10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if amount <= 0 {
				return usagef("--amount %d: transfer a positive amount of scrip", amount)
			}
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindTransfer, Caller: as, To: to, Amount: amount})
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "transferred %d scrip from %s to %s\n", amount, as, to)
				})
			})
		},
	}
	addAs(transfer, &as)
	transfer.Flags().StringVar(&to, "to", "", "recipient principal (required)")
	transfer.Flags().Int64Var(&amount, "amount", 0, "scrip to transfer, positive (required)")
	_ = transfer.MarkFlagRequired("to")
	_ = transfer.MarkFlagRequired("amount")
	cmd.AddCommand(transfer, newScripLimitCmd(g))
	return cmd
}

func newScripLimitCmd(g *globals) *cobra.Command {
	var as string
	var amount int64
	cmd := &cobra.Command{
		Use:   "limit --as P --amount N",
		Short: "Set the most P pays for one action by default (a set_spending_limit action)",
		Long: `limit sets P's default spending limit: the most scrip one action of P's that
gives no --max-cost pays for its contract's decision; for an invoke, the most
the whole invocation may debit from P (prices and transfers made as P). A
price above it is COST_LIMIT_EXCEEDED and nothing is charged. A new principal's
limit is the kernel's default (100). N may be 0: then P pays for nothing
without an explicit --max-cost.`,
		Example: `  kernelhost scrip limit --as alice --amount 500
  kernelhost artifact get priced/doc --as alice --max-cost 900`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if amount < 0 {
				return usagef("--amount %d: a spending limit is 0 or more", amount)
			}
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindSetSpendingLimit, Caller: as, Amount: amount})
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "%s pays at most %d scrip per action unless it says otherwise (--max-cost)\n", as, amount)
				})
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().Int64Var(&amount, "amount", 0, "the limit in scrip, 0 or more (required)")
	_ = cmd.MarkFlagRequired("amount")
	return cmd
}

func newStandingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "standing",
		Short: "Let an executable act as you, or stop it",
		Long: `An executable acts as the principal that invoked it. It may act as another
principal P (a host call with "as": P) only if P granted it standing. The
grant binds the executable's code and metadata as they are at grant time:
rewriting the code or changing any metadata voids it. Nothing else, an id
included, gives an executable standing.`,
		Example: `  kernelhost standing grant --as market --exe escrow/market
  kernelhost standing revoke --as market --exe escrow/market`,
	}
	for _, v := range []struct {
		kind       kernel.Kind
		use, short string
		done       string
	}{
		{kernel.KindGrantStanding, "grant --as P --exe E", "Let executable E act as P while its code and metadata stay as they are", "%s lets %s act as it\n"},
		{kernel.KindRevokeStanding, "revoke --as P --exe E", "Withdraw executable E's standing to act as P", "%s no longer lets %s act as it\n"},
	} {
		var as, exe string
		sub := &cobra.Command{
			Use:     v.use,
			Short:   v.short,
			Example: "  kernelhost standing " + strings.Fields(v.use)[0] + " --as market --exe escrow/market",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return g.withWorld(cmd.Context(), func(w *world) error {
					res := w.k.Do(cmd.Context(), kernel.Action{Kind: v.kind, Caller: as, Target: exe})
					return g.emitResult(res, func(out io.Writer) { fmt.Fprintf(out, v.done, as, exe) })
				})
			},
		}
		addAs(sub, &as)
		sub.Flags().StringVar(&exe, "exe", "", "executable artifact id (required)")
		_ = sub.MarkFlagRequired("exe")
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "ls P",
		Short:   "List the executables P granted standing, and whether each grant still holds",
		Example: "  kernelhost standing ls market",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withWorld(cmd.Context(), func(w *world) error {
				sts, err := w.k.Standings(cmd.Context(), args[0])
				if err != nil {
					return codedError(err)
				}
				return g.emit(sts, func(out io.Writer) {
					if len(sts) == 0 {
						fmt.Fprintf(out, "%s granted no executable standing\n", args[0])
					}
					for _, s := range sts {
						state := "holds"
						if !s.Valid {
							state = "void: the executable's code or metadata changed, or it is gone"
						}
						fmt.Fprintf(out, "%s  terms %.16s…  %s\n", s.Executable, s.Terms, state)
					}
				})
			})
		},
	})
	return cmd
}

func newConsentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consent",
		Short: "Let a contract charge you as payer, within caps, or stop it",
		Long: `A contract may name a payer other than the caller (a sponsor). The kernel
honours that only if the payer consented to that contract, with a cap per
call and a total cap. Consent binds to the contract's terms, its code and its
configuration (metadata): a rewritten or reconfigured contract needs fresh
consent.`,
		Example: `  kernelhost consent grant --as sponsor --contract alice/pay --per-call 10 --total 1000
  kernelhost consent revoke --as sponsor --contract alice/pay`,
	}
	var as, contract string
	var perCall, total int64
	grant := &cobra.Command{
		Use:     "grant --as P --contract C --per-call N --total N",
		Short:   "Let contract C charge P up to N per call and N in total",
		Example: `  kernelhost consent grant --as sponsor --contract alice/pay --per-call 10 --total 1000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if perCall <= 0 || total <= 0 {
				return usagef("--per-call and --total must be positive")
			}
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindGrantConsent, Caller: as, Contract: contract, PerCallCap: perCall, TotalCap: total})
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "%s lets %s charge it up to %d per call, %d in total\n", as, contract, perCall, total)
				})
			})
		},
	}
	addAs(grant, &as)
	grant.Flags().StringVar(&contract, "contract", "", "contract id (required)")
	grant.Flags().Int64Var(&perCall, "per-call", 0, "most the contract may charge per action (required)")
	grant.Flags().Int64Var(&total, "total", 0, "most the contract may charge in total (required)")
	_ = grant.MarkFlagRequired("contract")
	_ = grant.MarkFlagRequired("per-call")
	_ = grant.MarkFlagRequired("total")

	var ras, rcontract string
	revoke := &cobra.Command{
		Use:     "revoke --as P --contract C",
		Short:   "Withdraw P's consent to be charged by contract C",
		Example: `  kernelhost consent revoke --as sponsor --contract alice/pay`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindRevokeConsent, Caller: ras, Contract: rcontract})
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "%s no longer lets %s charge it\n", ras, rcontract)
				})
			})
		},
	}
	addAs(revoke, &ras)
	revoke.Flags().StringVar(&rcontract, "contract", "", "contract id (required)")
	_ = revoke.MarkFlagRequired("contract")
	cmd.AddCommand(grant, revoke)
	return cmd
}
