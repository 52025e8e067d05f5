package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/store"
	"github.com/kernelhost/kernelhost/store/postgres"
)

// openPostgres opens a store/postgres Store on a new schema of the test
// process's PostgreSQL server (internal/testenv/pgtest: skipped when
// PostgreSQL is not installed, failed then under
// KERNELHOST_REQUIRE_POSTGRES=1).
func openPostgres(t testing.TB) store.Store {
	t.Helper()
	s, err := postgres.Open(pgtest.Start(t), postgres.Options{})
	require.NoError(t, err)
	return s
}

// TestPostgresStoreSuite runs the shared store suite (testStore, as TestStore
// runs it on the in-memory store and Badger) on PostgreSQL.
func TestPostgresStoreSuite(t *testing.T) {
	testStore(t, openPostgres)
}
