package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

func newArtifactCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact",
		Short: "Put, get, remove, list and show artifacts, as a principal",
		Long: `Every artifact command is an action of the principal named by --as, judged
by the artifact's access contract exactly as the HTTP API would judge it.`,
		Example: `  kernelhost artifact put notes/1 --as alice --type text --text "hello" --meta topic=greetings
  kernelhost artifact get notes/1 --as bob
  kernelhost artifact show notes/1 --as bob
  kernelhost artifact edit notes/1 --as alice --meta topic=news --unset draft
  kernelhost artifact set-contract notes/1 --as alice --contract genesis/private
  kernelhost artifact invoke escrow/market --as bob --method buy --args '{"right":"r","price":40}'
  kernelhost artifact ls --as bob
  kernelhost artifact rm notes/1 --as alice`,
	}
	cmd.AddCommand(newArtifactPutCmd(g), newArtifactGetCmd(g), newArtifactRmCmd(g), newArtifactLsCmd(g), newArtifactShowCmd(g),
		newArtifactEditCmd(g), newArtifactSetContractCmd(g), newArtifactInvokeCmd(g))
	return cmd
}

// parseMeta turns k=v flags into a map.
func parseMeta(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--meta %q: use key=value", p)
		}
		m[k] = v
	}
	return m, nil
}

// readContent returns the content given by --file (- for stdin) or --text.
func readContent(cmd *cobra.Command, file, text string, textSet bool) ([]byte, error) {
	switch {
	case file != "" && textSet:
		return nil, usagef("give the content with --file or --text, not both")
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), kernel.MaxActionJSON))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read --file: %w", err)
		}
		return b, nil
	case textSet:
		return []byte(text), nil
	}
	return nil, nil
}

// addAs registers --as, the principal acting: required locally; with
// --server the token's principal, which --as may name (backend.actor).
func addAs(cmd *cobra.Command, as *string) {
	cmd.Flags().StringVar(as, "as", "", "principal acting (required; with --server: the token's, which --as may name)")
}

// addMaxCost registers --max-cost, the most the caller agrees to pay for
// the action (kernel.Action.MaxCost); maxCostOf gives it, or nil when the
// flag was not set (the caller's default spending limit applies).
func addMaxCost(cmd *cobra.Command, v *int64) {
	cmd.Flags().Int64Var(v, "max-cost", 0, "most scrip you agree to pay for this action (default: your spending limit, see 'scrip limit')")
}

func maxCostOf(cmd *cobra.Command, v int64) *int64 {
	if !cmd.Flags().Changed("max-cost") {
		return nil
	}
	return &v
}

// kindAnnotation names, on a command that performs one kernel action, the
// action's kind (kernel.Kind): the tree's map from kinds to commands
// (TestEveryActionHasCommand).
const kindAnnotation = "kernelhost/kind"

// actionCmd marks cmd as the command of action kind and registers
// --request-id, which every acting command takes (kernel.Action.RequestID:
// a retry with the same id returns the first result and runs nothing).
// requestID points at the flag's value.
func actionCmd(cmd *cobra.Command, kind kernel.Kind, requestID *string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[kindAnnotation] = string(kind)
	cmd.Flags().StringVar(requestID, "request-id", "", "make the action idempotent: a retry with the same id (within 24h) returns the first result and runs nothing")
	return cmd
}

func newArtifactPutCmd(g *globals) *cobra.Command {
	var as, typ, contract, file, text, rid string
	var meta, unset []string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "put ID --as P (--file F | --text S) [--type T] [--contract C] [--meta k=v ...] [--unset k ...] [--max-cost N]",
		Short: "Create an artifact, or replace an existing one's content (a write action)",
		Long: `put writes artifact ID as principal P. Creating needs --type; --contract names
the access contract that will govern it (default genesis/freeware: anyone
reads, only the controller changes). On an existing artifact put replaces
the content and merges --meta into the metadata (--unset removes keys), if
its contract allows P to write. A "controller" metadata value hands control
to another principal under the genesis contracts.`,
		Example: `  kernelhost artifact put notes/1 --as alice --type text --text "hello"
  kernelhost artifact put diary --as alice --type text --contract genesis/private --file diary.txt
  cat data.bin | kernelhost artifact put blob --as alice --type data --file -
  kernelhost artifact put notes/1 --as alice --text "v2" --meta controller=bob`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			content, err := readContent(cmd, file, text, cmd.Flags().Changed("text"))
			if err != nil {
				return err
			}
			if content == nil {
				return usagef("give the content with --file F or --text S (--text '' for empty)")
			}
			a := kernel.Action{Kind: kernel.KindWrite, Target: args[0], Type: typ, Contract: contract, Content: content, Metadata: m, Unset: unset,
				MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(cmd.Context(), as)
				if err != nil {
					return err
				}
				a.Caller = caller
				res, err := b.do(cmd.Context(), a)
				if err != nil {
					return err
				}
				if !res.OK && typ == "" && strings.Contains(res.Message, "needs a type") {
					return fmt.Errorf("%s: creating %s needs a type: pass --type (e.g. --type text)", res.ErrorCode, args[0])
				}
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "wrote %s (%d bytes) as %s: revision %d; %s\n", args[0], len(content), caller, res.Revision, chargesText(res.Charges))
				})
			})
		},
	}
	addAs(cmd, &as)
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "artifact type when creating (lowercase, e.g. text, data, contract)")
	f.StringVar(&contract, "contract", "", "access contract of a new artifact (default genesis/freeware)")
	f.StringVar(&file, "file", "", "read the content from this file (- for stdin)")
	f.StringVar(&text, "text", "", "the content as text")
	f.StringArrayVar(&meta, "meta", nil, "metadata key=value (repeatable)")
	f.StringArrayVar(&unset, "unset", nil, "metadata key to remove (repeatable)")
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindWrite, &rid)
}

