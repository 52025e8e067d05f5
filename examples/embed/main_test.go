package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv"
)

// Test_main runs the program on a temporary directory (with the compilation
// cache shared by the module's tests) and checks its key lines, among them
// the denial the root README's "Embedding" section shows.
func Test_main(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, t.TempDir(), testenv.CacheDir()))
	got := out.String()
	for _, want := range []string{
		"alice writes notes/1                 OK\n",
		`bob writes notes/1                   PERMISSION_DENIED write of "notes/1" denied by genesis/freeware: freeware: only the controller may write` + "\n",
		`bob reads notes/1                    OK "hello"` + "\n",
		`bob reads alice/report               PAYER_NOT_AUTHORIZED contract alice/pay-per-read named payer "sponsor", who has not consented to it` + "\n",
		`bob reads alice/report               OK "Q1: revenue up 12%" (sponsor paid 5 to alice)` + "\n",
		"balance alice   105\nbalance bob     100\nbalance sponsor 495\n",
	} {
		require.Contains(t, got, want)
	}
	require.Equal(t, 12, strings.Count(got, "\n"), got)
}

// TestReopen runs the program twice on one directory: the second run finds
// the world already installed and fails with genesis's error, after closing
// everything (a leaked Badger lock would fail the open instead).
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, run(context.Background(), &bytes.Buffer{}, dir, testenv.CacheDir()))
	err := run(context.Background(), &bytes.Buffer{}, dir, testenv.CacheDir())
	require.ErrorContains(t, err, "already initialised")
}
