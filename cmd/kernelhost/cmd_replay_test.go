package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// replayJSON runs 'replay -o json' with args and returns its report and
// exit code.
func replayJSON(t *testing.T, args ...string) (replayOutput, int, string) {
	t.Helper()
	out, errOut, code := cli(t, t.TempDir(), append([]string{"replay", "-o", "json"}, args...)...)
	var r replayOutput
	require.NoError(t, json.Unmarshal([]byte(out), &r), "stdout %q, stderr %q", out, errOut)
	return r, code, errOut
}

// roStore opens the Badger store of the world at dir read-only; no command
// may run on dir until it is closed.
func roStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := store.OpenBadger(storeDir(dir), store.BadgerOptions{ReadOnly: true})
	require.NoError(t, err)
	return st
}

// worldState returns the last record and the state hash (hex) of the
// world at dir, read from its store directly.
func worldState(t *testing.T, dir string) (uint64, string) {
	t.Helper()
	st := roStore(t, dir)
	defer st.Close()
	last, err := kernel.LastRecord(st)
	require.NoError(t, err)
	h, err := kernel.StateHash(st)
	require.NoError(t, err)
	return last, hex.EncodeToString(h[:])
}

// TestReplayDemoIdentical: the demo world, played with recording on,
// replays from the empty world record by record with every result
// identical (each record's result hash: code, charges, fuel and all) and
// ends in the demo world's state hash; through its data directory and
// through a snapshot file of it alike.
func TestReplayDemoIdentical(t *testing.T) {
	t.Parallel()
	out := ok(t, t.TempDir(), "demo", "--record", "--keep")
	require.Contains(t, out, "demo finished: every step ended as expected")
	require.Contains(t, out, "(explain) -> UNAVAILABLE", "explain is refused while recording")
	m := regexp.MustCompile(`(?m)^the world is kept in (.+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	dir := m[1]
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.Contains(t, out, "replay it: kernelhost replay --recording-dir "+dir)

	// What the demo world holds, read from its store.
	st := roStore(t, dir)
	recs, err := kernel.Records(st, 0, 100000)
	require.NoError(t, err)
	last, err := kernel.LastRecord(st)
	require.NoError(t, err)
	h, err := kernel.StateHash(st)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	want := hex.EncodeToString(h[:])
	require.Equal(t, uint64(len(recs)), last)
	ops := map[kernel.RecordOp]int{}
	kinds := map[kernel.Kind]int{}
	for _, r := range recs {
		ops[r.Op]++
		if r.Action != nil {
			kinds[r.Action.Kind]++
		}
	}
	require.Positive(t, ops[kernel.RecordCreatePrincipal], "genesis and the demo's principals are recorded")
	require.Positive(t, ops[kernel.RecordSetQuota])
	for _, k := range []kernel.Kind{kernel.KindWrite, kernel.KindRead, kernel.KindGrantConsent, kernel.KindConsumeQuota, kernel.KindTransferQuota, kernel.KindInvoke, kernel.KindMintRight, kernel.KindRedeemRight} {
		require.Positive(t, kinds[k], "the demo's %s actions are recorded", k)
	}

	r, code, errOut := replayJSON(t, "--recording-dir", dir)
	require.Equal(t, exitOK, code, errOut)
	require.True(t, r.Identical, "%+v", r)
	require.Nil(t, r.Divergence)
	require.Equal(t, uint64(0), r.StartRecord)
	require.Equal(t, last, r.EndRecord)
	require.Equal(t, len(recs), r.Replayed, "every record replayed")
	require.Equal(t, want, r.RecordedStateHash)
	require.Equal(t, want, r.StateHash, "the replay ends in the demo world's state")

	// The same through a snapshot file; the text says so.
	snap := filepath.Join(t.TempDir(), "demo.khsnap")
	ok(t, dir, "snapshot", "--out", snap)
	text := ok(t, t.TempDir(), "replay", "--recording", snap)
	require.Contains(t, text, "Replayed "+strconv.Itoa(len(recs))+" records (1.."+strconv.Itoa(len(recs))+")")
	require.Contains(t, text, "identical: every result and the final state (sha256 "+want+")")
}

// recordedWorld inits a world with recording on (alice 1000, bob 100,
// sponsor 5000) and acts in it through local commands run without
// --record: a world that holds records records them too. It returns the
// data directory and a snapshot taken after genesis (start).
func recordedWorld(t *testing.T) (dir, start string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "world")
	spec := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100},{"id":"sponsor","balance":5000}]}`), 0o600))
	ok(t, dir, "init", "--record", "--genesis", spec)
	start = filepath.Join(t.TempDir(), "start.khsnap")
	ok(t, dir, "snapshot", "--out", start)
	first, _ := worldState(t, dir)
	require.Positive(t, first, "init --record records genesis")
	ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "7")
	ok(t, dir, "artifact", "put", "notes/1", "--as", "alice", "--type", "text", "--text", "hello")
	ok(t, dir, "scrip", "transfer", "--as", "bob", "--to", "sponsor", "--amount", "3")
	fails(t, dir, exitError, "scrip", "transfer", "--as", "bob", "--to", "alice", "--amount", "100000") // refused: recorded too
	ok(t, dir, "scrip", "mint", "alice", "--amount", "50")
	last, _ := worldState(t, dir)
	require.Equal(t, first+5, last, "every command that changed the world (and the refused transfer) was recorded without --record")
	return dir, start
}

