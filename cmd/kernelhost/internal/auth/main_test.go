package auth_test

import (
	"os"
	"testing"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
)

// TestMain keeps one PostgreSQL server for the package's tests (each takes
// a schema of its own) instead of starting one per test.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
