package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/kernel"
)

func newEventsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the audit trail",
		Example: `  kernelhost events tail
  kernelhost events tail --as alice
  kernelhost events tail --since 40 --follow`,
	}
	var as string
	var since uint64
	var limit int
	var follow bool
	var interval time.Duration
	tail := &cobra.Command{
		Use:   "tail [--as P] [--since N] [--limit N] [--follow]",
		Short: "Print audit events after sequence number N",
		Long: `tail prints the audit events with sequence numbers above --since, oldest
first: every action, allowed or denied, with its caller, code and charges.
Without --as it prints every event (the operator's view: the CLI opens the
data directory itself); with --as P only the events P is a party to, as
P's token reads them from GET /v1/events: P's own actions, and those that
name P as recipient, payer, payee or holder of the right acted on.
--follow keeps polling for new events until interrupted. Without it, tail
prints at most --limit events and says on stderr when more follow (and the
--since to continue with). With -o json it prints one JSON event per line.`,
		Example: `  kernelhost events tail
  kernelhost events tail --as alice
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
				// read returns the next read's events (at most limit),
				// advancing since past them, and whether more are waiting:
				// it asks for one event more than it returns. P's view
				// (--as) is paged by the kernel's cursor: a page may be
				// short, even empty, while others' events are skipped, so
				// one read follows the cursor until it has enough events or
				// has caught up.
				read := func() ([]kernel.Event, bool, error) {
					want := limit + 1
					var out []kernel.Event
					if as == "" {
						evs, err := w.k.Events(ctx, since, want)
						if err != nil {
							return nil, false, err
						}
						out = evs
						if len(out) > 0 {
							since = out[len(out)-1].Seq
						}
					}
					for as != "" && len(out) < want {
						evs, next, err := w.k.EventsFor(ctx, as, since, want-len(out))
						if err != nil {
							return nil, false, err
						}
						out = append(out, evs...)
						if next == since {
							break
						}
						since = next
					}
					if len(out) > limit {
						out = out[:limit]
						since = out[limit-1].Seq // the next read starts after the last printed
						return out, true, nil
					}
					return out, false, nil
				}
				for {
					evs, more, err := read()
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
					}
					if !follow {
						if more {
							fmt.Fprintf(g.errOut, "kernelhost: more events follow beyond --limit %d: continue with --since %d\n", limit, since)
						}
						return nil
					}
					if more {
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
	tail.Flags().StringVar(&as, "as", "", "print only the events this principal is a party to")
	tail.Flags().Uint64Var(&since, "since", 0, "print events after this sequence number")
	tail.Flags().IntVar(&limit, "limit", 1000, "most events per read")
	tail.Flags().BoolVar(&follow, "follow", false, "keep printing new events until interrupted")
	tail.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "polling interval of --follow")
	cmd.AddCommand(tail)
	return cmd
}
