package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/kernel"
)

// newRightCmd is 'kernelhost right': the right primitives and a listing.
func newRightCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "right",
		Short: "Mint, transfer, split, merge, redeem and list tokenized rights",
		Long: `A right is wrapped quota: a transferable, splittable claim on an amount of
one resource (cpu_rate, llm_rate, llm_budget, disk, memory), held by a
principal. mint moves unused quota into a new right held by the minter;
redeem moves it back into the holder's quota and removes the right. Each
command is one kernel action of the principal named by --as, atomic and
recorded, and only a right's current holder may use it. For every resource,
quotas plus outstanding rights change only by 'quota set' and new
principals: see README "Rights".

A right is an artifact of type right (ids share the artifact namespace):
'artifact get ID' reads its content {"resource","amount","holder"}, judged
by its access contract; no other artifact action changes it.`,
		Example: `  kernelhost right mint alice/llm-300 --as alice --resource llm_rate --amount 300
  kernelhost right transfer alice/llm-300 --as alice --to bob
  kernelhost right split alice/llm-300 --as bob --amounts 100,200
  kernelhost right merge alice/llm-300.1 --as bob --ids alice/llm-300.2
  kernelhost right redeem alice/llm-300.1 --as bob
  kernelhost right ls --holder bob`,
	}
	cmd.AddCommand(newRightMintCmd(g), newRightTransferCmd(g), newRightSplitCmd(g), newRightMergeCmd(g),
		newRightRedeemCmd(g), newRightLsCmd(g))
	return cmd
}

func newRightMintCmd(g *globals) *cobra.Command {
	var as, res, contract, rid string
	var amount int64
	cmd := &cobra.Command{
		Use:   "mint ID --as P --resource R --amount N [--contract C]",
		Short: "Wrap N of P's unused quota of R into a new right ID held by P (a mint_right action)",
		Long: `mint moves N of P's quota of resource R into right ID, held by P and
created by P forever. Like 'quota transfer' it takes only quota P is not
using (QUOTA_EXCEEDED otherwise). --contract names the access contract that
judges reads of the right (default: the world's default contract).`,
		Example: `  kernelhost right mint alice/llm-300 --as alice --resource llm_rate --amount 300
  kernelhost right mint alice/disk --as alice --resource disk --amount 100000 --contract genesis/private`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkResource(res); err != nil {
				return err
			}
			if amount <= 0 {
				return usagef("--amount %d: mint a positive amount", amount)
			}
			id := args[0]
			a := kernel.Action{Kind: kernel.KindMintRight, Target: id, Resource: res, Amount: amount, Contract: contract, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s minted right %s: %d %s\n", caller, id, amount, res)
			})
		},
	}
	addAs(cmd, &as)
	f := cmd.Flags()
	f.StringVar(&res, "resource", "", "resource: "+resourceNames()+" (required)")
	f.Int64Var(&amount, "amount", 0, "amount of quota to wrap, positive (required)")
	f.StringVar(&contract, "contract", "", "access contract judging reads of the right (default: the default contract)")
	_ = cmd.MarkFlagRequired("resource")
	_ = cmd.MarkFlagRequired("amount")
	return actionCmd(cmd, kernel.KindMintRight, &rid)
}

