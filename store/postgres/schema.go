package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the version of the tables this package reads and
// writes. Open creates them in an empty database and migrates older ones;
// it refuses a database whose version is newer (ErrSchemaTooNew).
const SchemaVersion = 1

// ErrSchemaTooNew is returned (wrapped) by Open for a database written by a
// newer kernelhost: this one does not know its tables.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this kernelhost")

// Tables. Names are unqualified: they live in the first schema of the
// connection's search_path, so several worlds can share a database, each
// with search_path=<its schema> in its DSN.
const (
	// schemaTable holds one row (id 1): the schema version.
	schemaTable = "kernelhost_schema"
	// kvTable holds every key and value. Keys are BYTEA, which PostgreSQL,
	// CockroachDB and YugabyteDB all compare bytewise, as the Store
	// interface orders keys; range reads walk its primary key.
	kvTable = "kernelhost_kv"
)

// dialect holds what differs between the PostgreSQL-wire databases: the
// SQL stays one text wherever a portable form exists.
type dialect struct {
	name string
	// keyOrder goes after the primary key's column: YugabyteDB shards the
	// first primary-key column by hash unless told ASC (range reads would
	// scan the whole table), and PostgreSQL does not accept ASC there.
	keyOrder string
}

// detectDialect tells PostgreSQL, CockroachDB and YugabyteDB apart by
// version().
func detectDialect(ctx context.Context, conn *pgxpool.Conn) (dialect, error) {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return dialect{}, fmt.Errorf("version: %w", err)
	}
	switch {
	case strings.Contains(v, "CockroachDB"):
		return dialect{name: "cockroachdb"}, nil
	case strings.Contains(v, "-YB-"):
		return dialect{name: "yugabytedb", keyOrder: " ASC"}, nil
	}
	return dialect{name: "postgresql"}, nil
}

// migrations[i] takes the schema from version i to i+1.
var migrations = []func(d dialect) []string{
	0: func(d dialect) []string {
		return []string{
			"CREATE TABLE " + kvTable + " (k BYTEA NOT NULL, v BYTEA NOT NULL, PRIMARY KEY (k" + d.keyOrder + "))",
		}
	},
}

// migrate creates or upgrades the tables to SchemaVersion. Several nodes
// may open the same database at once: the version row is read and written
// in one serializable transaction, and an open that loses the race to
// create a table (a serialization failure, or one of the errors
// PostgreSQL's catalog raises for two concurrent CREATE TABLE, IF NOT EXISTS
// or not) runs again and finds the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	var err error
	for attempt := range 10 {
		if err = migrateOnce(ctx, pool); err == nil || !raceCode(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

// raceCode reports whether err is one that a concurrent migration causes.
func raceCode(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case codeSerialization, codeDeadlock,
		"23505", // unique_violation (a catalog index)
		"42P07", // duplicate_table
		"42710": // duplicate_object (the table's row type)
		return true
	}
	return false
}

func migrateOnce(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	d, err := detectDialect(ctx, conn)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+schemaTable+
		" (id INT NOT NULL PRIMARY KEY, version INT NOT NULL)"); err != nil {
		return fmt.Errorf("create %s: %w", schemaTable, err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	version := 0
	err = tx.QueryRow(ctx, "SELECT version FROM "+schemaTable+" WHERE id = 1 FOR UPDATE").Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case version > SchemaVersion:
		return fmt.Errorf("%w: version %d, this kernelhost knows %d", ErrSchemaTooNew, version, SchemaVersion)
	case version == SchemaVersion:
		return nil
	case version < 0:
		return fmt.Errorf("postgres: schema version %d in %s", version, schemaTable)
	}
	for v := version; v < SchemaVersion; v++ {
		for _, stmt := range migrations[v](d) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
	}
	if version == 0 {
		_, err = tx.Exec(ctx, "INSERT INTO "+schemaTable+" (id, version) VALUES (1, $1)", SchemaVersion)
	} else {
		_, err = tx.Exec(ctx, "UPDATE "+schemaTable+" SET version = $1 WHERE id = 1", SchemaVersion)
	}
	if err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	return tx.Commit(ctx)
}
