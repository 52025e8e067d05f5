package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
  kernelhost artifact ls --as bob
  kernelhost artifact rm notes/1 --as alice`,
	}
	cmd.AddCommand(newArtifactPutCmd(g), newArtifactGetCmd(g), newArtifactRmCmd(g), newArtifactLsCmd(g), newArtifactShowCmd(g))
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

func addAs(cmd *cobra.Command, as *string) {
	cmd.Flags().StringVar(as, "as", "", "principal acting (required)")
	_ = cmd.MarkFlagRequired("as")
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

func newArtifactPutCmd(g *globals) *cobra.Command {
	var as, typ, contract, file, text string
	var meta []string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "put ID --as P (--file F | --text S) [--type T] [--contract C] [--meta k=v ...] [--max-cost N]",
		Short: "Create an artifact, or replace an existing one's content (a write action)",
		Long: `put writes artifact ID as principal P. Creating needs --type; --contract names
the access contract that will govern it (default genesis/freeware: anyone
reads, only the controller changes). On an existing artifact put replaces
the content and merges --meta into the metadata, if its contract allows P
to write. A "controller" metadata value hands control to another principal
under the genesis contracts.`,
		Example: `  kernelhost artifact put notes/1 --as alice --type text --text "hello"
  kernelhost artifact put diary --as alice --type text --contract genesis/private --file diary.txt
  cat data.bin | kernelhost artifact put blob --as alice --type data --file -
  kernelhost artifact put notes/1 --as alice --text "v2" --meta controller=bob`,
		Args: cobra.ExactArgs(1),
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
			a := kernel.Action{Kind: kernel.KindWrite, Caller: as, Target: args[0], Type: typ, Contract: contract, Content: content, Metadata: m, MaxCost: maxCostOf(cmd, maxCost)}
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), a)
				if !res.OK && typ == "" && strings.Contains(res.Message, "needs a type") {
					return fmt.Errorf("%s: creating %s needs a type: pass --type (e.g. --type text)", res.ErrorCode, args[0])
				}
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "wrote %s (%d bytes) as %s: revision %d; %s\n", args[0], len(content), as, res.Revision, chargesText(res.Charges))
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
	addMaxCost(cmd, &maxCost)
	return cmd
}

func newArtifactGetCmd(g *globals) *cobra.Command {
	var as string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "get ID --as P [--max-cost N]",
		Short: "Read an artifact's content (a read action; the contract may charge)",
		Long: `get reads artifact ID as principal P and prints its content exactly, with no
trailing newline added. With -o json it prints the whole result: content
(base64, and as text when it is UTF-8), metadata, decision and charges.`,
		Example: `  kernelhost artifact get notes/1 --as bob
  kernelhost artifact get notes/1 --as bob -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindRead, Caller: as, Target: args[0], MaxCost: maxCostOf(cmd, maxCost)})
				return g.emitResult(res, func(out io.Writer) {
					_, _ = out.Write(res.Content)
					if len(res.Charges) > 0 {
						g.log.Info("read charged", "charges", chargesText(res.Charges))
					}
				})
			})
		},
	}
	addAs(cmd, &as)
	addMaxCost(cmd, &maxCost)
	return cmd
}

func newArtifactShowCmd(g *globals) *cobra.Command {
	var as string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "show ID --as P [--max-cost N]",
		Short: "Show an artifact's description and metadata (a read action)",
		Long: `show reads artifact ID as principal P, like get, and prints its description
instead of its content. It is a read: the contract judges it and may charge.`,
		Example: `  kernelhost artifact show notes/1 --as bob`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindRead, Caller: as, Target: args[0], MaxCost: maxCostOf(cmd, maxCost)})
				if g.json() && res.OK {
					res.Content = nil
				}
				return g.emitResult(res, func(out io.Writer) {
					writeArtifactInfo(out, res.Artifact)
					fmt.Fprintf(out, "decision:        %s\n", decisionText(res.Decision))
					fmt.Fprintf(out, "charges:         %s\n", chargesText(res.Charges))
				})
			})
		},
	}
	addAs(cmd, &as)
	addMaxCost(cmd, &maxCost)
	return cmd
}

func newArtifactRmCmd(g *globals) *cobra.Command {
	var as string
	var maxCost int64
	cmd := &cobra.Command{
		Use:     "rm ID --as P [--max-cost N]",
		Short:   "Delete an artifact (a delete action)",
		Example: `  kernelhost artifact rm notes/1 --as alice`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withWorld(cmd.Context(), func(w *world) error {
				res := w.k.Do(cmd.Context(), kernel.Action{Kind: kernel.KindDelete, Caller: as, Target: args[0], MaxCost: maxCostOf(cmd, maxCost)})
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "deleted %s; %s\n", args[0], chargesText(res.Charges))
				})
			})
		},
	}
	addAs(cmd, &as)
	addMaxCost(cmd, &maxCost)
	return cmd
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

func newArtifactLsCmd(g *globals) *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "ls --as P",
		Short: "List the artifacts P may read",
		Long: `ls lists the artifacts principal P may read. For each artifact it runs P's read
check without side effects on the world (like 'contract check'): no scrip
moves, nothing is recorded, and artifacts P may not read are not shown. Each
check is charged to P's cpu_rate as a read would be; when it runs out, ls
fails with QUOTA_EXCEEDED. It also shows what reading each would cost and who
would pay.`,
		Example: `  kernelhost artifact ls --as bob
  kernelhost artifact ls --as bob -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withWorld(cmd.Context(), func(w *world) error {
				ids, err := w.k.ArtifactIDs(cmd.Context())
				if err != nil {
					return codedError(err)
				}
				entries := []lsEntry{}
				for _, id := range ids {
					ex, err := w.k.Explain(cmd.Context(), kernel.Action{Kind: kernel.KindRead, Caller: as, Target: id})
					if err != nil {
						return codedError(err)
					}
					if ex.Outcome.Resource != "" {
						// QUOTA_EXCEEDED: P cannot pay for the check; say so
						// rather than list fewer artifacts.
						return codedError(ex.Outcome.Err())
					}
					if !ex.TargetReadable || ex.Request == nil || ex.Decision == nil {
						continue
					}
					e := lsEntry{ID: id, Type: ex.Request.TargetType, Size: ex.Request.Size, Contract: ex.Contract,
						CreatedBy: ex.Request.CreatedBy, ReadCost: ex.Decision.Cost}
					if e.ReadCost > 0 {
						e.ReadPayer = ex.Decision.Payer
						if e.ReadPayer == "" {
							e.ReadPayer = as
						}
					}
					entries = append(entries, e)
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
	return cmd
}
