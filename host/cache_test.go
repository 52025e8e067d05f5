package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// variant returns wasm with a custom section naming i appended: another
// module (another hash, another compilation) that behaves the same. (The
// section has a byte of content: wazero v1.11 fails to read an empty custom
// section at the end of a module.)
func variant(wasm []byte, i int) []byte {
	name := fmt.Sprintf("variant-%d", i)
	out := append([]byte(nil), wasm...)
	out = append(out, 0, byte(len(name)+2), byte(len(name)))
	return append(append(out, name...), '.')
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	}))
	return n
}

// TestModuleCacheBounded: the compiled modules, the pools and the on-disk
// compilation cache are bounded. A principal deploying module after module
// used to grow the host's memory (a compiled module, a warm instance each)
// and its disk without end; now the least recently used modules are
// evicted (count and estimated code bytes), idle instances are closed when
// the pools' memory is over its budget, and the on-disk cache is trimmed to
// its budget, oldest entries first, stale versions and temporary files
// removed. An evicted module is compiled again by the next Prepare of its
// bytes.
func TestModuleCacheBounded(t *testing.T) {
	ctx := context.Background()
	allow := readWasm(t, "allow")
	check := func(h *host.Host, hash [32]byte) error {
		d, _, err := h.Evaluate(ctx, hash, request(abi.ActionRead, "a", "b"), abi.Limits{})
		if err == nil {
			require.True(t, d.Allowed)
		}
		return err
	}

	t.Run("count, least recently used first", func(t *testing.T) {
		const max = 3
		h := newHost(t, host.Config{MaxModules: max})
		hot, err := h.Prepare(ctx, variant(allow, 0))
		require.NoError(t, err)
		var cold [][32]byte
		for i := 1; i <= 10; i++ {
			require.NoError(t, check(h, hot), "the hot module is used between deploys")
			hash, err := h.Prepare(ctx, variant(allow, i))
			require.NoError(t, err)
			cold = append(cold, hash)
			st := h.Stats()
			require.LessOrEqual(t, len(st.Modules), max, "after %d deploys", i)
		}
		require.True(t, h.Prepared(hot), "the module used between every deploy stays")
		require.True(t, h.Prepared(cold[len(cold)-1]), "the newest module stays")
		require.False(t, h.Prepared(cold[0]), "the oldest unused module is gone")
		require.Equal(t, uint64(10+1-max), h.Stats().Evicted)

		err = check(h, cold[0])
		require.ErrorIs(t, err, host.ErrNotPrepared, "an evicted module must be prepared again")
		again, err := h.Prepare(ctx, variant(allow, 1))
		require.NoError(t, err)
		require.Equal(t, cold[0], again)
		require.NoError(t, check(h, again), "compiled again on demand")
		require.LessOrEqual(t, len(h.Stats().Modules), max)

		require.True(t, h.Forget(again))
		require.False(t, h.Prepared(again))
		require.False(t, h.Forget(again))
	})

	t.Run("estimated code bytes", func(t *testing.T) {
		probe := newHost(t, host.Config{})
		_, err := probe.Prepare(ctx, variant(allow, 0))
		require.NoError(t, err)
		one := probe.Stats().CodeBytes
		require.Positive(t, one)

		h := newHost(t, host.Config{MaxCodeBytes: 2*one + one/2})
		for i := range 6 {
			_, err := h.Prepare(ctx, variant(allow, i))
			require.NoError(t, err)
			st := h.Stats()
			require.LessOrEqual(t, st.CodeBytes, 2*one+one/2)
			require.LessOrEqual(t, len(st.Modules), 2)
		}
	})

	t.Run("pool memory", func(t *testing.T) {
		// Each allow instance holds 2 pages; the budget is 3 of them.
		const inst = 2 * 65536
		h := newHost(t, host.Config{MaxPoolBytes: 3 * inst})
		var hashes [][32]byte
		for i := range 8 {
			hash, err := h.Prepare(ctx, variant(allow, i))
			require.NoError(t, err)
			hashes = append(hashes, hash)
			require.LessOrEqual(t, h.Stats().PoolBytes, uint64(3*inst), "after preparing %d", i)
		}
		for round := range 3 {
			for i, hash := range hashes {
				require.NoError(t, check(h, hash))
				st := h.Stats()
				require.LessOrEqual(t, st.PoolBytes, uint64(3*inst), "round %d, module %d", round, i)
				idle := 0
				for _, m := range st.Modules {
					idle += m.Idle
				}
				require.LessOrEqual(t, idle, 3)
			}
		}
	})

	t.Run("busy modules are evicted last and finish their calls", func(t *testing.T) {
		h := newHost(t, host.Config{MaxModules: 2, InvokeTimeout: 30 * time.Second})
		busy, err := h.Prepare(ctx, variant(readWasm(t, "exec"), 0))
		require.NoError(t, err)
		calls := newBlockingCalls()
		done := make(chan error, 1)
		go func() {
			res, _, err := h.Invoke(ctx, busy, invokeReq("call", `{}`), abi.Limits{}, calls)
			if err == nil && !res.OK {
				err = host.ErrBadDecision
			}
			done <- err
		}()
		<-calls.entered
		for i := range 4 {
			_, err := h.Prepare(ctx, variant(allow, i))
			require.NoError(t, err)
		}
		require.True(t, h.Prepared(busy), "a module with a call in flight is spared while others can go")
		require.True(t, h.Forget(busy), "forgetting it while its call runs")
		close(calls.release)
		require.NoError(t, <-done, "the call in flight finishes")
		_, _, err = h.Invoke(ctx, busy, invokeReq("", ""), abi.Limits{}, &fakeCalls{})
		require.ErrorIs(t, err, host.ErrNotPrepared)
	})

	t.Run("on-disk cache", func(t *testing.T) {
		dir := t.TempDir()
		cur := host.WazeroCacheDir(dir)
		stale := filepath.Join(dir, "wazero-v0.0.1-old-arch")
		require.NoError(t, os.MkdirAll(stale, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(stale, "entry"), make([]byte, 1000), 0o600))
		// Another version's directory in use (changed recently, by a
		// process of another wazero build sharing the directory) stays.
		busy := filepath.Join(dir, "wazero-v0.0.2-busy-arch")
		require.NoError(t, os.MkdirAll(busy, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(busy, "entry.1.tmp"), []byte("x"), 0o600))
		hourAgo := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(stale, "entry"), hourAgo, hourAgo))
		require.NoError(t, os.Chtimes(stale, hourAgo, hourAgo))
		mine := filepath.Join(dir, "not-wazero")
		require.NoError(t, os.WriteFile(mine, []byte("kept"), 0o600))

		h := newHost(t, host.Config{CacheDir: dir, MaxModules: 2})
		require.DirExists(t, cur, "wazero's cache directory is the one the cleaner bounds")
		require.NoDirExists(t, stale, "another wazero version's idle cache is removed")
		require.DirExists(t, busy, "another wazero version's cache in use is left alone")
		require.FileExists(t, mine, "files not wazero's are left alone")
		const n = 20
		for i := range n {
			_, err := h.Prepare(ctx, variant(allow, i))
			require.NoError(t, err)
		}
		all := dirBytes(t, cur)
		require.Positive(t, all)
		entries, err := os.ReadDir(cur)
		require.NoError(t, err)
		per := all / int64(len(entries))

		// A host with a budget of 5 entries trims what the first left.
		tmp := filepath.Join(cur, "x.123.tmp")
		require.NoError(t, os.WriteFile(tmp, make([]byte, 10), 0o600))
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(tmp, old, old))
		budget := 5*per + per/2
		h2 := newHost(t, host.Config{CacheDir: dir, MaxCacheDirBytes: budget})
		require.LessOrEqual(t, dirBytes(t, cur), budget)
		require.NoFileExists(t, tmp, "a temporary file left by an interrupted write is removed")
		// Modules compiled again are cached again, within the budget.
		for i := range n {
			_, err := h2.Prepare(ctx, variant(allow, 100+i))
			require.NoError(t, err)
		}
		require.LessOrEqual(t, dirBytes(t, cur), budget+int64(16)*per, "cleaned every 16 compilations")
	})
}