func newArtifactGetCmd(g *globals) *cobra.Command {
	var as, rid string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "get ID --as P [--max-cost N]",
		Short: "Read an artifact's content (a read action; the contract may charge)",
		Long: `get reads artifact ID as principal P and prints its content exactly, with no
trailing newline added. With -o json it prints the whole result: content
(base64, and as text when it is UTF-8), metadata, decision and charges.`,
		Example: `  kernelhost artifact get notes/1 --as bob
  kernelhost artifact get notes/1 --as bob -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := kernel.Action{Kind: kernel.KindRead, Target: args[0], MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, _ string, res kernel.Result) {
				_, _ = out.Write(res.Content)
				if len(res.Charges) > 0 {
					g.log.Info("read charged", "charges", chargesText(res.Charges))
				}
			})
		},
	}
	addAs(cmd, &as)
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindRead, &rid)
}

func newArtifactShowCmd(g *globals) *cobra.Command {
	var as, rid string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "show ID --as P [--max-cost N]",
		Short: "Show an artifact's description and metadata (a read action)",
		Long: `show reads artifact ID as principal P, like get, and prints its description
instead of its content. It is a read: the contract judges it and may charge.`,
		Example:           `  kernelhost artifact show notes/1 --as bob`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := kernel.Action{Kind: kernel.KindRead, Target: args[0], MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(cmd.Context(), as)
				if err != nil {
					return err
				}
				a.Caller = caller
				res, err := b.do(cmd.Context(), a)
				if err != nil {
					return err
				}
				if g.json() && res.OK {
					res.Content = nil
				}
				return g.emitResult(res, func(out io.Writer) {
					if res.Artifact == nil { // a replayed read: its result keeps no description
						fmt.Fprintf(out, "read %s before (request id %s): read again for its description\n", args[0], rid)
						return
					}
					writeArtifactInfo(out, res.Artifact)
					fmt.Fprintf(out, "decision:        %s\n", decisionText(res.Decision))
					fmt.Fprintf(out, "charges:         %s\n", chargesText(res.Charges))
				})
			})
		},
	}
	addAs(cmd, &as)
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindRead, &rid)
}

func newArtifactRmCmd(g *globals) *cobra.Command {
	var as, rid string
	var maxCost int64
	cmd := &cobra.Command{
		Use:               "rm ID --as P [--max-cost N]",
		Short:             "Delete an artifact (a delete action)",
		Example:           `  kernelhost artifact rm notes/1 --as alice`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := kernel.Action{Kind: kernel.KindDelete, Target: args[0], MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, _ string, res kernel.Result) {
				fmt.Fprintf(out, "deleted %s; %s\n", args[0], chargesText(res.Charges))
			})
		},
	}
	addAs(cmd, &as)
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindDelete, &rid)
}

func newArtifactEditCmd(g *globals) *cobra.Command {
	var as, file, text, rid string
	var meta, unset []string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "edit ID --as P [--file F | --text S] [--meta k=v ...] [--unset k ...] [--max-cost N]",
		Short: "Change an artifact in place: its content, metadata or both (an edit action)",
		Long: `edit changes artifact ID as principal P, judged by its contract as an edit
(not as a write): --file or --text replaces the content (left out, the
content stays), --meta sets metadata keys and --unset removes them. The
type and the access contract never change by edit (set-contract changes
the contract).`,
		Example: `  kernelhost artifact edit notes/1 --as alice --meta topic=news
  kernelhost artifact edit notes/1 --as alice --unset draft --text "final"
  kernelhost artifact edit notes/1 --as alice --meta controller=bob`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			content, err := readContent(cmd, file, text, cmd.Flags().Changed("text"))
			if err != nil {
				return err
			}
			if content == nil && len(m) == 0 && len(unset) == 0 {
				return usagef("nothing to edit: give --file or --text, --meta k=v or --unset k")
			}
			a := kernel.Action{Kind: kernel.KindEdit, Target: args[0], Content: content, Metadata: m, Unset: unset,
				MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, res kernel.Result) {
				fmt.Fprintf(out, "edited %s as %s: revision %d; %s\n", args[0], caller, res.Revision, chargesText(res.Charges))
			})
		},
	}
	addAs(cmd, &as)
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "the new content, from this file (- for stdin)")
	f.StringVar(&text, "text", "", "the new content as text")
	f.StringArrayVar(&meta, "meta", nil, "metadata key=value to set (repeatable)")
	f.StringArrayVar(&unset, "unset", nil, "metadata key to remove (repeatable)")
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindEdit, &rid)
}

func newArtifactSetContractCmd(g *globals) *cobra.Command {
	var as, contract, rid string
	var maxCost int64
	cmd := &cobra.Command{
		Use:     "set-contract ID --contract C --as P [--max-cost N]",
		Aliases: []string{"set_contract"},
		Short:   "Put an artifact under another access contract (a set_contract action)",
		Long: `set-contract makes contract C govern artifact ID, as principal P: the
artifact's current contract judges it (under the genesis contracts, only
the controller may). C must be a contract artifact. Payers who consented to
the old contract are not bound to the new one.`,
		Example: `  kernelhost artifact set-contract notes/1 --as alice --contract genesis/private
  kernelhost artifact set_contract report --as alice --contract alice/pay`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := kernel.Action{Kind: kernel.KindSetContract, Target: args[0], Contract: contract, MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			return g.act(cmd, as, a, func(out io.Writer, caller string, res kernel.Result) {
				fmt.Fprintf(out, "%s now governs %s (set by %s); %s\n", contract, args[0], caller, chargesText(res.Charges))
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&contract, "contract", "", "the new access contract (required)")
	_ = cmd.MarkFlagRequired("contract")
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindSetContract, &rid)
}

func newArtifactInvokeCmd(g *globals) *cobra.Command {
	var as, method, args, argsFile, rid string
	var maxCost, maxLLMCost int64
	cmd := &cobra.Command{
		Use:   "invoke ID --as P [--method M] [--args S | --args-file F] [--max-cost N] [--max-llm-cost µ$]",
		Short: "Run an executable artifact (an invoke action)",
		Long: `invoke runs executable ID as principal P: its access contract judges the
