package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Recording and replay (issue 20). A recorded world keeps every input that
// changes it (kernel.Config.Record: actions, administrative calls, LLM
// reservations and settlements) in order, with its time and the hash of
// its result, as R/<n> entries of its own store. 'kernelhost replay' loads
// a starting snapshot into a fresh in-memory store, opens a kernel on it
// with the same genesis evaluator (a host as every world has), runs the
// records that follow the snapshot's last one, each at its recorded time,
// and compares every result (charges and fuel included: the hash covers
// the whole result) and then the final state hash with the recording's.
//
// A world records when opened with --record (init, serve, demo), and
// always once it holds records, by every command that changes it: a
// recording with a hole (an action taken while nothing recorded) could
// only diverge. --record=false turns that off for the one command.

// recording says whether the kernel opened over st records its inputs:
// with --record, and for a world that holds records already and is opened
// to change it (a read-only query store writes nothing: nothing to
// record), unless --record=false.
func (g *globals) recording(st store.Store) bool {
	switch {
	case g.noRecord:
		return false
	case g.record:
		return true
	}
	if _, ro := st.(*queryStore); ro {
		return false
	}
	n, err := kernel.LastRecord(st)
	return err == nil && n > 0 // an unreadable store: kernel.Open says so
}

// recordFlag registers --record on cmd and, before cmd runs, sets g.record
// and g.noRecord from it.
func (g *globals) recordFlag(cmd *cobra.Command, usage string) {
	var on bool
	cmd.Flags().BoolVar(&on, "record", false, usage)
	pre := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if c.Flags().Changed("record") {
			g.record, g.noRecord = on, !on
		}
		if pre != nil {
			return pre(c, args)
		}
		return nil
	}
}

// replayOutput is what replay prints with --output json.
type replayOutput struct {
	// From is the starting snapshot ("": the empty world); Recording the
	// recorded world (a snapshot file or a data directory).
	From      string `json:"from"`
	Recording string `json:"recording"`
	// StartRecord is the starting snapshot's last record: the replay ran
	// StartRecord+1 .. EndRecord.
	StartRecord uint64 `json:"start_record"`
	EndRecord   uint64 `json:"end_record"`
	Replayed    int    `json:"replayed"`
	// Identical: every result and the final state are the recorded ones.
	Identical bool `json:"identical"`
	// StateHash is the replayed world's kernel.StateHash, RecordedStateHash
	// the recording's (hex); set when every record replayed identically.
	StateHash         string `json:"state_sha256,omitempty"`
	RecordedStateHash string `json:"recorded_state_sha256,omitempty"`
	// Divergence is the first record whose replay gave another result.
	Divergence *replayDivergence `json:"divergence,omitempty"`
}

// replayDivergence is the first record that did not replay as recorded.
type replayDivergence struct {
	Seq    uint64          `json:"seq"`
	Op     kernel.RecordOp `json:"op"`
	Time   time.Time       `json:"time"`
	Caller string          `json:"caller,omitempty"`
	// Record is the record as it is stored: the action (or call) as
	// recorded, with its result's sha256.
	Record json.RawMessage `json:"record"`
	// RecordedResult and ReplayedResult are the results' sha256 (hex).
	RecordedResult string `json:"recorded_result_sha256"`
	ReplayedResult string `json:"replayed_result_sha256"`
	// Result is the replayed result of an action (op "do").
	Result *api.Result `json:"result,omitempty"`
}

