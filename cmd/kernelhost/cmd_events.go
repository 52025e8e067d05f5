package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newEventsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the audit trail",
		Example: `  kernelhost events tail
  kernelhost events tail --since 40 --follow`,
	}
	var since uint64
	var limit int
	var follow bool
	var interval time.Duration
	tail := &cobra.Command{
		Use:   "tail [--since N] [--limit N] [--follow]",
		Short: "Print audit events after sequence number N",
		Long: `tail prints the audit events with sequence numbers above --since, oldest
first: every action, allowed or denied, with its caller, code and charges.
--follow keeps polling for new events until interrupted. With -o json it
prints one JSON event per line.`,
		Example: `  kernelhost events tail
  kernelhost events tail --since 40 --follow
  kernelhost events tail -o json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit %d: give a positive number", limit)
			}
			ctx := cmd.Context()
			return g.withWorld(ctx, func(w *world) error {
				enc := json.NewEncoder(g.out)
				for {
					evs, err := w.k.Events(ctx, since, limit)
					if err != nil {
						return codedError(err)
					}
					for _, e := range evs {
						if g.json() {
							if err := enc.Encode(e); err != nil {
								return err
							}
						} else {
							fmt.Fprintln(g.out, eventText(e))
						}
						since = e.Seq
					}
					if !follow {
						return nil
					}
					if len(evs) == limit {
						continue // more are waiting
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(interval):
					}
				}
			})
		},
	}
	tail.Flags().Uint64Var(&since, "since", 0, "print events after this sequence number")
	tail.Flags().IntVar(&limit, "limit", 1000, "most events per read")
	tail.Flags().BoolVar(&follow, "follow", false, "keep printing new events until interrupted")
	tail.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "polling interval of --follow")
	cmd.AddCommand(tail)
	return cmd
}
