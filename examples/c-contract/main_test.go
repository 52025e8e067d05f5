package ccontract_test

import (
	"os"
	"testing"

	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

// sharedHost runs the contracts of every world of this package's tests, so
// that each module is compiled once per run rather than once per world.
var sharedHost *host.Host

func TestMain(m *testing.M) { os.Exit(testworld.RunWithHost(m, &sharedHost)) }