// rewrite loads the snapshot file src, lets edit change its store, and
// writes the result as a new, intact snapshot file.
func rewrite(t *testing.T, src string, edit func(st store.Store)) string {
	t.Helper()
	st, err := loadSnapshotFile(src)
	require.NoError(t, err)
	edit(st)
	dst := filepath.Join(t.TempDir(), "edited.khsnap")
	f, err := os.Create(dst)
	require.NoError(t, err)
	_, err = store.Dump(st, f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return dst
}

func recordKey(n uint64) []byte { return binary.BigEndian.AppendUint64([]byte("R/"), n) }

// TestReplayReportsDivergence: a recording whose input was altered (a
// transfer's amount changed in an otherwise intact snapshot) replays to
// that record and reports it (number, op, the recorded action, the
// replayed result; exit 1); a recording whose state was altered replays
// every record identically and reports the final state differs (exit 1);
// an edited snapshot file is refused; a START that is no point of the
// recording is refused. An unaltered recording replays identically from
// the empty world and from START.
func TestReplayReportsDivergence(t *testing.T) {
	t.Parallel()
	dir, start := recordedWorld(t)
	end := filepath.Join(t.TempDir(), "end.khsnap")
	ok(t, dir, "snapshot", "--out", end)
	startLast, _ := func() (uint64, string) {
		st, err := loadSnapshotFile(start)
		require.NoError(t, err)
		defer st.Close()
		n, err := kernel.LastRecord(st)
		require.NoError(t, err)
		return n, ""
	}()

	// Unaltered: identical, from the empty world, from START, from the
	// data directory.
	for _, args := range [][]string{{"--recording", end}, {"--from", start, "--recording", end}, {"--from", start, "--recording-dir", dir}} {
		r, code, errOut := replayJSON(t, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, errOut)
		require.True(t, r.Identical, "%v: %+v", args, r)
		require.Equal(t, int(r.EndRecord-r.StartRecord), r.Replayed)
	}
	r, _, _ := replayJSON(t, "--from", start, "--recording", end)
	require.Equal(t, startLast, r.StartRecord)
	require.Equal(t, 5, r.Replayed, "only the records after START")

	// An input altered: the first transfer after START moves 8, not 7.
	var at uint64
	altered := rewrite(t, end, func(st store.Store) {
		recs, err := kernel.Records(st, startLast, 100)
		require.NoError(t, err)
		for _, rec := range recs {
			if rec.Op == kernel.RecordDo && rec.Action.Kind == kernel.KindTransfer {
				at = rec.Seq
				rec.Action.Amount = 8
				b, err := json.Marshal(rec)
				require.NoError(t, err)
				require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Set(recordKey(rec.Seq), b) }))
				return
			}
		}
		t.Fatal("no transfer recorded")
	})
	require.NotZero(t, at)
	for _, from := range [][]string{nil, {"--from", start}} {
		r, code, errOut := replayJSON(t, append(from, "--recording", altered)...)
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, "the replay diverges at record "+strconv.FormatUint(at, 10)+" (do)")
		require.False(t, r.Identical)
		require.NotNil(t, r.Divergence, "%+v", r)
		d := r.Divergence
		require.Equal(t, at, d.Seq)
		require.Equal(t, kernel.RecordDo, d.Op)
		require.Equal(t, "alice", d.Caller)
		var rec kernel.Record
		require.NoError(t, json.Unmarshal(d.Record, &rec), "the record as JSON: %s", d.Record)
		require.Equal(t, at, rec.Seq)
		require.NotNil(t, rec.Action)
		require.Equal(t, kernel.KindTransfer, rec.Action.Kind, "the recorded action")
		require.Equal(t, int64(8), rec.Action.Amount)
		require.Equal(t, d.RecordedResult, rec.Result)
		require.NotNil(t, d.Result, "the replayed result")
		require.True(t, d.Result.OK)
		require.NotEqual(t, d.RecordedResult, d.ReplayedResult)
		require.Equal(t, int(at-r.StartRecord), r.Replayed, "it stopped at the divergence")
	}
	text, errOut, code := cli(t, t.TempDir(), "replay", "--recording", altered)
	require.Equal(t, exitError, code)
	require.Contains(t, text, "DIVERGES at record "+strconv.FormatUint(at, 10)+": do at ")
	require.Contains(t, text, "by alice")
	require.Contains(t, text, "  replayed: {")
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)

	// The state altered, the records not: each record replays, the end
	// differs.
	tampered := rewrite(t, end, func(st store.Store) {
		require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Set([]byte("zz/extra"), []byte("x")) }))
	})
	r, code, errOut = replayJSON(t, "--from", start, "--recording", tampered)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "the final state differs")
	require.Nil(t, r.Divergence)
	require.False(t, r.Identical)
	require.Equal(t, 5, r.Replayed)
	require.NotEqual(t, r.StateHash, r.RecordedStateHash)

	// An edited snapshot file: refused whole.
	b, err := os.ReadFile(end)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x01
	broken := filepath.Join(t.TempDir(), "broken.khsnap")
	require.NoError(t, os.WriteFile(broken, b, 0o600))
	msg := fails(t, t.TempDir(), exitError, "replay", "--recording", broken)
	require.Contains(t, msg, store.ErrBadSnapshot.Error())

	// START from another recording: its last record is not this one's.
	other, _ := recordedWorld(t)
	otherEnd := filepath.Join(t.TempDir(), "other.khsnap")
	ok(t, other, "snapshot", "--out", otherEnd)
	msg = fails(t, t.TempDir(), exitError, "replay", "--from", otherEnd, "--recording", end)
	require.Contains(t, msg, "--from is no point of this recording")
	// START later than the recording's end.
	msg = fails(t, t.TempDir(), exitError, "replay", "--from", end, "--recording", start)
	require.Contains(t, msg, "before --from's last record")

	// The command line.
	for _, args := range [][]string{{"replay"}, {"replay", "--recording", end, "--recording-dir", dir}} {
		fails(t, t.TempDir(), exitUsage, args...)
	}
}

