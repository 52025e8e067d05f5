package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
)

// TestStart checks that each Start gives a new, empty schema, the one that
// unqualified names resolve to, on a server that answers.
func TestStart(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.Start(t), pgtest.Start(t)
	require.NotEqual(t, a, b)
	for _, dsn := range []string{a, b} {
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		var tables int
		require.NoError(t, conn.QueryRow(ctx,
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()").Scan(&tables))
		require.Zero(t, tables, "a fresh schema")
		// Both create t: each in its own schema.
		_, err = conn.Exec(ctx, "CREATE TABLE t (x int)")
		require.NoError(t, err)
		var super bool
		require.NoError(t, conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super))
		require.True(t, super)
		require.NoError(t, conn.Close(ctx))
	}
}
