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
	var as, to, rid string
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
			a := kernel.Action{Kind: kernel.KindTransfer, To: to, Amount: amount, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "transferred %d scrip from %s to %s\n", amount, caller, to)
			})
		},
	}
	addAs(transfer, &as)
	transfer.Flags().StringVar(&to, "to", "", "recipient principal (required)")
	transfer.Flags().Int64Var(&amount, "amount", 0, "scrip to transfer, positive (required)")
	_ = transfer.MarkFlagRequired("to")
	_ = transfer.MarkFlagRequired("amount")
	actionCmd(transfer, kernel.KindTransfer, &rid)
	cmd.AddCommand(transfer, newScripLimitCmd(g), newScripMintCmd(g))
	return cmd
}

func newScripMintCmd(g *globals) *cobra.Command {
	var amount int64
	cmd := &cobra.Command{
		Use:   "mint ID --amount N",
		Short: "Mint N new scrip into principal ID's balance (administrative)",
		Long: `mint creates N scrip and adds it to principal ID's balance: the world's
minted total grows by N, so the ledger still checks (see 'totals'). No
action can do it: it is the operator's tool, like 'principal create' and
'quota set'. Over HTTP it needs the admin token (POST /v1/mint).`,
		Example: `  kernelhost scrip mint carol --amount 500
  KERNELHOST_TOKEN=$ADMIN kernelhost --server http://127.0.0.1:8080 scrip mint carol --amount 500`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if amount <= 0 {
				return usagef("--amount %d: mint a positive amount of scrip", amount)
			}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				p, err := b.mint(cmd.Context(), args[0], amount)
				if err != nil {
					return err
				}
				return g.emit(p, func(out io.Writer) {
					fmt.Fprintf(out, "minted %d scrip to %s: balance %d\n", amount, p.ID, p.Balance)
				})
			})
		},
	}
	cmd.Flags().Int64Var(&amount, "amount", 0, "scrip to mint, positive (required)")
	_ = cmd.MarkFlagRequired("amount")
	return cmd
}

func newScripLimitCmd(g *globals) *cobra.Command {
	var as, rid string
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
			a := kernel.Action{Kind: kernel.KindSetSpendingLimit, Amount: amount, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s pays at most %d scrip per action unless it says otherwise (--max-cost)\n", caller, amount)
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().Int64Var(&amount, "amount", 0, "the limit in scrip, 0 or more (required)")
	_ = cmd.MarkFlagRequired("amount")
	return actionCmd(cmd, kernel.KindSetSpendingLimit, &rid)
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
		var as, exe, rid string
		sub := &cobra.Command{
			Use:     v.use,
			Short:   v.short,
			Example: "  kernelhost standing " + strings.Fields(v.use)[0] + " --as market --exe escrow/market",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				a := kernel.Action{Kind: v.kind, Target: exe, RequestID: rid}
				return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) { fmt.Fprintf(out, v.done, caller, exe) })
			},
		}
		addAs(sub, &as)
		sub.Flags().StringVar(&exe, "exe", "", "executable artifact id (required)")
		_ = sub.MarkFlagRequired("exe")
		cmd.AddCommand(actionCmd(sub, v.kind, &rid))
	}
	cmd.AddCommand(&cobra.Command{
		Use:               "ls P",
		Short:             "List the executables P granted standing, and whether each grant still holds",
		Example:           "  kernelhost standing ls market",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				sts, err := b.standings(cmd.Context(), args[0])
				if err != nil {
					return err
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
	var as, contract, rid string
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
			a := kernel.Action{Kind: kernel.KindGrantConsent, Contract: contract, PerCallCap: perCall, TotalCap: total, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s lets %s charge it up to %d per call, %d in total\n", caller, contract, perCall, total)
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
	actionCmd(grant, kernel.KindGrantConsent, &rid)

	var ras, rcontract, rrid string
	revoke := &cobra.Command{
		Use:     "revoke --as P --contract C",
		Short:   "Withdraw P's consent to be charged by contract C",
		Example: `  kernelhost consent revoke --as sponsor --contract alice/pay`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := kernel.Action{Kind: kernel.KindRevokeConsent, Contract: rcontract, RequestID: rrid}
			return g.act(cmd, ras, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s no longer lets %s charge it\n", caller, rcontract)
			})
		},
	}
	addAs(revoke, &ras)
	revoke.Flags().StringVar(&rcontract, "contract", "", "contract id (required)")
	_ = revoke.MarkFlagRequired("contract")
	actionCmd(revoke, kernel.KindRevokeConsent, &rrid)
	cmd.AddCommand(grant, revoke, newConsentShowCmd(g), newConsentLsCmd(g), newConsentLLMGrantCmd(g), newConsentLLMRevokeCmd(g), newConsentLLMShowCmd(g))
	return cmd
}

func newConsentLsCmd(g *globals) *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "ls --as P",
		Short: "List the contracts P consented to be charged by, with caps and what was spent",
		Long: `ls lists every consent P granted: contract, caps per call and in total,
what was spent, and the hash of the terms it binds. It records nothing.
With --server a principal's token lists its own, the admin token anyone's.`,
		Example: `  kernelhost consent ls --as sponsor`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				payer, err := b.viewer(cmd.Context(), as)
				if err != nil {
					return err
				}
				gs, err := b.consents(cmd.Context(), payer)
				if err != nil {
					return err
				}
				return g.emit(gs, func(out io.Writer) {
					if len(gs) == 0 {
						fmt.Fprintf(out, "%s consented to no contract\n", payer)
						return
					}
					fmt.Fprintf(out, "%-28s %10s %10s %10s  %s\n", "CONTRACT", "PER CALL", "TOTAL", "SPENT", "TERMS")
					for _, gr := range gs {
						fmt.Fprintf(out, "%-28s %10d %10d %10d  %.16s…\n", gr.Contract, gr.PerCallCap, gr.TotalCap, gr.Spent, gr.Terms)
					}
				})
			})
		},
	}
	addAs(cmd, &as)
	return cmd
}

