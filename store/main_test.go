package store_test

import (
	"os"
	"testing"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
)

// TestMain keeps one PostgreSQL server (started by the first test that
// needs one) for every test of the package.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