func newRightTransferCmd(g *globals) *cobra.Command {
	var as, to, rid string
	cmd := &cobra.Command{
		Use:   "transfer ID --as P --to Q",
		Short: "Make Q the holder of P's right ID (a transfer_right action)",
		Long: `transfer hands right ID, held by P, to principal Q. The amount and the
minter (created_by) stay; only the holder changes.`,
		Example:           `  kernelhost right transfer alice/llm-300 --as alice --to bob`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			a := kernel.Action{Kind: kernel.KindTransferRight, Target: id, To: to, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, _ kernel.Result) {
				fmt.Fprintf(out, "%s transferred right %s to %s\n", caller, id, to)
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&to, "to", "", "the new holder (required)")
	_ = cmd.MarkFlagRequired("to")
	return actionCmd(cmd, kernel.KindTransferRight, &rid)
}

func newRightSplitCmd(g *globals) *cobra.Command {
	var as, rid string
	var amounts []int64
	var ids []string
	cmd := &cobra.Command{
		Use:   "split ID --as P --amounts N,M[,...] [--ids A,B[,...]]",
		Short: "Replace P's right ID by 2 to 64 new rights (a split_right action)",
		Long: `split replaces right ID by new rights whose amounts sum exactly to its
amount, with the same resource, holder, minter and access contract. The new
ids are --ids, one per amount, or by default ID.1, ID.2, ...`,
		Example: `  kernelhost right split alice/llm-300 --as bob --amounts 100,200
  kernelhost right split alice/llm-300 --as bob --amounts 100,200 --ids bob/llm-100,bob/llm-200`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range amounts {
				if n <= 0 {
					return usagef("--amounts: every part must be positive, got %d", n)
				}
			}
			id := args[0]
			a := kernel.Action{Kind: kernel.KindSplitRight, Target: id, Amounts: amounts, IDs: ids, RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, r kernel.Result) {
				parts := make([]string, len(r.IDs))
				for i, pid := range r.IDs {
					if i < len(amounts) {
						parts[i] = fmt.Sprintf("%s (%d)", pid, amounts[i])
					}
				}
				fmt.Fprintf(out, "%s split right %s into %s\n", caller, id, strings.Join(parts, ", "))
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().Int64SliceVar(&amounts, "amounts", nil, "amounts of the parts, comma-separated, summing to the right's (required)")
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "ids of the parts, comma-separated (default ID.1, ID.2, ...)")
	_ = cmd.MarkFlagRequired("amounts")
	return actionCmd(cmd, kernel.KindSplitRight, &rid)
}

func newRightMergeCmd(g *globals) *cobra.Command {
	var as, rid string
	var ids []string
	cmd := &cobra.Command{
		Use:   "merge ID --as P --ids R2,R3[,...]",
		Short: "Add P's rights R2, R3, ... into P's right ID and remove them (a merge_rights action)",
		Long: `merge adds the amounts of the rights named by --ids into right ID and
removes them. All must be held by P and be of the same resource; ID keeps
its minter and access contract.`,
		Example:           `  kernelhost right merge bob/llm-100 --as bob --ids bob/llm-200`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			a := kernel.Action{Kind: kernel.KindMergeRights, Target: id, IDs: ids, RequestID: rid}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(cmd.Context(), as)
				if err != nil {
					return err
				}
				a.Caller = caller
				r, err := b.do(cmd.Context(), a)
				if err != nil {
					return err
				}
				return g.emitResult(r, func(out io.Writer) {
					fmt.Fprintf(out, "%s merged %s into right %s%s\n", caller, strings.Join(ids, ", "), id, amountOf(cmd.Context(), b, caller, id))
				})
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "rights to merge into ID, comma-separated (required)")
	_ = cmd.MarkFlagRequired("ids")
	return actionCmd(cmd, kernel.KindMergeRights, &rid)
}

// amountOf describes right id of holder as ": N resource", or "" if it
// cannot be found (the action already succeeded: this is only decoration).
func amountOf(ctx context.Context, b backend, holder, id string) string {
	if r, ok := rightOf(ctx, b, holder, id); ok {
		return fmt.Sprintf(": %d %s", r.Amount, r.Resource)
	}
	return ""
}

// rightOf returns right id if holder holds it.
func rightOf(ctx context.Context, b backend, holder, id string) (kernel.Right, bool) {
	rs, err := b.rights(ctx, holder)
	if err != nil {
		return kernel.Right{}, false
	}
	for _, r := range rs {
		if r.ID == id {
			return r, true
		}
	}
	return kernel.Right{}, false
}

func newRightRedeemCmd(g *globals) *cobra.Command {
	var as, rid string
	cmd := &cobra.Command{
		Use:   "redeem ID --as P",
		Short: "Move P's right ID back into P's quota and remove it (a redeem_right action)",
		Long: `redeem adds the right's amount to the holder's quota of its resource and
removes the right. Only the holder may redeem, whoever minted it.`,
		Example:           `  kernelhost right redeem alice/llm-300 --as bob`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cmd.Context()
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(ctx, as)
				if err != nil {
					return err
				}
				var before kernel.Right
				held := false
				if !g.json() {
					before, held = rightOf(ctx, b, caller, id)
				}
				r, err := b.do(ctx, kernel.Action{Kind: kernel.KindRedeemRight, Caller: caller, Target: id, RequestID: rid})
				if err != nil {
					return err
				}
				return g.emitResult(r, func(out io.Writer) {
					if !held {
						fmt.Fprintf(out, "%s redeemed right %s\n", caller, id)
						return
					}
					q, ok := quotaOf(ctx, b, caller, before.Resource)
					if !ok {
						fmt.Fprintf(out, "%s redeemed right %s: %d %s back into its quota\n", caller, id, before.Amount, before.Resource)
						return
					}
					fmt.Fprintf(out, "%s redeemed right %s: %d %s back into its quota (now %d)\n", caller, id, before.Amount, before.Resource, q)
				})
			})
		},
	}
	addAs(cmd, &as)
	return actionCmd(cmd, kernel.KindRedeemRight, &rid)
}

