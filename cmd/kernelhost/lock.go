package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A local command locks the data directory before it opens the world:
// flock(2) on <dir>/lock, shared (LOCK_SH) for a command that only reads,
// so that any number of them run side by side on a store opened read-only,
// and exclusive (LOCK_EX) for one that writes (every action, init, serve),
// which runs alone. Badger's own lock on <dir>/store says only "another
// process is using this Badger database"; ours says who: every holder
// writes a record in <dir>/lock.d/ (pid, command, mode, start time, and for
// serve the address it serves) and removes it when it lets go, so that a
// command that cannot have the lock names the holders, and tells to use
// --server when the holder is a server. The kernel drops the flock of a
// process that dies; its record stays behind, is ignored as soon as its pid
// is gone, and is removed by the next exclusive holder (which knows that
// nobody else holds the lock).
//
//	<dir>/lock           the flock file (empty)
//	<dir>/lock.d/*.json  one record per holder
func lockPath(dir string) string    { return filepath.Join(dir, "lock") }
func lockRecords(dir string) string { return filepath.Join(dir, "lock.d") }

// lockMode is how a command holds the data directory.
type lockMode int

const (
	lockShared    lockMode = iota // reads only: the store opened read-only
	lockExclusive                 // writes
)

func (m lockMode) String() string {
	if m == lockShared {
		return "shared"
	}
	return "exclusive"
}

// lockHolder is a holder's record in <dir>/lock.d.
type lockHolder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Mode    string    `json:"mode"`
	Since   time.Time `json:"since"`
	// Server is the base URL 'kernelhost serve' serves, once it listens.
	Server string `json:"server,omitempty"`
}

// dirLock is a held lock on a data directory.
type dirLock struct {
	f      *os.File // holds the flock; closing it lets go
	record string   // path of the holder's record
	holder lockHolder
}

// errLocked is returned by tryFlock when another holder has the lock.
var errLocked = errors.New("locked")

// lockTick is how often a command given --wait tries the lock again.
const lockTick = 25 * time.Millisecond

// lockDir takes the lock of dir in mode for command, trying for up to wait
// (0: once) while others hold it. When it cannot, the error names the
// holders and what to do.
func lockDir(dir string, mode lockMode, command string, wait time.Duration) (*dirLock, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the world at %s: %w", dir, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = tryFlock(f, mode)
		if !errors.Is(err, errLocked) || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(lockTick)
	}
	if errors.Is(err, errLocked) {
		_ = f.Close()
		return nil, lockedError(dir, mode, wait)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock the world at %s: %w", dir, err)
	}
	l := &dirLock{f: f, holder: lockHolder{PID: os.Getpid(), Command: command, Mode: mode.String(), Since: time.Now()}}
	if mode == lockExclusive {
		removeStaleRecords(dir) // nobody else holds it: every record is stale
	}
	if err := l.writeRecord(dir); err != nil {
		_ = f.Close()
		return nil, err
	}
	return l, nil
}

// writeRecord writes (or rewrites) the holder's record, atomically: a
// reader sees the old record or the new, never half of one.
func (l *dirLock) writeRecord(dir string) error {
	rd := lockRecords(dir)
	if err := os.MkdirAll(rd, 0o700); err != nil {
		return fmt.Errorf("lock the world at %s: %w", dir, err)
	}
	if l.record == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		// One process may hold the lock more than once (tests run commands
		// in-process): the name is the pid and a random part.
		l.record = filepath.Join(rd, fmt.Sprintf("%d-%s.json", l.holder.PID, hex.EncodeToString(b[:])))
	}
	b, err := json.Marshal(l.holder)
	if err != nil {
		return err
	}
	tmp := l.record + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("lock the world at %s: %w", dir, err)
	}
	if err := os.Rename(tmp, l.record); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("lock the world at %s: %w", dir, err)
	}
	return nil
}

// setServer records the URL a serve holding the lock serves, for the
// commands it keeps out (they are told to use --server URL).
func (l *dirLock) setServer(dir, url string) error {
	l.holder.Server = url
	return l.writeRecord(dir)
}

// release removes the record, then lets go of the lock.
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	var err error
	if l.record != "" {
		if rerr := os.Remove(l.record); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// removeStaleRecords removes every record in dir's lock.d: called by an
// exclusive holder, for whom all are stale (their processes died).
func removeStaleRecords(dir string) {
	ents, err := os.ReadDir(lockRecords(dir))
	if err != nil {
		return
	}
	for _, e := range ents {
		_ = os.Remove(filepath.Join(lockRecords(dir), e.Name()))
	}
}

// holders returns the records of dir's live holders, servers first, then
// by start time.
func holders(dir string) []lockHolder {
	ents, err := os.ReadDir(lockRecords(dir))
	if err != nil {
		return nil
	}
	var out []lockHolder
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(lockRecords(dir), e.Name()))
		if err != nil {
			continue // released meanwhile
		}
		var h lockHolder
		if json.Unmarshal(b, &h) != nil || h.PID <= 0 || !processAlive(h.PID) {
			continue
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Server != "") != (out[j].Server != "") {
			return out[i].Server != ""
		}
		return out[i].Since.Before(out[j].Since)
	})
	return out
}

// lockedError says who holds dir's lock, so that a command of mode could
// not have it, and what to do.
func lockedError(dir string, mode lockMode, wait time.Duration) error {
	var hs []lockHolder
	// A holder writes its record just after it took the lock: look again
	// for a moment before calling it unknown.
	for i := 0; i < 8 && len(hs) == 0; i++ {
		if i > 0 {
			time.Sleep(lockTick)
		}
		hs = holders(dir)
	}
	waited := ""
	if wait > 0 {
		waited = fmt.Sprintf(" (waited %s)", wait)
	}
	if len(hs) == 0 {
		return fmt.Errorf("the world at %s is locked by another process%s (no record of which in %s): retry when it is done, or give --wait", dir, waited, lockRecords(dir))
	}
	h := hs[0]
	who := fmt.Sprintf("'%s' (pid %d) since %s", h.Command, h.PID, sinceText(h.Since))
	if len(hs) > 1 {
		who += fmt.Sprintf(", and %d more", len(hs)-1)
	}
	switch {
	case h.Server != "":
		return fmt.Errorf("the world at %s is held by %s, serving %s%s: run this command against it with --server %s (and a token: KERNELHOST_TOKEN), or stop the server",
			dir, who, h.Server, waited, h.Server)
	case h.Mode == lockExclusive.String():
		return fmt.Errorf("the world at %s is held by %s%s: retry when it is done, or give --wait 10s", dir, who, waited)
	case mode == lockExclusive:
		return fmt.Errorf("the world at %s is being read by %s%s, and this command writes: retry when they are done, or give --wait 10s", dir, who, waited)
	}
	return fmt.Errorf("the world at %s is held by %s%s: retry when it is done, or give --wait 10s", dir, who, waited)
}

// sinceText is t as a clock time, with the date when it is not today.
func sinceText(t time.Time) string {
	now := time.Now()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}
