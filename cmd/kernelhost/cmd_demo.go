package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	var keep, record bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a self-contained scenario on a temporary world and print it",
		Long: `demo builds a world on a temporary Badger directory (it ignores --data-dir)
and plays a scenario through the public API: agents are created; alice
deploys a WASM contract that charges for reads and names a sponsor as payer;
reads fail until the sponsor consents, then succeed with the sponsor
charged; a stranger is denied; a private artifact stays private; an agent
exhausts its rate quota (QUOTA_EXCEEDED, retriable), another transfers quota
to it and the same action succeeds; the audit trail ends it.`,
		Example: `  kernelhost demo
  make demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "kernelhost-demo-")
			if err != nil {
				return err
			}
			if !keep {
				defer func() { _ = os.RemoveAll(dir) }()
			}
			if err := demo.RunWith(cmd.Context(), g.out, dir, demo.Options{Record: record}); err != nil {
				return err
			}
			if keep {
				fmt.Fprintf(g.out, "the world is kept in %s\n", dir)
				if record {
					fmt.Fprintf(g.out, "replay it: kernelhost replay --recording-dir %s\n", dir)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary world's directory and print where it is")
	cmd.Flags().BoolVar(&record, "record", false, "record every input (explain is then refused), so that 'kernelhost replay --recording-dir' can re-execute the kept world")
	return cmd
}
