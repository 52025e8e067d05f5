package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
)

// TestUnknownCommandsExitUsage: a command line naming no command, at any
// level, exits 2 with one line on stderr that suggests the command meant,
// and prints nothing on stdout (before, 'artifact gett x' printed
// artifact's help and exited 0); a group alone still prints its help.
func TestUnknownCommandsExitUsage(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"artifact", "gett", "x"}, `unknown command "gett" for "kernelhost artifact": did you mean get?`},
		{[]string{"artifact", "gett", "x", "--as", "bob"}, `unknown command "gett" for "kernelhost artifact": did you mean get?`},
		{[]string{"contract", "chek", "--as", "bob"}, `did you mean check?`},
		{[]string{"principal", "lst"}, `did you mean list?`},
		{[]string{"events", "tial"}, `did you mean tail?`},
		{[]string{"artifac", "get", "x"}, `unknown command "artifac" for "kernelhost": did you mean artifact?`},
		{[]string{"xyzzy"}, `unknown command "xyzzy" for "kernelhost": run 'kernelhost --help' for its commands`},
		{[]string{"completion", "bashh"}, `unknown command "bashh" for "kernelhost completion"`},
		{[]string{"totals", "extra"}, `unknown command "extra" for "kernelhost totals"`},
		{[]string{"artifact", "--bogus"}, `unknown flag: --bogus`},
	} {
		out, errOut, code := cli(t, dir, tc.args...)
		require.Equal(t, exitUsage, code, "%v: %s", tc.args, errOut)
		require.Empty(t, out, "%v", tc.args)
		require.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
	for _, args := range [][]string{{"artifact"}, {}, {"artifact", "--help"}} {
		out := ok(t, dir, args...)
		require.Contains(t, out, "Available Commands:", "%v", args)
	}
}

// TestContractCheckFail: 'contract check --fail' exits 1 when the action
// would fail (a denial, or a refusal at settlement), after printing the
// explanation, and 0 when it would succeed; without --fail a denial is
// still exit 0 (check only reports).
func TestContractCheckFail(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "artifact", "put", "diary", "--as", "alice", "--type", "text", "--contract", "genesis/private", "--text", "secret")
	ok(t, dir, "artifact", "put", "note", "--as", "alice", "--type", "text", "--text", "hi")
	deny := []string{"contract", "check", "--as", "bob", "--action", "read", "--target", "diary"}

	out := ok(t, dir, deny...)
	require.Contains(t, out, "settlement: would fail with PERMISSION_DENIED")

	out, errOut, code := cli(t, dir, append(deny, "--fail")...)
	require.Equal(t, exitError, code)
	require.Contains(t, out, "settlement: would fail with PERMISSION_DENIED", "the explanation is printed first")
	require.True(t, strings.HasPrefix(errOut, "kernelhost: PERMISSION_DENIED: "), errOut)
	require.Equal(t, 1, strings.Count(errOut, "\n"))

	out, _, code = cli(t, dir, append(deny, "--fail", "-o", "json")...)
	require.Equal(t, exitError, code)
	var ex api.Explanation
	require.NoError(t, json.Unmarshal([]byte(out), &ex))
	require.False(t, ex.Outcome.OK)
	require.Equal(t, "PERMISSION_DENIED", ex.Outcome.ErrorCode)

	out = ok(t, dir, "contract", "check", "--as", "bob", "--action", "read", "--target", "note", "--fail")
	require.Contains(t, out, "settlement: OK")
	// Any denial fails, a write of alice's note by bob too.
	fails(t, dir, exitError, "contract", "check", "--as", "bob", "--action", "write", "--target", "note", "--text", "mine", "--fail")
}

// TestLibraryLogsOnStderr: with --log-level debug, Badger's log lines (and
// every other log) go to stderr, never stdout: the JSON on stdout still
// parses, for a command that opens the store and one that fails.
func TestLibraryLogsOnStderr(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	out, errOut, code := runChild(t, nil, "--data-dir", dir, "--log-level", "debug", "principal", "list", "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "component=badger", "Badger logged at debug level, to stderr")
	var ps []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &ps), "stdout is only the JSON: %q", out)
	require.NotEmpty(t, ps)
	require.NotContains(t, out, "badger")

	out, errOut, code = runChild(t, nil, "--data-dir", dir, "--log-level", "debug", "artifact", "get", "nothing", "--as", "bob", "-o", "json")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "component=badger")
	var res api.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res), "stdout is only the JSON: %q", out)
	require.Equal(t, "NOT_FOUND", res.ErrorCode)
}
