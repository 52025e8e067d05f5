package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/kernel"
)

func newEventsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the audit trail",
		Example: `  kernelhost events tail
  kernelhost events tail --as alice
  kernelhost events tail --since 40 --follow
  kernelhost events show 14`,
	}
	cmd.AddCommand(newEventsTailCmd(g), newEventsShowCmd(g))
	return cmd
}

// eventFilter is the filters of events tail: an event is printed when it
// matches every one given (on the view of the reader).
type eventFilter struct {
	kind, target string
}

func (f eventFilter) match(e *kernel.Event) bool {
	return (f.kind == "" || string(e.Kind) == f.kind) && (f.target == "" || e.Target == f.target)
}

// tailer reads the trail after a sequence number, page by page.
type tailer interface {
	// read returns up to limit events after since, the number to continue
	// after, and whether more are waiting now.
	read(ctx context.Context, since uint64, limit int) (evs []kernel.Event, next uint64, more bool, err error)
}

func newEventsTailCmd(g *globals) *cobra.Command {
	var as string
	var since uint64
	var limit int
	var follow bool
	var interval time.Duration
	var f eventFilter
	tail := &cobra.Command{
		Use:   "tail [--as P] [--since N] [--limit N] [--kind K] [--target ID] [--follow]",
		Short: "Print audit events after sequence number N",
		Long: `tail prints the audit events with sequence numbers above --since, oldest
first: every action, allowed or denied, with its caller, code and charges.
Without --as it prints every event (the operator's view: the CLI opens the
data directory itself); with --as P only the events P is a party to, as
P's token reads them from GET /v1/events: P's own actions, and those that
name P as recipient, payer, payee or holder of the right acted on.
--kind and --target keep only the events of that action kind or target.
--follow keeps printing new events until interrupted. Without it, tail
prints at most --limit events and says on stderr when more follow (and the
--since to continue with). With -o json it prints one JSON event per line.

With --server the token decides what is seen: a principal's token reads its
own events (--as may only name it), the admin token every event (--as P
then keeps those P is a party to); --follow uses the server's live follow
(Server-Sent Events), resuming after the last event seen when the stream
ends or the server restarts.`,
		Example: `  kernelhost events tail
  kernelhost events tail --as alice
  kernelhost events tail --kind transfer --since 40 --follow
  kernelhost events tail -o json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit %d: give a positive number", limit)
			}
			if f.kind != "" && !kernel.KnownKind(kernel.Kind(f.kind)) {
				return usagef("--kind %q: use one of %v", f.kind, kernel.Kinds())
			}
			ctx := cmd.Context()
			return g.withBackend(cmd, lockShared, func(b backend) error {
				enc := json.NewEncoder(g.out)
				print := func(e kernel.Event) error {
					if g.json() {
						return enc.Encode(e)
					}
					_, err := fmt.Fprintln(g.out, eventText(e))
					return err
				}
				var t tailer
				switch b := b.(type) {
				case *local:
					t = &localTail{k: b.w.k, as: as, f: f}
				case *remote:
					rt, err := b.tail(ctx, as, f)
					if err != nil {
						return err
					}
					if follow {
						return b.c.Follow(ctx, rt.query(since, limit), print, func(err error, wait time.Duration) {
							fmt.Fprintf(g.errOut, "kernelhost: the follow stopped (%v): resuming after the last event seen in %s\n", err, wait.Round(time.Millisecond))
						})
					}
					t = rt
				}
				for {
					evs, next, more, err := t.read(ctx, since, limit)
					if err != nil {
						return err
					}
					for _, e := range evs {
						if err := print(e); err != nil {
							return err
						}
					}
					since = next
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
	tail.Flags().StringVar(&f.kind, "kind", "", "print only events of this action kind")
	tail.Flags().StringVar(&f.target, "target", "", "print only events of this target")
	tail.Flags().BoolVar(&follow, "follow", false, "keep printing new events until interrupted")
	tail.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "polling interval of --follow on a local world")
	return tail
}

// localTail reads the trail of the world opened here.
type localTail struct {
	k  *kernel.Kernel
	as string // "": every event
	f  eventFilter
}

// read asks for one event more than it returns, to know whether more are
// waiting. P's view (--as) and the filters are paged by the kernel's
// cursor: a page may be short, even empty, while others' events are
// skipped, so one read follows the cursor until it has enough events or
// has caught up.
func (t *localTail) read(ctx context.Context, since uint64, limit int) ([]kernel.Event, uint64, bool, error) {
	want := limit + 1
	var out []kernel.Event
	for len(out) < want {
		var evs []kernel.Event
		next := since
		if t.as == "" {
			page, err := t.k.Events(ctx, since, want-len(out))
			if err != nil {
				return nil, 0, false, codedError(err)
			}
			evs = page
			if len(page) > 0 {
				next = page[len(page)-1].Seq
			}
		} else {
			page, n, err := t.k.EventsFor(ctx, t.as, since, want-len(out))
			if err != nil {
				return nil, 0, false, codedError(err)
			}
			evs, next = page, n
		}
		for i := range evs {
			if t.f.match(&evs[i]) {
				out = append(out, evs[i])
			}
		}
		if next == since {
			break // caught up
		}
		since = next
	}
	if len(out) > limit {
		out = out[:limit]
		return out, out[limit-1].Seq, true, nil // the next read starts after the last printed
	}
	return out, since, false, nil
}

// remoteTail reads the trail through GET /v1/events.
type remoteTail struct {
	c         *client.Client
	principal string // the principal= filter (the admin token's --as)
	f         eventFilter
}

// tail returns the reader of the server's trail for --as (see the
// command's help).
func (r *remote) tail(ctx context.Context, as string, f eventFilter) (*remoteTail, error) {
	t := &remoteTail{c: r.c, f: f}
	if as == "" {
		return t, nil
	}
	id, err := r.identity(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case id.Admin:
		t.principal = as
	case as != id.Principal:
		return nil, usagef("--as %s, but the token is %s's, and a principal's token reads only its own events: leave --as out, or use the admin token", as, id.Principal)
	}
	return t, nil
}

func (t *remoteTail) query(since uint64, limit int) client.EventQuery {
	return client.EventQuery{After: since, Limit: min(limit, 1000), Kind: t.f.kind, Principal: t.principal, Target: t.f.target}
}

func (t *remoteTail) read(ctx context.Context, since uint64, limit int) ([]kernel.Event, uint64, bool, error) {
	want := limit + 1
	var out []kernel.Event
	for len(out) < want {
		page, err := t.c.Events(ctx, t.query(since, want-len(out)))
		if err != nil {
			return nil, 0, false, err
		}
		out = append(out, page.Events...)
		if page.Next > since {
			since = page.Next
		}
		if page.NextCursor == "" {
			break // caught up
		}
	}
	if len(out) > limit {
		out = out[:limit]
		return out, out[limit-1].Seq, true, nil
	}
	return out, since, false, nil
}

func newEventsShowCmd(g *globals) *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "show SEQ [--as P]",
		Short: "Print one audit event by its sequence number",
		Long: `show prints event SEQ: every field with -o json. With --as P it shows the
event as P sees it, and NOT_FOUND when P is no party to it (the same answer
as for a number with no event: GET /v1/events/{seq}). With --server the
token's view applies.`,
		Example: `  kernelhost events show 14
  kernelhost events show 14 --as alice -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return usagef("%q: an event is named by its sequence number, a positive integer", args[0])
			}
			ctx := cmd.Context()
			return g.withBackend(cmd, lockShared, func(b backend) error {
				var e kernel.Event
				switch b := b.(type) {
				case *local:
					e, err = localEvent(ctx, b.w.k, seq, as)
				case *remote:
					if as != "" {
						if _, err := b.tail(ctx, as, eventFilter{}); err != nil {
							return err
						}
					}
					e, err = b.c.Event(ctx, seq)
					if err == nil && as != "" && !e.Involves(as) {
						err = notFoundEvent(seq)
					}
					if err == nil && as != "" {
						e = e.ViewFor(as)
					}
				}
				if err != nil {
					return err
				}
				return g.emit(e, func(w io.Writer) { fmt.Fprintln(w, eventText(e)) })
			})
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "show the event as this principal sees it")
	return cmd
}

// localEvent returns event seq, as principal as sees it when as is set.
func localEvent(ctx context.Context, k *kernel.Kernel, seq uint64, as string) (kernel.Event, error) {
	evs, err := k.Events(ctx, seq-1, 1)
	if err != nil {
		return kernel.Event{}, codedError(err)
	}
	if len(evs) != 1 || evs[0].Seq != seq || (as != "" && !evs[0].Involves(as)) {
		return kernel.Event{}, notFoundEvent(seq)
	}
	if as != "" {
		return evs[0].ViewFor(as), nil
	}
	return evs[0], nil
}

func notFoundEvent(seq uint64) error {
	return fmt.Errorf("%s: no event %d visible to this reader", abi.NotFound, seq)
}
