package main

import (
	"fmt"
	"io"

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
	cmd.AddCommand(transfer)
	return cmd
}

func newConsentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consent",
		Short: "Let a contract charge you as payer, within caps, or stop it",
		Long: `A contract may name a payer other than the caller (a sponsor). The kernel
honours that only if the payer consented to that contract, with a cap per
call and a total cap. Consent binds to the contract's code: a rewritten
contract needs fresh consent.`,
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