// quotaOf returns id's quota of res (decoration: false when it cannot).
func quotaOf(ctx context.Context, b backend, id string, res kernel.Resource) (int64, bool) {
	qs, err := b.quotas(ctx, id)
	if err != nil {
		return 0, false
	}
	for _, q := range qs {
		if q.Resource == res {
			return q.Quota, true
		}
	}
	return 0, false
}

// writeRights prints a rights table.
func writeRights(w io.Writer, rs []kernel.Right) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no rights")
		return
	}
	fmt.Fprintf(w, "%-24s %-12s %14s  %-16s %-16s %s\n", "RIGHT", "RESOURCE", "AMOUNT", "HOLDER", "MINTED BY", "CONTRACT")
	for _, r := range rs {
		fmt.Fprintf(w, "%-24s %-12s %14d  %-16s %-16s %s\n", r.ID, r.Resource, r.Amount, r.Holder, r.CreatedBy, r.Contract)
	}
}

func newRightLsCmd(g *globals) *cobra.Command {
	var holder string
	cmd := &cobra.Command{
		Use:   "ls [--holder P]",
		Short: "List outstanding rights: P's, or every principal's",
		Long: `ls lists rights with their resource, amount, holder, minter (created_by)
and access contract, by holder and then id. These are kernel facts kept by
holder; the CLI is the operator, who holds the data directory, so it may
list every principal's. It records nothing. With --server a principal's
token lists its own rights only (GET /v1/rights), the admin token
everyone's.`,
		Example: `  kernelhost right ls
  kernelhost right ls --holder bob -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				rs, err := b.rights(cmd.Context(), holder)
				if err != nil {
					return err
				}
				return g.emit(rs, func(out io.Writer) { writeRights(out, rs) })
			})
		},
	}
	cmd.Flags().StringVar(&holder, "holder", "", "list only the rights this principal holds")
	return cmd
}

// listRights returns holder's rights, or every principal's when holder is
// empty, never nil. An unknown holder is NOT_FOUND.
func listRights(ctx context.Context, k *kernel.Kernel, holder string) ([]kernel.Right, error) {
	var ids []string
	if holder != "" {
		if _, err := k.Principal(ctx, holder); err != nil {
			return nil, err
		}
		ids = []string{holder}
	} else {
		ps, err := k.Principals(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
	}
	out := []kernel.Right{}
	for _, id := range ids {
		rs, err := k.Rights(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}
