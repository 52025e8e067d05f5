package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// BadgerOptions configures [OpenBadger]. The zero value is a durable on-disk
// store with memory-friendly defaults.
type BadgerOptions struct {
	// Usually changed.

	// InMemory keeps everything in memory (dir must be ""). Nothing survives
	// Close, and NoSync is implied. NB: in memory Badger has no value log,
	// so no value may exceed 1 MiB: a world holding Go-compiled modules (the
	// genesis rights registry is 3.4 MB) needs a directory, or NewMem.
	InMemory bool

	// NoSync turns off the fsync of every commit. By default (false) an
	// Update that returned nil survives a crash of the process or machine;
	// with NoSync a crash may lose the last commits (but never tears one).
	// Concurrent commits share one fsync, so syncing costs throughput mostly
	// for a single writer.
	NoSync bool

	// ReadOnly opens an existing store for reading only: Update returns
	// ErrReadOnly, and several processes may open dir read-only at once
	// (Badger takes a shared lock on it then), though none while one has
	// it open read-write. The store must have been closed cleanly: after
	// a crash a read-write open first recovers it (Badger's
	// ErrTruncateNeeded otherwise).
	ReadOnly bool

	// Logger receives Badger's messages: errors and warnings at their level,
	// Badger's chatty info and debug messages at slog.LevelDebug. Nil
	// discards them all.
	Logger *slog.Logger

	// Tuning. Zero means the default in parentheses; Badger's own defaults
	// (64 MiB memtables ×5, 256 MiB block cache) suit a server with memory to
	// spare, ours suit tests and small machines.

	// MemTableSize is the size of one memtable in bytes (16 MiB). It also
	// bounds a transaction: its writes, counted with per-entry overhead, must
	// stay under 15% of it, else ErrTxnTooBig. Values over 1 MiB go to the
	// value log on disk and count as a small pointer; in memory they count in
	// full. At least 8 MiB.
	MemTableSize int64

	// NumMemtables is how many memtables may be in memory at once before
	// writes stall (3).
	NumMemtables int

	// BlockCacheSize is the size in bytes of the cache of decompressed table
	// blocks (16 MiB).
	BlockCacheSize int64

	// ValueLogFileSize is the size in bytes of one value-log file (64 MiB).
	ValueLogFileSize int64
}

// Defaults of BadgerOptions; see the fields.
const (
	defaultMemTableSize     = 16 << 20
	minMemTableSize         = 8 << 20 // 15% of it must exceed Badger's 1 MiB value threshold
	defaultNumMemtables     = 3
	defaultBlockCacheSize   = 16 << 20
	defaultValueLogFileSize = 64 << 20
)