invoke (and may charge), then the executable runs with --method and --args
and may act through host calls, as P, or as a principal that granted it
standing. Every change it makes commits with the invoke, or none does
(EXECUTION_FAILED rolls it all back). --max-cost caps everything the
invocation debits from P. --max-llm-cost lets the executable call an LLM
through the server's gateway as P, for at most that many micro-dollars of
P's llm_budget in all (default 0: no LLM call). The executable's output is printed exactly, its
log lines on stderr; -o json prints the whole result (output, output_text,
logs, charges).`,
		Example: `  kernelhost artifact invoke counter --as alice --method incr
  kernelhost artifact invoke escrow/market --as bob --method buy --args '{"right":"alice/llm-300","price":40}'
  kernelhost artifact invoke escrow/market --as bob --method list --args-file order.json -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeArtifactArg,
		RunE: func(cmd *cobra.Command, pos []string) error {
			a := kernel.Action{Kind: kernel.KindInvoke, Target: pos[0], Method: method, MaxCost: maxCostOf(cmd, maxCost), RequestID: rid}
			if cmd.Flags().Changed("max-llm-cost") {
				if maxLLMCost < 0 {
					return usagef("--max-llm-cost %d: give 0 or more micro-dollars", maxLLMCost)
				}
				a.MaxLLMCost = &maxLLMCost
			}
			switch {
			case argsFile != "" && cmd.Flags().Changed("args"):
				return usagef("give the arguments with --args or --args-file, not both")
			case argsFile != "":
				b, err := readContent(cmd, argsFile, "", false)
				if err != nil {
					return err
				}
				a.Args = b
			case cmd.Flags().Changed("args"):
				a.Args = []byte(args)
			}
			return g.act(cmd, as, a, func(out io.Writer, _ string, res kernel.Result) {
				for _, l := range res.Logs {
					fmt.Fprintf(g.errOut, "log: %s\n", l)
				}
				_, _ = out.Write(res.Output)
				if len(res.Charges) > 0 {
					g.log.Info("invoke charged", "charges", chargesText(res.Charges))
				}
			})
		},
	}
	addAs(cmd, &as)
	f := cmd.Flags()
	f.StringVar(&method, "method", "", "the method to run")
	f.StringVar(&args, "args", "", "the arguments, as text")
	f.StringVar(&argsFile, "args-file", "", "read the arguments from this file (- for stdin)")
	f.Int64Var(&maxLLMCost, "max-llm-cost", 0, "most micro-dollars of your llm_budget the executable's LLM calls may cost in all (default 0: none)")
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindInvoke, &rid)
}

