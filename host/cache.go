package host

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// The caches a principal can grow by deploying modules are bounded
// (Config.MaxModules, MaxCodeBytes, MaxPoolBytes, MaxCacheDirBytes):
//
//   - compiled modules: an approximate LRU (CLOCK). Every call sets its
//     module's reference bit; admitting a module past a bound sweeps the
//     ring of modules from the hand, clearing set bits (a second chance) and
//     evicting the first module found clear, modules with calls in flight
//     last. An evicted module is closed with its last instance, and compiled
//     again (from the on-disk cache when there is one) by the next Prepare
//     of its bytes.
//   - pools: the memory of every live instance is counted (memcap.go); an
//     instance released while the total is over MaxPoolBytes makes the
//     idle instances of cold modules close first, and is itself closed if
//     that is not enough. Each pool also holds at most
//     MaxInstancesPerModule instances.
//   - the on-disk compilation cache: New and every cleanEvery compilations
//     delete what is beyond MaxCacheDirBytes, oldest first.

// moduleCache is the bookkeeping of the compiled modules a Host keeps, under
// Host.mu.
type moduleCache struct {
	// ring is every prepared module in the order it was admitted: the
	// clock the eviction sweep goes round, from hand.
	ring      []*module
	hand      int
	codeBytes uint64 // sum of the modules' codeBytes
	evicted   uint64 // modules evicted since New
	compiles  int    // modules compiled since the on-disk cache was last cleaned
}

// codeBytesPerByte estimates the memory a compiled module takes per byte of
// instrumented module: wazero's machine code (13.4 MiB for the 3.6 MB
// instrumented Go SDK contract, measured from /proc/self/smaps) plus its
// decoded module.
const codeBytesPerByte = 5

// cleanEvery is how many compilations pass between two cleanings of the
// on-disk cache.
const cleanEvery = 16

// touch sets m's reference bit, without a write when it is already set: a
// hot module's calls only read it.
func (m *module) touch() {
	if !m.used.Load() {
		m.used.Store(true)
	}
}

// overLocked reports whether the compiled modules exceed a bound.
func (h *Host) overLocked() bool {
	return len(h.lru.ring) > h.cfg.MaxModules || h.lru.codeBytes > h.cfg.MaxCodeBytes
}

// admitLocked adds m to the cache and to mods, the module map about to be
// published, and evicts (removes from both) modules while a bound is
// exceeded; m itself is never evicted. It returns the evicted modules, for
// the caller to close once it has published mods and unlocked, and whether
// the on-disk cache is due for cleaning.
func (h *Host) admitLocked(m *module, mods map[[32]byte]*module) (evicted []*module, clean bool) {
	c := &h.lru
	c.ring = append(c.ring, m)
	c.codeBytes += m.codeBytes
	if c.compiles++; c.compiles >= cleanEvery {
		c.compiles, clean = 0, true
	}
	// Two rounds spare the referenced and the busy, the third evicts any.
	for steps := 3 * len(c.ring); h.overLocked() && steps > 0; steps-- {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		v := c.ring[c.hand]
		if v == m || (steps > len(c.ring) && (v.used.Swap(false) || v.busy())) {
			c.hand++
			continue
		}
		h.removeLocked(c.hand, mods)
		evicted = append(evicted, v)
	}
	return evicted, clean
}

// removeLocked removes the module at ring index i from the cache and from
// mods.
func (h *Host) removeLocked(i int, mods map[[32]byte]*module) {
	c := &h.lru
	v := c.ring[i]
	copy(c.ring[i:], c.ring[i+1:])
	c.ring[len(c.ring)-1] = nil // so that v can be collected
	c.ring = c.ring[:len(c.ring)-1]
	if i < c.hand {
		c.hand--
	}
	c.codeBytes -= v.codeBytes
	c.evicted++
	delete(mods, v.hash)
}

// busy reports whether a call holds a slot of m.
func (m *module) busy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inUse > 0 || m.nested > 0
}

// Forget evicts the prepared module hash at once, for an embedder that
// knows no artifact uses it any more; calls in flight finish first. It
// reports whether the module was prepared. Preparing its bytes again
// compiles it again.
func (h *Host) Forget(hash [32]byte) bool {
	h.mu.Lock()
	m := h.lookup(hash)
	if m == nil {
		h.mu.Unlock()
		return false
	}
	old := *h.modules.Load()
	mods := make(map[[32]byte]*module, len(old))
	for k, v := range old {
		mods[k] = v
	}
	for i, v := range h.lru.ring {
		if v == m {
			h.removeLocked(i, mods)
			break
		}
	}
	h.modules.Store(&mods)
	h.mu.Unlock()
	m.evict()
	return true
}

// Prepared reports whether the module hash is prepared, so that a caller
// that keeps its own record of prepared modules (the kernel) can tell one
// the cache evicted and Prepare its bytes again. It counts as a use.
func (h *Host) Prepared(hash [32]byte) bool {
	m := h.lookup(hash)
	if m == nil {
		return false
	}
	m.touch()
	return true
}

// evict closes m's idle instances and makes it refuse new ones (enter) and
// close the rest as they are released; its compiled code is closed with the
// last of them.
func (m *module) evict() {
	m.mu.Lock()
	m.evicted, m.closed = true, true
	idle := m.idle
	m.idle = nil
	none := len(m.all) == 0 && m.pending == 0
	m.mu.Unlock()
	for _, inst := range idle {
		m.discard(inst) // the last one closes the code
	}
	if none {
		m.closeCompiled()
	}
}

// closeCompiled closes m's compiled code, once: when the cache evicted m
// and its last instance is gone. Not before: wazero finds the code of a
// running guest (for traps) among the compiled modules.
func (m *module) closeCompiled() {
	m.closeOnce.Do(func() { _ = m.compiled.Close(context.Background()) })
}

