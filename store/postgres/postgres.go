package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kernelhost/kernelhost/store"
)

// Options configures [Open]. The zero value gives the defaults in
// parentheses; the pool settings default to the DSN's pool_* parameters
// where it has them (pgxpool's names: pool_max_conns, pool_min_conns,
// pool_max_conn_lifetime, pool_max_conn_idle_time).
type Options struct {
	// MaxConns is the most connections the pool opens (max(4, number of
	// CPUs)). Each running View or Update holds one; a closure that starts
	// another transaction on the same store (which the Store interface
	// forbids) can wait for a connection forever once all are taken.
	MaxConns int32

	// MinConns is how many connections the pool keeps open while idle (0).
	MinConns int32

	// MaxConnLifetime closes a connection this long after it was opened
	// (1 h), so that a failover or a rebalanced cluster is picked up.
	MaxConnLifetime time.Duration

	// MaxConnIdleTime closes a connection idle this long (30 min).
	MaxConnIdleTime time.Duration

	// Timeout bounds every round trip to the database, waiting for a
	// connection included (30 s): a database that stops answering fails the
	// transaction instead of hanging it.
	Timeout time.Duration

	// MaxTxnBytes bounds the bytes of keys and values one Update may write,
	// overwrites counted (64 MiB, the largest command CockroachDB accepts by
	// default). A Set or Delete past it returns store.ErrTxnTooBig (wrapped)
	// and is not applied.
	MaxTxnBytes int

	// SerializableViews runs View as SERIALIZABLE READ ONLY DEFERRABLE
	// instead of REPEATABLE READ READ ONLY. Both read one consistent
	// snapshot, without taking locks and without ever failing on a
	// conflict. The default snapshot may show, in rare interleavings of
	// concurrent serializable writers, a state that no serial order of them
	// passes through (PostgreSQL's read-only anomaly); a deferrable view
	// waits instead until its snapshot is safe, which takes as long as the
	// writers running when it starts. CockroachDB refuses DEFERRABLE (and
	// runs every transaction serializable anyway): leave it false there.
	SerializableViews bool
}

// Defaults of Options; see the fields.
const (
	defaultTimeout     = 30 * time.Second
	defaultMaxTxnBytes = 64 << 20
	defaultLifetime    = time.Hour
	defaultIdleTime    = 30 * time.Minute
)

// Transaction modes. Update asks for SERIALIZABLE explicitly: it is
// PostgreSQL's and YugabyteDB's only isolation that makes a read-write
// transaction behave as if alone, and CockroachDB's default.
const (
	beginUpdate           = "BEGIN ISOLATION LEVEL SERIALIZABLE"
	beginView             = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	beginSerializableView = "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE"
)

// SQLSTATEs this package maps: a serialisation failure and a deadlock both
// abort the transaction and succeed when it runs again, so both are
// store.ErrConflict; an index row over PostgreSQL's limit is a key it
// cannot store.
const (
	codeSerialization = "40001" // serialization_failure (CockroachDB: every retry error)
	codeDeadlock      = "40P01" // deadlock_detected
	codeLimit         = "54000" // program_limit_exceeded: index row size exceeds btree maximum
)

// Open connects to the PostgreSQL (or PostgreSQL-wire) database of dsn, a
// URL (postgres://user@host:5432/db?sslmode=verify-full) or key=value
// string as libpq takes, creates or migrates its tables (see
// SchemaVersion), and returns a store.Store over it.
//
// Every Update is a SERIALIZABLE transaction: one whose reads a concurrent
// commit invalidated fails with store.ErrConflict (wrapped), and the caller
// runs it again. A View is a read-only snapshot. An Update that returned
// nil is as durable as the server makes a commit (synchronous_commit on,
// PostgreSQL's default: on disk).
//
// Several processes may open the same database at once: that is what it
// is for.
func Open(dsn string, opts Options) (store.Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.MaxConns < 0 || opts.MinConns < 0 || opts.MaxConnLifetime < 0 || opts.MaxConnIdleTime < 0 ||
		opts.Timeout < 0 || opts.MaxTxnBytes < 0 {
		return nil, errors.New("postgres: open: negative option")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("postgres: open: MinConns %d over MaxConns %d", cfg.MinConns, cfg.MaxConns)
	}
	if opts.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = opts.MaxConnLifetime
	}
	if opts.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "kernelhost"
	}
	s := &pgStore{
		timeout:     orDefault(opts.Timeout, defaultTimeout),
		maxTxnBytes: orDefault(opts.MaxTxnBytes, defaultMaxTxnBytes),
		beginView:   beginView,
	}
	if opts.SerializableViews {
		s.beginView = beginSerializableView
	}
	ctx, cancel := s.ctx()
	defer cancel()
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := migrate(ctx, s.pool); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// pgStore is the PostgreSQL Store.
type pgStore struct {
	gate        gate // so that Close never closes the pool under a running transaction
	pool        *pgxpool.Pool
	timeout     time.Duration
	maxTxnBytes int
	beginView   string
}

// Shared reports that other processes may have the store open at the same
// time: the kernel then reads every node's rate windows (kernel.Config.
// SharedStore).
func (s *pgStore) Shared() bool { return true }

// ctx returns the context of one round trip.
func (s *pgStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// View runs fn on a snapshot taken before fn starts: BEGIN and a first
// statement go in one round trip, since PostgreSQL takes a transaction's
// snapshot at its first statement, not at BEGIN.
func (s *pgStore) View(fn func(store.Txn) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	t := &txn{s: s}
	defer t.end()
	if err := t.snapshot(); err != nil {
		return fmt.Errorf("postgres: view: %w", err)
	}
	return fn(t)
}

// Update runs fn in a serializable transaction begun lazily, with its first
// statement, and commits it together with its buffered writes: an Update
// that only writes costs one round trip.
func (s *pgStore) Update(fn func(store.Txn) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	t := &txn{s: s, update: true}
	defer t.end() // rolls back on every path that did not commit, a panic included
	err := func() error {
		defer func() { t.done = true }()
		return fn(t)
	}()
	if err != nil {
		return err
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close waits for running transactions, then closes the pool.
func (s *pgStore) Close() error {
	if err := s.gate.close(); err != nil {
		return err
	}
	s.pool.Close()
	return nil
}

// mapErr turns a database error into the store's: conflicts into
// store.ErrConflict, an index row too long into store.ErrInvalidKey (both
// wrapping the original, whose *pgconn.PgError errors.As still finds).
func mapErr(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case codeSerialization, codeDeadlock:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case codeLimit:
		return fmt.Errorf("%w: %w", store.ErrInvalidKey, err)
	}
	return err
}