// TestRecordFlag: a world init made without --record records nothing, and
// its actions none; serve --record (or any --record) starts recording, and
// --record=false keeps a recorded world's command from recording.
func TestRecordFlag(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "1")
	last, _ := worldState(t, dir)
	require.Zero(t, last, "no records without --record")

	rec, _ := recordedWorld(t)
	before, _ := worldState(t, rec)
	// init --record=false --from a recorded snapshot: the fork does not
	// record its first open; the world holds records, so the next command
	// records again.
	snap := filepath.Join(t.TempDir(), "s.khsnap")
	ok(t, rec, "snapshot", "--out", snap)
	fork := filepath.Join(t.TempDir(), "fork")
	var out forkOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, fork, "init", "--from", snap, "--record=false", "-o", "json")), &out))
	require.False(t, out.Recording)
	out = forkOutput{}
	fork2 := filepath.Join(t.TempDir(), "fork2")
	require.NoError(t, json.Unmarshal([]byte(ok(t, fork2, "init", "--from", snap, "-o", "json")), &out))
	require.True(t, out.Recording, "a fork of a recording goes on recording")
	require.Equal(t, before, out.LastRecord)
	ok(t, fork2, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "1")
	after, _ := worldState(t, fork2)
	require.Equal(t, before+1, after)
	r, code, errOut := replayJSON(t, "--from", snap, "--recording-dir", fork2)
	require.Equal(t, exitOK, code, errOut)
	require.True(t, r.Identical)
	require.Equal(t, 1, r.Replayed)
}