// enter reserves the right to instantiate m; false once m is evicted. leave
// ends it.
func (m *module) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.evicted {
		return false
	}
	m.pending++
	return true
}

func (m *module) leave() {
	m.mu.Lock()
	m.pending--
	last := m.evicted && m.pending == 0 && len(m.all) == 0
	m.mu.Unlock()
	if last {
		m.closeCompiled()
	}
}

// instantiateIn instantiates m for a call (a pool that grows, an instance
// for a nested invocation), unless the cache evicted m: then the caller
// gets ErrNotPrepared, as for a module never prepared.
func (h *Host) instantiateIn(ctx context.Context, m *module) (*instance, error) {
	if !m.enter() {
		return nil, notPrepared(m.hash)
	}
	defer m.leave()
	return h.instantiate(ctx, m, h.cfg.InitTimeout)
}

// trimPools makes room for inst, an instance of m about to be pooled while
// the live instances hold more than Config.MaxPoolBytes: it closes idle
// instances of other modules, of cold ones (reference bit clear) first and
// the least recently pooled of each first, until the total fits. It reports
// whether inst may be pooled.
func (h *Host) trimPools(m *module) bool {
	budget := int64(h.cfg.MaxPoolBytes)
	type victim struct {
		m    *module
		inst *instance
	}
	var victims []victim
	h.mu.Lock()
	over := h.poolBytes.Load() - budget
	for round := 0; round < 2 && over > 0; round++ {
		for _, v := range h.lru.ring {
			if over <= 0 {
				break
			}
			if v == m || (round == 0 && v.used.Load()) {
				continue
			}
			v.mu.Lock()
			n := 0
			for n < len(v.idle) && over > 0 {
				over -= int64(v.idle[n].footprint)
				n++
			}
			for _, inst := range v.idle[:n] {
				victims = append(victims, victim{v, inst})
			}
			rest := copy(v.idle, v.idle[n:])
			clear(v.idle[rest:])
			v.idle = v.idle[:rest]
			v.mu.Unlock()
		}
	}
	h.mu.Unlock()
	for _, v := range victims {
		v.m.discard(v.inst)
	}
	return over <= 0
}

// fitPool keeps the pools within Config.MaxPoolBytes after Prepare pooled
// the first instance of m: idle instances of cold modules are closed first,
// then m's own.
func (h *Host) fitPool(m *module) {
	if h.poolBytes.Load() <= int64(h.cfg.MaxPoolBytes) || h.trimPools(m) {
		return
	}
	if inst := m.popIdle(); inst != nil {
		m.discard(inst)
	}
}

// wazeroCacheDir is the directory under dir where wazero v1.11 keeps its
// compilation cache: one per wazero version, architecture and OS (cache.go
// of wazero, whose version comes from the build info as here).
func wazeroCacheDir(dir string) string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return filepath.Join(dir, "wazero-"+v+"-"+runtime.GOARCH+"-"+runtime.GOOS)
}

// staleTemp is how old a temporary file of the on-disk cache must be for
// the cleaner to take it for the leftover of an interrupted write.
const staleTemp = 10 * time.Minute

// cleanCacheDir bounds the on-disk compilation cache under dir: it removes
// the caches of other wazero versions (wazero-* directories but the current
// one), temporary files older than staleTemp, and then the oldest entries
// (by modification time: when they were compiled) until the rest take at
// most budget bytes. Another host may be reading an entry it removes: on
// POSIX systems the reader keeps its open file; an entry that is gone is
// compiled again.
func cleanCacheDir(dir string, budget int64, now time.Time) error {
	cur := wazeroCacheDir(dir)
	tops, err := os.ReadDir(dir)
	if err != nil {
		return ignoreNotExist(err)
	}
	var errs []error
	for _, e := range tops {
		p := filepath.Join(dir, e.Name())
		// Another wazero build (a test binary says "dev", a released
		// binary its version) may be using its directory right now, from
		// another process sharing dir: remove one only when nothing in it
		// changed for staleTemp.
		if e.IsDir() && strings.HasPrefix(e.Name(), "wazero-") && p != cur && idleSince(p, now) > staleTemp {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	entries, err := os.ReadDir(cur)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.Join(errs...)
		}
		return errors.Join(append(errs, err)...)
	}
	type file struct {
		path  string
		size  int64
		mtime time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		p := filepath.Join(cur, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			if now.Sub(info.ModTime()) > staleTemp {
				errs = append(errs, ignoreNotExist(os.Remove(p)))
			}
			continue
		}
		files = append(files, file{p, info.Size(), info.ModTime()})
		total += info.Size()
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mtime.Equal(files[j].mtime) {
			return files[i].mtime.Before(files[j].mtime)
		}
		return files[i].path < files[j].path
	})
	for _, f := range files {
		if total <= budget {
			break
		}
		errs = append(errs, ignoreNotExist(os.Remove(f.path)))
		total -= f.size
	}
	return errors.Join(errs...)
}

// idleSince is how long ago the newest file under dir (or dir itself)
// changed.
func idleSince(dir string, now time.Time) time.Duration {
	newest := time.Time{}
	if info, err := os.Stat(dir); err == nil {
		newest = info.ModTime()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return now.Sub(newest)
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// cleanDisk cleans the on-disk cache unless another goroutine is at it.
func (h *Host) cleanDisk() {
	if h.cfg.CacheDir == "" || !h.cleaning.TryLock() {
		return
	}
	defer h.cleaning.Unlock()
	_ = cleanCacheDir(h.cfg.CacheDir, h.cfg.MaxCacheDirBytes, time.Now()) // best effort: the next cleaning retries
}
