// Package pgtest starts a real PostgreSQL server for tests: no mocks of the
// database. The first [Start] of a test process runs initdb in a fresh
// temporary directory and starts postgres on 127.0.0.1 at a free port; every
// Start creates a new, empty schema on that server and returns a DSN whose
// search_path is that schema, so that every table a test creates without a
// schema name is its own. (A schema takes under a millisecond to create; a
// database, copied from its template, 110-190 ms here.)
// The server is shared by the tests of the process and stopped, its
// directory removed, when the last test holding it ends (or when [Main]
// returns, for a package that keeps one server for all its tests).
//
// When the PostgreSQL binaries (initdb, postgres) are not installed, Start
// skips the test, or fails it when $KERNELHOST_REQUIRE_POSTGRES is 1, as CI
// sets it. `make tools` installs them with apt.
//
// PostgreSQL refuses to run as root: under euid 0 initdb and postgres run as
// the unprivileged user nobody. A test process that dies without cleaning up
// (kill -9, a test timeout) leaves nothing running: the server gets SIGQUIT
// when its parent dies (Linux's parent-death signal), and the next Start
// removes directories left by processes that are gone.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv, set to 1 (CI does), turns missing PostgreSQL binaries from a
// skip into a failure.
const RequireEnv = "KERNELHOST_REQUIRE_POSTGRES"

// superuser is the name initdb gives the cluster's superuser; the DSNs log
// in as it (trust authentication, loopback only).
const superuser = "kernelhost"

// dirPrefix names the temporary directories of servers: the test process's
// pid follows, so that a later run can tell which ones are orphaned.
const dirPrefix = "kernelhost-pg-"

// Timeouts of the server's life cycle; generous, since CI runs tests of
// several packages at once on 2 cores.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
)

var (
	mu       sync.Mutex
	srv      *server // the running server, or nil
	refs     int     // tests holding srv
	keep     bool    // Main is running: keep srv when refs drops to 0
	dbSeq    int     // schemas created on srv
	findOnce sync.Once
	binDir   string // directory of initdb and postgres, "" if missing
)

// Start returns the DSN of a new, empty schema (the DSN's search_path) in
// database postgres of the process's shared PostgreSQL server, starting the
// server if needed. The test (and its
// subtests) hold the server until tb ends. It skips tb when PostgreSQL is
// not installed (see the package doc) and fails it when the server cannot
// be started.
func Start(tb testing.TB) string {
	tb.Helper()
	if Bin() == "" {
		msg := "PostgreSQL binaries (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin: install them (make tools)"
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("%s (%s=1 makes this a failure)", msg, RequireEnv)
		}
		tb.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
	}
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		s, err := startServer()
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		srv = s
	}
	refs++
	tb.Cleanup(release)
	dbSeq++
	name := fmt.Sprintf("kh_%d", dbSeq)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if _, err := srv.admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	return srv.dsn("postgres") + "&search_path=" + name
}

// Main runs the tests of m holding one server for the whole run (started by
// the first Start, if any), so that a package whose tests start and end one
// after another shares one server instead of starting one per test. Use it
// as `func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }`.
func Main(m *testing.M) int {
	mu.Lock()
	keep = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	keep = false
	if refs == 0 && srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			code = 1
		}
		srv = nil
	}
	mu.Unlock()
	return code
}

// release drops a test's hold on srv, stopping it with the last one.
func release() {
	mu.Lock()
	defer mu.Unlock()
	refs--
	if refs > 0 || keep || srv == nil {
		return
	}
	if err := srv.stop(); err != nil {
		// Cleanup has no test to fail here beyond the one ending; the
		// directory is swept by the next run.
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	srv = nil
}

// Bin returns the directory holding initdb and postgres, or "" when they
// are not installed: the directory of initdb in PATH, else the newest
// /usr/lib/postgresql/*/bin (Debian's layout, not in PATH).
func Bin() string {
	findOnce.Do(func() {
		if p, err := exec.LookPath("initdb"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			if dir := filepath.Dir(p); isFile(filepath.Join(dir, "postgres")) {
				binDir = dir
				return
			}
		}
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		// Newest version first: compare the version directories numerically.
		slices.SortFunc(dirs, func(a, b string) int {
			va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
			vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
			return vb - va
		})
		for _, dir := range dirs {
			if isFile(filepath.Join(dir, "initdb")) && isFile(filepath.Join(dir, "postgres")) {
				binDir = dir
				return
			}
		}
	})
	return binDir
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// server is a running postgres.
type server struct {
	dir    string // temporary directory: data/, postgres.log
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed once postgres has exited
	admin  *pgx.Conn     // to database postgres, for CREATE SCHEMA; guarded by mu
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, db)
}

// startServer sweeps orphaned directories, runs initdb and starts postgres,
// retrying with another port when the free port it picked was taken.
func startServer() (*server, error) {
	sweep()
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	// --no-sync: a test cluster need not survive a crash of the machine.
	initdb := exec.Command(filepath.Join(Bin(), "initdb"), "-D", data, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = procAttr(cred, syscall.SIGKILL)
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	var lastErr error
	for range 3 {
		s, err := launch(dir, data, cred)
		if err == nil {
			ok = true
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// launch starts postgres on a free port and waits until it accepts
// connections.
func launch(dir, data string, cred *syscall.Credential) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	// fsync and full_page_writes are off for test speed only: the tests
	// check the store's semantics, not PostgreSQL's durability, and the
	// cluster is thrown away. No Unix socket: TCP on loopback only.
	cmd := exec.Command(filepath.Join(Bin(), "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr(cred, syscall.SIGQUIT)
	s := &server{dir: dir, port: port, cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	// The parent-death signal fires when the thread that started the child
	// exits: start it from a locked thread that lives as long as the server.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			runtime.UnlockOSThread()
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(s.exited)
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			s.admin = conn
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("postgres exited at start: %s", tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("postgres not ready after %v: %v: %s", readyTimeout, err, tail(logPath))
		}
	}
}

// stop shuts postgres down (fast shutdown: running sessions are ended),
// killing it if it does not exit in time, and removes its directory.
func (s *server) stop() error {
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.admin.Close(ctx)
		cancel()
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	var err error
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		err = fmt.Errorf("postgres did not stop within %v; killed", stopTimeout)
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// credential returns who initdb and postgres run as: nobody when this
// process is root (PostgreSQL refuses root), else nil (this user).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user nobody: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sweep removes the server directories of test processes that are gone,
// stopping a postgres still running in one (one that outlived its parent
// where the parent-death signal is not available).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			if pm, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && isPostgres(pm) {
				_ = syscall.Kill(pm, syscall.SIGQUIT)
				for i := 0; i < 100 && alive(pm); i++ {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// alive reports whether process pid exists and is not a zombie (a dead
// process that nobody has reaped yet).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: kill's answer stands
	}
	// The state follows the command name, which is in parentheses.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// isPostgres reports whether process pid is a postgres (not a process that
// reused the pid of a dead one).
func isPostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(b)) == "postgres"
}

// tail returns the end of the log at path, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