// TestCleanCacheDir: the cleaner removes the oldest entries until the rest
// fit, stale temporary files and other versions' directories, and nothing
// else.
func TestCleanCacheDir(t *testing.T) {
	dir := t.TempDir()
	cur := host.WazeroCacheDir(dir)
	require.NoError(t, os.MkdirAll(cur, 0o700))
	now := time.Now()
	write := func(name string, size int, age time.Duration) {
		p := filepath.Join(cur, name)
		require.NoError(t, os.WriteFile(p, make([]byte, size), 0o600))
		require.NoError(t, os.Chtimes(p, now.Add(-age), now.Add(-age)))
	}
	write("a", 100, 4*time.Hour) // oldest
	write("b", 100, 3*time.Hour)
	write("c", 100, 2*time.Hour)
	write("d", 100, time.Hour) // newest
	write("e.1.tmp", 5, time.Hour)
	write("f.2.tmp", 5, time.Second) // being written
	require.NoError(t, host.CleanCacheDir(dir, 250, now))
	var left []string
	entries, err := os.ReadDir(cur)
	require.NoError(t, err)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	require.Equal(t, []string{"c", "d", "f.2.tmp"}, left)
	require.NoError(t, host.CleanCacheDir(filepath.Join(dir, "absent"), 0, now), "no cache yet")
}
