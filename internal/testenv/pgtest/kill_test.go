package pgtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// childEnv makes the test binary, run again by TestKilledRunLeavesNothing,
// start a server and wait to be killed.
const childEnv = "KERNELHOST_PGTEST_CHILD"

// TestKilledRunLeavesNothing kills (SIGKILL) a test process holding a
// server: its postgres must exit by itself, and the next start must remove
// the directory it left.
func TestKilledRunLeavesNothing(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		Start(t)
		os.Stdout.WriteString("READY\n")
		time.Sleep(time.Minute) // killed before then
		return
	}
	if Bin() == "" {
		Start(t) // skips, or fails under KERNELHOST_REQUIRE_POSTGRES=1
	}
	child := exec.Command(os.Args[0], "-test.run=^TestKilledRunLeavesNothing$", "-test.count=1")
	child.Env = append(os.Environ(), childEnv+"=1")
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	lines := bufio.NewScanner(out)
	ready := false
	for lines.Scan() {
		if lines.Text() == "READY" {
			ready = true
			break
		}
	}
	require.True(t, ready, "the child started a server")
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+strconv.Itoa(child.Process.Pid)+"-*"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	b, err := os.ReadFile(filepath.Join(dirs[0], "data", "postmaster.pid"))
	require.NoError(t, err)
	line, _, _ := strings.Cut(string(b), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	require.True(t, isPostgres(postmaster))

	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	for i := 0; alive(postmaster); i++ {
		require.Less(t, i, 400, "postgres outlived its killed parent by 20 s")
		time.Sleep(50 * time.Millisecond)
	}
	require.DirExists(t, dirs[0])
	sweep()
	require.NoDirExists(t, dirs[0])
}