func newReplayCmd(g *globals) *cobra.Command {
	var from, recFile, recDir string
	cmd := &cobra.Command{
		Use:   "replay (--recording FILE | --recording-dir DIR) [--from START]",
		Short: "Re-execute a recorded world from its starting snapshot and verify it ends the same",
		Long: `replay re-executes a recording and proves it deterministic. The recording is
a recorded world (one that ran with 'init --record' or 'serve --record'): a
snapshot of it (--recording FILE, from 'kernelhost snapshot') or its data
directory (--recording-dir DIR, read-only, under its shared lock). START
(--from, a snapshot taken earlier of the same world) is loaded into a fresh
in-memory store; without --from the start is the empty world, for a world
recorded from 'init --record' (which records genesis too).

Every record after START's last one is run in order on a fresh kernel, at
its recorded time, with the same genesis contracts and host; each result
(its code, charges, fuel and every other field) must hash as recorded, and
the final state hash (kernel.StateHash: the world's state without the
records, rate windows and tokens) must be the recording's. It prints the
records replayed and "identical" (exit 0), or the first divergence: the
record number, its op and time, the recorded action as JSON and the
replayed result (exit 1). Nothing is written: not the recording, not START.`,
		Example: `  kernelhost --data-dir w init --record --genesis genesis/example.json
  kernelhost --data-dir w serve --record          # ... the world runs, then stops
  kernelhost replay --recording-dir w
  kernelhost --data-dir w snapshot --out start.khsnap   # later:
  kernelhost --data-dir w snapshot --out end.khsnap
  kernelhost replay --from start.khsnap --recording end.khsnap -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.localOnly(cmd, "it replays files and data directories on this machine"); err != nil {
				return err
			}
			if (recFile == "") == (recDir == "") {
				return usagef("give the recording: --recording FILE (a snapshot) or --recording-dir DIR (a data directory), one of them")
			}
			out, err := g.replay(cmd.Context(), from, recFile, recDir)
			if err != nil {
				return err
			}
			if err := g.emit(out, func(w io.Writer) { replayText(w, out) }); err != nil {
				return err
			}
			switch {
			case out.Divergence != nil:
				return fmt.Errorf("the replay diverges at record %d (%s): see above", out.Divergence.Seq, out.Divergence.Op)
			case !out.Identical:
				return errors.New("every record replayed as recorded, but the final state differs from the recording's: see above")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the starting snapshot (default: the empty world)")
	cmd.Flags().StringVar(&recFile, "recording", "", "the recorded world: a snapshot file")
	cmd.Flags().StringVar(&recDir, "recording-dir", "", "the recorded world: a data directory (opened read-only)")
	return cmd
}

// replayText prints out as text.
func replayText(w io.Writer, out replayOutput) {
	start := "the empty world"
	if out.From != "" {
		start = out.From
	}
	fmt.Fprintf(w, "Replayed %d records (%d..%d) of %s from %s\n", out.Replayed, out.StartRecord+1, out.EndRecord, out.Recording, start)
	if d := out.Divergence; d != nil {
		fmt.Fprintf(w, "DIVERGES at record %d: %s at %s", d.Seq, d.Op, d.Time.Format(time.RFC3339Nano))
		if d.Caller != "" {
			fmt.Fprintf(w, " by %s", d.Caller)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  recorded: %s\n", d.Record)
		if d.Result != nil {
			b, _ := json.Marshal(d.Result) // plain data
			fmt.Fprintf(w, "  replayed: %s\n", b)
		}
		fmt.Fprintf(w, "  result sha256: recorded %s, replayed %s\n", d.RecordedResult, d.ReplayedResult)
		return
	}
	if out.Identical {
		fmt.Fprintf(w, "identical: every result and the final state (sha256 %s)\n", out.StateHash)
		return
	}
	fmt.Fprintf(w, "every result identical, but the final state differs: replayed sha256 %s, recorded %s\n", out.StateHash, out.RecordedStateHash)
}

// replay runs the replay: START (from; "" for the empty world) into a
// fresh in-memory store, the records of the recording (recFile, a snapshot,
// or recDir, a data directory) that follow START's last one.
func (g *globals) replay(ctx context.Context, from, recFile, recDir string) (out replayOutput, err error) {
	out = replayOutput{From: from, Recording: recFile}
	start := store.NewMem()
	if from != "" {
		if start, err = loadSnapshotFile(from); err != nil {
			return out, fmt.Errorf("--from: %w", err)
		}
	}
	defer func() { err = errors.Join(err, start.Close()) }()
	var end store.Store
	cache := os.Getenv(demo.CacheEnv) // the shared compilation cache, if any
	if recFile != "" {
		if end, err = loadSnapshotFile(recFile); err != nil {
			return out, fmt.Errorf("--recording: %w", err)
		}
	} else {
		out.Recording = recDir
		var release func() error
		if end, release, err = g.openRecordingDir(recDir); err != nil {
			return out, err
		}
		defer func() { err = errors.Join(err, release()) }()
		cache = cacheDir(recDir)
	}
	defer func() { err = errors.Join(err, end.Close()) }()

	if out.StartRecord, err = kernel.LastRecord(start); err != nil {
		return out, fmt.Errorf("--from: %w", err)
	}
	if out.EndRecord, err = kernel.LastRecord(end); err != nil {
		return out, fmt.Errorf("the recording: %w", err)
	}
	if err := samePoint(start, end, out.StartRecord, out.EndRecord); err != nil {
		return out, err
	}
	first, err := kernel.Records(end, out.StartRecord, 1)
	if err != nil {
		return out, fmt.Errorf("the recording: %w", err)
	}

	h, err := host.New(ctx, host.DefaultConfig().WithCacheDir(cache))
	if err != nil {
		return out, err
	}
	defer func() { err = errors.Join(err, h.Close(context.Background())) }()
	clock := &kernel.ReplayClock{}
	if len(first) > 0 {
		clock.Set(first[0].Now) // the kernel opens at the first input's time
	}
	k, err := kernel.Open(ctx, kernel.Config{Store: start, Evaluator: h, Clock: clock.Now, DefaultContract: genesis.DefaultContract, Record: true})
	if err != nil {
		return out, err
	}
	defer func() { err = errors.Join(err, k.Close(context.Background())) }()

	p := &kernel.Replayer{K: k, Clock: clock}
	next := out.StartRecord + 1
	for next <= out.EndRecord {
		recs, err := kernel.Records(end, next-1, 1000)
		if err != nil {
			return out, fmt.Errorf("the recording: %w", err)
		}
		if len(recs) == 0 {
			return out, fmt.Errorf("the recording ends at record %d, but its counter says %d: records are missing", next-1, out.EndRecord)
		}
		for _, r := range recs {
			if r.Seq != next {
				return out, fmt.Errorf("the recording has no record %d (the next is %d): it was altered", next, r.Seq)
			}
			if r.Seq > out.EndRecord {
				break
			}
			err := p.Run(ctx, r)
			out.Replayed = p.Count()
			var d *kernel.Divergence
			switch {
			case errors.As(err, &d):
				out.Divergence = divergenceOf(d)
				return out, nil
			case err != nil:
				return out, fmt.Errorf("record %d cannot be replayed: %w", r.Seq, err)
			}
			next++
		}
	}
	var want, got string
	if _, want, err = stateOf(end); err != nil {
		return out, err
	}
	if _, got, err = stateOf(start); err != nil {
		return out, err
	}
	out.StateHash, out.RecordedStateHash = got, want
	out.Identical = got == want
	return out, nil
}

// samePoint checks that START is a point of the recording: the recording
// reaches at least START's last record, and holds that record as START
// does (a snapshot of another world, or of a recording that was altered
// since, would replay someone else's inputs onto it).
func samePoint(start, end store.Store, startLast, endLast uint64) error {
	if startLast == 0 {
		return nil
	}
	if endLast < startLast {
		return fmt.Errorf("the recording ends at record %d, before --from's last record %d: --from is no earlier point of this recording", endLast, startLast)
	}
	a, err := kernel.Records(start, startLast-1, 1)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	b, err := kernel.Records(end, startLast-1, 1)
	if err != nil {
		return fmt.Errorf("the recording: %w", err)
	}
	if len(a) != 1 || len(b) != 1 || !reflect.DeepEqual(a[0], b[0]) {
		return fmt.Errorf("--from is no point of this recording: its record %d is not the recording's", startLast)
	}
	return nil
}

// divergenceOf describes d.
func divergenceOf(d *kernel.Divergence) *replayDivergence {
	b, _ := json.Marshal(d.Record) // plain data
	out := &replayDivergence{
		Seq: d.Record.Seq, Op: d.Record.Op, Time: time.Unix(0, d.Record.Now).UTC(), Caller: d.Record.Caller,
		Record: b, RecordedResult: d.Record.Result, ReplayedResult: d.Got,
	}
	if d.Result != nil {
		r := api.ResultOf(*d.Result)
		out.Result = &r
	}
	return out
}

// openRecordingDir opens the Badger store of the world at dir read-only,
// under the directory's shared lock; release closes it and lets go.
func (g *globals) openRecordingDir(dir string) (store.Store, func() error, error) {
	if !worldExists(dir) {
		return nil, nil, fmt.Errorf("--recording-dir: no world at %s", dir)
	}
	lock, err := lockDir(dir, lockShared, g.command, g.wait)
	if err != nil {
		return nil, nil, err
	}
	st, _, err := g.openKV(dir, "", true)
	if err != nil {
		_ = lock.release()
		return nil, nil, fmt.Errorf("--recording-dir: %w (a store a crash left unclean opens read-only once any command that writes has opened it)", err)
	}
	return st, lock.release, nil
}