// lsEntry is one readable artifact in artifact ls.
type lsEntry struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Size      uint64 `json:"size"`
	Contract  string `json:"access_contract"`
	CreatedBy string `json:"created_by"`
	// ReadCost is what a read would cost now, and ReadPayer who would pay.
	ReadCost  uint64 `json:"read_cost"`
	ReadPayer string `json:"read_payer,omitempty"`
}

// lsEntryOf is the entry of an explained read of id by caller, and false
// when caller may not read it.
func lsEntryOf(id, caller string, ex api.Explanation) (lsEntry, bool) {
	if !ex.TargetReadable || ex.Request == nil || ex.Decision == nil {
		return lsEntry{}, false
	}
	e := lsEntry{ID: id, Type: ex.Request.TargetType, Size: ex.Request.Size, Contract: ex.Contract,
		CreatedBy: ex.Request.CreatedBy, ReadCost: ex.Decision.Cost}
	if e.ReadCost > 0 {
		e.ReadPayer = ex.Decision.Payer
		if e.ReadPayer == "" {
			e.ReadPayer = caller
		}
	}
	return e, true
}

// localArtifacts lists the artifacts of prefix that caller may read, with
// what a read would cost: each one's read check runs as Explain runs it
// (no effect on the world; charged to caller's cpu_rate).
func localArtifacts(ctx context.Context, k *kernel.Kernel, caller, prefix string) ([]lsEntry, error) {
	ids, err := k.ArtifactIDs(ctx)
	if err != nil {
		return nil, codedError(err)
	}
	entries := []lsEntry{}
	for _, id := range ids {
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		start := time.Now()
		ex, err := k.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: caller, Target: id})
		if err != nil {
			return nil, codedError(err)
		}
		if ex.Outcome.Resource != "" {
			// QUOTA_EXCEEDED: caller cannot pay for the check; say so
			// rather than list fewer artifacts.
			return nil, codedError(ex.Outcome.Err())
		}
		if e, ok := lsEntryOf(id, caller, api.ExplanationOf(ex, caller, time.Since(start))); ok {
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func newArtifactLsCmd(g *globals) *cobra.Command {
	var as, prefix string
	cmd := &cobra.Command{
		Use:   "ls --as P [--prefix S]",
		Short: "List the artifacts P may read",
		Long: `ls lists the artifacts principal P may read (those whose ids start with
--prefix). For each artifact it runs P's read check without side effects on
the world (like 'contract check'): no scrip moves, nothing is recorded, and
artifacts P may not read are not shown. Each check is charged to P's
cpu_rate as a read would be; when it runs out, ls fails with
QUOTA_EXCEEDED. It also shows what reading each would cost and who would
pay.`,
		Example: `  kernelhost artifact ls --as bob
  kernelhost artifact ls --as bob --prefix notes/
  kernelhost artifact ls --as bob -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Explain charges cpu_rate: a write of the rate windows.
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(cmd.Context(), as)
				if err != nil {
					return err
				}
				entries, err := b.listArtifacts(cmd.Context(), caller, prefix)
				if err != nil {
					return err
				}
				return g.emit(entries, func(out io.Writer) {
					fmt.Fprintf(out, "%-28s %-10s %8s  %-22s %-10s %s\n", "ID", "TYPE", "SIZE", "CONTRACT", "CREATED_BY", "READ COST")
					for _, e := range entries {
						cost := "free"
						if e.ReadCost > 0 {
							cost = fmt.Sprintf("%d (paid by %s)", e.ReadCost, e.ReadPayer)
						}
						fmt.Fprintf(out, "%-28s %-10s %8d  %-22s %-10s %s\n", e.ID, e.Type, e.Size, e.Contract, e.CreatedBy, cost)
					}
				})
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&prefix, "prefix", "", "list only the artifacts whose ids start with this")
	return cmd
}