// badgerOptions turns o into Badger's options for dir.
func (o BadgerOptions) badgerOptions(dir string) (badger.Options, error) {
	switch {
	case o.InMemory && dir != "":
		return badger.Options{}, fmt.Errorf("store: open badger: InMemory with directory %q", dir)
	case o.InMemory && o.ReadOnly:
		return badger.Options{}, errors.New("store: open badger: ReadOnly in memory")
	case !o.InMemory && dir == "":
		return badger.Options{}, errors.New("store: open badger: empty directory without InMemory")
	case o.MemTableSize != 0 && o.MemTableSize < minMemTableSize:
		return badger.Options{}, fmt.Errorf("store: open badger: MemTableSize %d under %d", o.MemTableSize, minMemTableSize)
	case o.NumMemtables < 0 || o.BlockCacheSize < 0 || o.ValueLogFileSize < 0:
		return badger.Options{}, errors.New("store: open badger: negative option")
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithReadOnly(o.ReadOnly).
		// Update syncs after the commit instead (badgerStore.sync): with
		// SyncWrites Badger fsyncs inside the commit, and every View that
		// starts meanwhile waits for that commit, fsync included.
		WithSyncWrites(false).
		WithLogger(slogLogger{o.Logger}).
		WithMemTableSize(orDefault(o.MemTableSize, defaultMemTableSize)).
		WithNumMemtables(orDefault(o.NumMemtables, defaultNumMemtables)).
		WithBlockCacheSize(orDefault(o.BlockCacheSize, defaultBlockCacheSize)).
		WithValueLogFileSize(orDefault(o.ValueLogFileSize, defaultValueLogFileSize)).
		WithNumCompactors(2).      // Badger's minimum above zero; 4 is for big machines
		WithMetricsEnabled(false). // metrics are process-wide expvars; nobody reads them here
		WithDetectConflicts(true)  // serialisable transactions: the kernel relies on ErrConflict
	return bo, nil
}

func orDefault[T int | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// OpenBadger opens (creating if needed) a Badger store in dir, or an
// in-memory one when dir is "" and opts.InMemory is set. Transactions are
// serialisable: an Update whose reads were overwritten by a concurrent commit
// fails with ErrConflict.
//
// Only one process may open dir read-write at a time; a second OpenBadger
// of the same dir fails. Any number may open it with ReadOnly while none
// has it open read-write.
func OpenBadger(dir string, opts BadgerOptions) (Store, error) {
	bo, err := opts.badgerOptions(dir)
	if err != nil {
		return nil, err
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open badger %q: %w", dir, err)
	}
	return &badgerStore{db: db, sync: !opts.NoSync && !opts.InMemory && !opts.ReadOnly, readOnly: opts.ReadOnly}, nil
}

// badgerStore is the Badger Store.
type badgerStore struct {
	gate gate // so that Close never frees what a running transaction reads
	db   *badger.DB
	// sync makes Update fsync Badger's logs after a commit that wrote,
	// before it returns: the commit is durable once Update returns nil. A
	// snapshot taken between the commit and the fsync sees it already (a
	// machine crash in that window loses a write nobody was told of).
	sync bool
	// readOnly: opened with BadgerOptions.ReadOnly; Update refuses.
	readOnly bool
}

func (s *badgerStore) View(fn func(Txn) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	bt := s.db.NewTransaction(false)
	defer bt.Discard()
	txn := &badgerTxn{txn: bt}
	defer func() { txn.done = true }()
	return fn(txn)
}

func (s *badgerStore) Update(fn func(Txn) error) error {
	return s.update(fn, s.sync)
}

// UpdateDeferred commits like Update but returns before the fsync; Sync
// makes it durable.
func (s *badgerStore) UpdateDeferred(fn func(Txn) error) error { return s.update(fn, false) }

// Sync fsyncs Badger's logs: every commit before it is durable.
func (s *badgerStore) Sync() error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	if !s.sync {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

func (s *badgerStore) update(fn func(Txn) error, sync bool) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	if s.readOnly {
		return fmt.Errorf("%w: the store was opened read-only", ErrReadOnly)
	}
	bt := s.db.NewTransaction(true)
	defer bt.Discard()
	txn := &badgerTxn{txn: bt, update: true}
	err := func() error {
		defer func() { txn.done = true }()
		return fn(txn)
	}()
	if err != nil {
		return err
	}
	if err := bt.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	if sync && txn.wrote {
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

func (s *badgerStore) Close() error {
	if err := s.gate.close(); err != nil {
		return err
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close badger: %w", err)
	}
	return nil
}

// mapErr turns Badger's sentinels into ours.
func mapErr(err error) error {
	switch {
	case errors.Is(err, badger.ErrConflict):
		return ErrConflict
	case errors.Is(err, badger.ErrTxnTooBig):
		return ErrTxnTooBig
	case errors.Is(err, badger.ErrDBClosed):
		return ErrClosed
	case errors.Is(err, badger.ErrKeyNotFound):
		return ErrNotFound
	}
	return err
}

// badgerTxn is a Txn over a Badger transaction. It is used by one goroutine.
type badgerTxn struct {
	txn    *badger.Txn
	update bool
	done   bool
	wrote  bool // a Set or Delete was accepted
}

func (t *badgerTxn) check(key []byte, write bool) error {
	if t.done {
		return ErrTxnDone
	}
	if write && !t.update {
		return ErrReadOnly
	}
	return checkKey(key)
}

func (t *badgerTxn) Get(key []byte) ([]byte, error) {
	if err := t.check(key, false); err != nil {
		return nil, err
	}
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get: %w", mapErr(err))
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("get: read value: %w", mapErr(err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (t *badgerTxn) Set(key, value []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	if err := t.txn.Set(key, value); err != nil {
		return fmt.Errorf("set: %w", mapErr(err))
	}
	t.wrote = true
	return nil
}

func (t *badgerTxn) Delete(key []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	if err := t.txn.Delete(key); err != nil {
		return fmt.Errorf("delete: %w", mapErr(err))
	}
	t.wrote = true
	return nil
}

func (t *badgerTxn) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	if t.done {
		return ErrTxnDone
	}
	// Values under the value threshold (1 MiB) sit in the LSM tree and are
	// read in place by item.Value; prefetching would copy every one of them.
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(seekKey(prefix, start)); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		err := item.Value(func(v []byte) error { return fn(key, v) })
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// slogLogger adapts a *slog.Logger (nil: discard) to badger.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) log(level slog.Level, format string, args ...any) {
	if s.l == nil || !s.l.Enabled(context.Background(), level) {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	s.l.Log(context.Background(), level, msg, "component", "badger")
}

func (s slogLogger) Errorf(format string, args ...any)   { s.log(slog.LevelError, format, args...) }
func (s slogLogger) Warningf(format string, args ...any) { s.log(slog.LevelWarn, format, args...) }
func (s slogLogger) Infof(format string, args ...any)    { s.log(slog.LevelDebug, format, args...) }
func (s slogLogger) Debugf(format string, args ...any)   { s.log(slog.LevelDebug, format, args...) }