func newConsentLLMShowCmd(g *globals) *cobra.Command {
	var as, to string
	cmd := &cobra.Command{
		Use:   "show-llm --as SPONSOR --to P",
		Short: "Show SPONSOR's consent to pay P's LLM calls: caps and what was spent",
		Long: `show-llm prints the consent SPONSOR granted to pay P's LLM calls
(grant-llm): the caps per call and in total (micro-dollars), the token cap,
and what was spent of each. NOT_FOUND when there is none. It records
nothing.`,
		Example: `  kernelhost consent show-llm --as sponsor --to bob`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				sponsor, err := b.viewer(cmd.Context(), as)
				if err != nil {
					return err
				}
				c, err := b.llmConsent(cmd.Context(), sponsor, to)
				if err != nil {
					return err
				}
				return g.emit(c, func(out io.Writer) {
					fmt.Fprintf(out, "%s pays %s's LLM calls: up to %dµ$ per call, %dµ$ and %d tokens in all; spent %dµ$ and %d tokens\n",
						c.Sponsor, c.Principal, c.PerCallCap, c.TotalCap, c.TokenCap, c.SpentCost, c.SpentTokens)
				})
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&to, "to", "", "the principal whose calls are paid (required)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newConsentLLMGrantCmd(g *globals) *cobra.Command {
	var as, to, rid string
	var perCall, total, tokens int64
	cmd := &cobra.Command{
		Use:   "grant-llm --as SPONSOR --to P --per-call N --total N --tokens N",
		Short: "Pay P's LLM calls through the gateway, within caps (a grant_llm_consent action)",
		Long: `grant-llm lets principal P's LLM calls through the gateway (POST
/v1/llm/chat) be paid by SPONSOR: at most --per-call micro-dollars per
call, --total micro-dollars and --tokens tokens in all. Granting again
replaces the caps and starts the spending over.`,
		Example: `  kernelhost consent grant-llm --as sponsor --to bob --per-call 2000 --total 100000 --tokens 50000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if perCall <= 0 || total <= 0 || tokens <= 0 {
				return usagef("--per-call, --total and --tokens must be positive")
			}
			a := kernel.Action{Kind: kernel.KindGrantLLMConsent, To: to, PerCallCap: perCall, TotalCap: total, Amount: tokens, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s pays %s's LLM calls: up to %dµ$ per call, %dµ$ and %d tokens in all\n", caller, to, perCall, total, tokens)
			})
		},
	}
	addAs(cmd, &as)
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the principal whose calls are paid (required)")
	f.Int64Var(&perCall, "per-call", 0, "most one call may cost, in micro-dollars (required)")
	f.Int64Var(&total, "total", 0, "most all calls may cost, in micro-dollars (required)")
	f.Int64Var(&tokens, "tokens", 0, "most tokens all calls may use (required)")
	for _, n := range []string{"to", "per-call", "total", "tokens"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return actionCmd(cmd, kernel.KindGrantLLMConsent, &rid)
}

func newConsentLLMRevokeCmd(g *globals) *cobra.Command {
	var as, to, rid string
	cmd := &cobra.Command{
		Use:     "revoke-llm --as SPONSOR --to P",
		Short:   "Stop paying P's LLM calls (a revoke_llm_consent action)",
		Example: `  kernelhost consent revoke-llm --as sponsor --to bob`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := kernel.Action{Kind: kernel.KindRevokeLLMConsent, To: to, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s no longer pays %s's LLM calls\n", caller, to)
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&to, "to", "", "the principal whose calls were paid (required)")
	_ = cmd.MarkFlagRequired("to")
	return actionCmd(cmd, kernel.KindRevokeLLMConsent, &rid)
}

func newConsentShowCmd(g *globals) *cobra.Command {
	var as, contract string
	cmd := &cobra.Command{
		Use:   "show --as P --contract C",
		Short: "Show P's consent to be charged by contract C: its caps and what was spent",
		Long: `show prints the consent P granted contract C: the caps per call and in
total, what C has charged under it so far, and the hash of the terms it
binds (the contract's code and configuration at grant time: any change to
them voids it). NOT_FOUND when P gave C no consent. It records nothing.`,
		Example: `  kernelhost consent show --as sponsor --contract alice/pay`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				payer, err := b.viewer(cmd.Context(), as)
				if err != nil {
					return err
				}
				gr, err := b.consent(cmd.Context(), payer, contract)
				if err != nil {
					return err
				}
				return g.emit(gr, func(out io.Writer) {
					fmt.Fprintf(out, "%s lets %s charge it up to %d per call, %d in total; spent %d; terms %.16s…\n",
						gr.Payer, gr.Contract, gr.PerCallCap, gr.TotalCap, gr.Spent, gr.Terms)
				})
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&contract, "contract", "", "contract id (required)")
	_ = cmd.MarkFlagRequired("contract")
	return cmd
}
