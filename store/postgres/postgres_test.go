package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/store"
)

// TestMain keeps one PostgreSQL server for every test of the package.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a Store on a new, empty schema and closes it at the end.
func open(t *testing.T, opts Options) (store.Store, string) {
	t.Helper()
	dsn := pgtest.Start(t)
	s, err := Open(dsn, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			require.ErrorIs(t, err, store.ErrClosed)
		}
	})
	return s, dsn
}

// sql runs one statement on dsn outside any Store.
func sql(t *testing.T, dsn, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt, args...)
	require.NoError(t, err)
}

// keys returns every key of s in Iterate order.
func keys(t *testing.T, s store.Store, prefix, start []byte) [][]byte {
	t.Helper()
	var got [][]byte
	require.NoError(t, s.View(func(tx store.Txn) error {
		return tx.Iterate(prefix, start, func(k, _ []byte) error {
			got = append(got, bytes.Clone(k))
			return nil
		})
	}))
	return got
}

// TestKeysOrderBytewise stores keys that a collation, a signed comparison
// or a text type would order differently (NUL, 0x7f/0x80, 0xff, prefixes of
// each other, invalid UTF-8) and requires Iterate's order, which is the
// database's ORDER BY k, to be bytes.Compare's.
func TestKeysOrderBytewise(t *testing.T) {
	s, _ := open(t, Options{})
	want := [][]byte{
		{0x00}, {0x00, 0x00}, {0x01}, {'A'}, {'Z'}, {'a'}, {'a', 0x00}, {'a', 'b'}, {'b'},
		{0x7f}, {0x80}, {0x80, 0x00}, {0xc3, 0xa9}, {0xc3, 0x28}, {0xfe, 0xff}, {0xff}, {0xff, 0x00}, {0xff, 0xff, 0xff},
	}
	for range 200 {
		k := make([]byte, 1+mrand.IntN(6))
		_, _ = rand.Read(k)
		want = append(want, k)
	}
	slices.SortFunc(want, bytes.Compare)
	want = slices.CompactFunc(want, bytes.Equal)
	shuffled := slices.Clone(want)
	mrand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	require.NoError(t, s.Update(func(tx store.Txn) error {
		for _, k := range shuffled {
			if err := tx.Set(k, k); err != nil {
				return err
			}
		}
		return nil
	}))
	require.Equal(t, want, keys(t, s, nil, nil))
	// Prefixes next to 0xff: the upper bound drops trailing 0xff bytes.
	for _, prefix := range [][]byte{{0xff}, {0xfe}, {0xff, 0xff}, {0x00}, {'a'}} {
		var sub [][]byte
		for _, k := range want {
			if bytes.HasPrefix(k, prefix) {
				sub = append(sub, k)
			}
		}
		require.Equal(t, sub, keys(t, s, prefix, nil), "prefix %x", prefix)
	}
}

// TestRangeReadUsesPrimaryKey requires the planner to answer a page of a
// range read from the primary key's index, in order, without a sort or a
// scan of the table.
func TestRangeReadUsesPrimaryKey(t *testing.T) {
	s, dsn := open(t, Options{})
	require.NoError(t, s.Update(func(tx store.Txn) error {
		for i := range 5000 {
			if err := tx.Set(fmt.Appendf(nil, "p/%05d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}))
	sql(t, dsn, "ANALYZE "+kvTable)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{sqlPage, []any{[]byte("p/01000"), []byte("p/02000"), maxPage}},
		{sqlPageNoUpper, []any{[]byte("p/01000"), maxPage}},
		{sqlGet, []any{[]byte("p/01000")}},
	} {
		var plan []string
		rows, err := conn.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		require.NoError(t, err)
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan = append(plan, line)
		}
		require.NoError(t, rows.Err())
		text := strings.Join(plan, "\n")
		require.Contains(t, text, "Index Scan using "+kvTable+"_pkey", "%s:\n%s", q.sql, text)
		require.NotContains(t, text, "Sort", text)
		require.NotContains(t, text, "Seq Scan", text)
	}
}

// TestMatchesMem runs random transactions (sets, deletes, overwrites, gets,
// iterations with prefixes, starts and early stops, writes during
// iterations) on PostgreSQL and on the in-memory store, and requires the
// same answers: enough keys that iterations cross pages and the write buffer
// is flushed before the commit.
func TestMatchesMem(t *testing.T) {
	s, _ := open(t, Options{})
	mem := store.NewMem()
	defer mem.Close()
	rng := mrand.New(mrand.NewPCG(1, 2))
	alphabet := []byte{0x00, 'a', 'b', 0xfe, 0xff}
	randKey := func() []byte {
		k := make([]byte, 1+rng.IntN(4))
		for i := range k {
			k[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if rng.IntN(3) == 0 {
			k = fmt.Appendf(k, "%04d", rng.IntN(1500))
		}
		return k
	}
	type op func(tx store.Txn) (string, error)
	randOp := func() op {
		switch n := rng.IntN(10); {
		case n < 4:
			k, v := randKey(), fmt.Appendf(nil, "v%d", rng.IntN(1000))
			return func(tx store.Txn) (string, error) { return "", tx.Set(k, v) }
		case n < 6:
			k := randKey()
			return func(tx store.Txn) (string, error) { return "", tx.Delete(k) }
		case n < 8:
			k := randKey()
			return func(tx store.Txn) (string, error) {
				v, err := tx.Get(k)
				if errors.Is(err, store.ErrNotFound) {
					return "absent", nil
				}
				return string(v), err
			}
		default:
			var prefix, start []byte
			if rng.IntN(2) == 0 {
				prefix = randKey()[:1]
			}
			if rng.IntN(2) == 0 {
				start = randKey()
			}
			stopAfter := rng.IntN(2000)
			writeAt := rng.IntN(50)
			wk := randKey()
			return func(tx store.Txn) (string, error) {
				var b strings.Builder
				n := 0
				err := tx.Iterate(prefix, start, func(k, v []byte) error {
					fmt.Fprintf(&b, "%x=%s,", k, v)
					if n == writeAt {
						// Unseen by this iteration, seen by the next.
						if err := tx.Set(wk, []byte("during")); err != nil {
							return err
						}
					}
					if n++; n == stopAfter {
						return store.ErrStop
					}
					return nil
				})
				return b.String(), err
			}
		}
	}
	run := func(st store.Store, ops []op) []string {
		var out []string
		require.NoError(t, st.Update(func(tx store.Txn) error {
			for _, o := range ops {
				r, err := o(tx)
				if err != nil {
					return err
				}
				out = append(out, r)
			}
			return nil
		}))
		return out
	}
	for txn := range 8 {
		n := 50 + rng.IntN(200)
		if txn%4 == 0 {
			n = 2500 // past flushRows: the buffer is flushed mid-transaction
		}
		ops := make([]op, n)
		for i := range ops {
			ops[i] = randOp()
		}
		require.Equal(t, run(mem, ops), run(s, ops), "transaction %d", txn)
	}
	all := func(st store.Store) []string {
		var out []string
		require.NoError(t, st.View(func(tx store.Txn) error {
			return tx.Iterate(nil, nil, func(k, v []byte) error {
				out = append(out, fmt.Sprintf("%x=%s", k, v))
				return nil
			})
		}))
		return out
	}
	want := all(mem)
	require.Greater(t, len(want), firstPage+4*firstPage, "enough keys to cross pages")
	require.Equal(t, want, all(s))
}

// TestConflicts has two stores on one database, as two kernel nodes would,
// run transactions that no serial order explains, and requires one of each
// pair to fail with store.ErrConflict and leave nothing behind.
func TestConflicts(t *testing.T) {
	tests := []struct {
		name string
		// first and second run on different stores; second runs to its
		// end inside first, after first's reads.
		first, second func(tx store.Txn) error
		want          []string
	}{
		{
			name:   "lost update",
			first:  incr("n"),
			second: incr("n"),
			want:   []string{"a=0", "b=0", "n=1"},
		},
		{
			// Each reads what the other writes: snapshot isolation lets both
			// commit (write skew); serializable must not.
			name:   "write skew",
			first:  copyTo("a", "b"),
			second: copyTo("b", "a"),
			want:   []string{"a=1", "b=0", "n=0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s1, dsn := open(t, Options{})
			s2, err := Open(dsn, Options{})
			require.NoError(t, err)
			defer s2.Close()
			require.NoError(t, s1.Update(func(tx store.Txn) error {
				return errors.Join(tx.Set([]byte("a"), []byte("0")), tx.Set([]byte("b"), []byte("0")), tx.Set([]byte("n"), []byte("0")))
			}))
			err = s1.Update(func(tx store.Txn) error {
				if err := tc.first(tx); err != nil {
					return err
				}
				// Not nested on one store: another node commits meanwhile.
				return s2.Update(tc.second)
			})
			require.ErrorIs(t, err, store.ErrConflict)
			var pe *pgconn.PgError
			require.ErrorAs(t, err, &pe, "the database's error stays reachable")
			require.Equal(t, codeSerialization, pe.Code)
			var got []string
			require.NoError(t, s1.View(func(tx store.Txn) error {
				return tx.Iterate(nil, nil, func(k, v []byte) error {
					got = append(got, string(k)+"="+string(v))
					return nil
				})
			}))
			require.Equal(t, tc.want, got, "the second committed, the first left nothing")
		})
	}
}

// incr adds 1 to the decimal counter under key.
func incr(key string) func(tx store.Txn) error {
	return func(tx store.Txn) error {
		v, err := tx.Get([]byte(key))
		if err != nil {
			return err
		}
		var n int
		if _, err := fmt.Sscan(string(v), &n); err != nil {
			return err
		}
		return tx.Set([]byte(key), fmt.Append(nil, n+1))
	}
}

// copyTo writes to to 1 if from is 0.
func copyTo(from, to string) func(tx store.Txn) error {
	return func(tx store.Txn) error {
		v, err := tx.Get([]byte(from))
		if err != nil || string(v) != "0" {
			return err
		}
		return tx.Set([]byte(to), []byte("1"))
	}
}

// TestMapErr checks the SQLSTATEs mapped to the store's errors, deadlocks
// included (which buffered writes, sent in key order, make hard to cause).
func TestMapErr(t *testing.T) {
	tests := []struct {
		code string
		want error
	}{
		{codeSerialization, store.ErrConflict},
		{codeDeadlock, store.ErrConflict},
		{codeLimit, store.ErrInvalidKey},
		{"23505", nil},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			pe := &pgconn.PgError{Code: tc.code}
			err := mapErr(fmt.Errorf("exec: %w", pe))
			var got *pgconn.PgError
			require.ErrorAs(t, err, &got)
			for _, e := range []error{store.ErrConflict, store.ErrInvalidKey} {
				require.Equal(t, e == tc.want, errors.Is(err, e), "%v", e)
			}
		})
	}
}

// TestFailedTxnCannotCommit is a closure that ignores a failed write (a
// statement the database refuses, sent when the write buffer fills) and
// returns nil: the Update must fail with the write's error and commit
// nothing, neither the writes sent before the failure nor those after.
func TestFailedTxnCannotCommit(t *testing.T) {
	s, _ := open(t, Options{})
	var setErrs []error
	err := s.Update(func(tx store.Txn) error {
		require.NoError(t, tx.Set([]byte("first"), []byte("x")))
		failNextSend.Store(true) // the buffer's first flush fails in PostgreSQL
		for i := range flushRows + 10 {
			if err := tx.Set(fmt.Appendf(nil, "k/%05d", i), []byte("v")); err != nil {
				setErrs = append(setErrs, err)
			}
		}
		_, err := tx.Get([]byte("k/00001"))
		setErrs = append(setErrs, err)
		return nil // ignores every error
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "division by zero", "the database's own error")
	require.NotEmpty(t, setErrs)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	for _, e := range setErrs {
		var got *pgconn.PgError
		require.ErrorAs(t, e, &got, "every call after the failure reports it")
		require.Same(t, pgErr, got, "the same failure")
	}
	require.Empty(t, keys(t, s, nil, nil))
}

// TestLongestKeyIndexes: a key of store.MaxKeySize random bytes (which
// PostgreSQL cannot compress) fits PostgreSQL's index and commits; one
// byte more is refused before anything is sent.
func TestLongestKeyIndexes(t *testing.T) {
	s, _ := open(t, Options{})
	long := make([]byte, store.MaxKeySize)
	_, _ = rand.Read(long)
	long[0] = 'L'
	require.NoError(t, s.Update(func(tx store.Txn) error { return tx.Set(long, []byte("x")) }))
	require.Equal(t, [][]byte{long}, keys(t, s, nil, nil))
	err := s.Update(func(tx store.Txn) error { return tx.Set(append(long, 'x'), nil) })
	require.ErrorIs(t, err, store.ErrInvalidKey)
	require.Equal(t, [][]byte{long}, keys(t, s, nil, nil))
}

// TestLargeValues stores values around the inline limit of a page and one
// as large as the kernel's largest module (8 MiB), and reads them back with
// Get and Iterate.
func TestLargeValues(t *testing.T) {
	s, _ := open(t, Options{})
	sizes := map[string]int{"a/empty": 0, "a/inline": inlineMax, "a/over": inlineMax + 1, "a/module": 8 << 20, "a/small": 3}
	vals := map[string][]byte{}
	for k, n := range sizes {
		v := make([]byte, n)
		_, _ = rand.Read(v)
		vals[k] = v
	}
	require.NoError(t, s.Update(func(tx store.Txn) error {
		for k, v := range vals {
			if err := tx.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	}))
	got := map[string][]byte{}
	require.NoError(t, s.View(func(tx store.Txn) error {
		for k, v := range vals {
			g, err := tx.Get([]byte(k))
			require.NoError(t, err)
			require.True(t, bytes.Equal(v, g), k)
			require.NotNil(t, g)
		}
		return tx.Iterate([]byte("a/"), nil, func(k, v []byte) error {
			got[string(k)] = bytes.Clone(v)
			return nil
		})
	}))
	require.Len(t, got, len(vals))
	for k, v := range vals {
		require.True(t, bytes.Equal(v, got[k]), k)
	}
}

// TestTxnTooBig requires a write past MaxTxnBytes to be refused with
// store.ErrTxnTooBig and not applied, while the writes before it commit.
func TestTxnTooBig(t *testing.T) {
	s, _ := open(t, Options{MaxTxnBytes: 100})
	require.NoError(t, s.Update(func(tx store.Txn) error {
		require.NoError(t, tx.Set([]byte("a"), bytes.Repeat([]byte("x"), 90)))
		require.ErrorIs(t, tx.Set([]byte("b"), bytes.Repeat([]byte("x"), 10)), store.ErrTxnTooBig)
		require.ErrorIs(t, tx.Delete([]byte("a/long-key")), store.ErrTxnTooBig)
		require.NoError(t, tx.Delete([]byte("c")))
		_, err := tx.Get([]byte("b"))
		require.ErrorIs(t, err, store.ErrNotFound)
		return nil
	}))
	require.Equal(t, [][]byte{[]byte("a")}, keys(t, s, nil, nil))
}

// TestViewSnapshotBeforeFn requires a View's snapshot to be taken before
// its closure runs: a commit that completes after the View began and
// before its first read is not seen (PostgreSQL would take the snapshot at
// the first read).
func TestViewSnapshotBeforeFn(t *testing.T) {
	for _, serializable := range []bool{false, true} {
		t.Run(fmt.Sprintf("serializable=%v", serializable), func(t *testing.T) {
			s, dsn := open(t, Options{SerializableViews: serializable})
			other, err := Open(dsn, Options{})
			require.NoError(t, err)
			defer other.Close()
			require.NoError(t, s.View(func(tx store.Txn) error {
				// Another node commits after the View began, before its first read.
				require.NoError(t, other.Update(func(tx store.Txn) error { return tx.Set([]byte("k"), []byte("v")) }))
				_, err := tx.Get([]byte("k"))
				require.ErrorIs(t, err, store.ErrNotFound)
				require.Empty(t, collectAll(t, tx))
				return nil
			}))
			require.Len(t, keys(t, s, nil, nil), 1)
		})
	}
}

func collectAll(t *testing.T, tx store.Txn) []string {
	t.Helper()
	var out []string
	require.NoError(t, tx.Iterate(nil, nil, func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	}))
	return out
}

// TestSchema checks the schema's life: created at the first Open, left as
// it is by later ones, created once by concurrent first Opens, and a newer
// version refused.
func TestSchema(t *testing.T) {
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(dsn, Options{})
			if err == nil {
				err = errors.Join(s.Update(func(tx store.Txn) error {
					return tx.Set(fmt.Appendf(nil, "node/%d", i), nil)
				}), s.Close())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s, err := Open(dsn, Options{})
	require.NoError(t, err)
	require.Len(t, keys(t, s, []byte("node/"), nil), len(errs), "no Open dropped another's table")
	require.NoError(t, s.Close())

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var rows, version int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*), max(version) FROM "+schemaTable).Scan(&rows, &version))
	require.Equal(t, 1, rows)
	require.Equal(t, SchemaVersion, version)

	_, err = conn.Exec(ctx, "UPDATE "+schemaTable+" SET version = $1", SchemaVersion+1)
	require.NoError(t, err)
	_, err = Open(dsn, Options{})
	require.ErrorIs(t, err, ErrSchemaTooNew)
}

// TestOpenOptions checks that options the pool cannot have are refused and
// that the DSN's pool settings hold where Options leaves them zero.
func TestOpenOptions(t *testing.T) {
	dsn := pgtest.Start(t)
	for _, opts := range []Options{{MaxConns: -1}, {Timeout: -1}, {MaxTxnBytes: -1}, {MaxConns: 2, MinConns: 3}} {
		_, err := Open(dsn, opts)
		require.Error(t, err, "%+v", opts)
	}
	_, err := Open("postgres://%zz", Options{})
	require.Error(t, err)
	s, err := Open(dsn+"&pool_max_conns=3", Options{})
	require.NoError(t, err)
	require.EqualValues(t, 3, s.(*pgStore).pool.Config().MaxConns)
	require.NoError(t, s.Close())
	s, err = Open(dsn+"&pool_max_conns=3", Options{MaxConns: 5})
	require.NoError(t, err)
	require.EqualValues(t, 5, s.(*pgStore).pool.Config().MaxConns)
	require.NoError(t, s.Close())
}

// TestChunk checks the sizes of batched statements: powers of two, within
// the row and byte bounds, covering every write.
func TestChunk(t *testing.T) {
	for _, n := range []int{1, 2, 3, 255, 256, 257, 1000} {
		ws := make([]write, n)
		total := 0
		for len(ws) > 0 {
			c := chunk(ws)
			require.Positive(t, c)
			require.LessOrEqual(t, c, maxChunkRows)
			require.Zero(t, c&(c-1), "a power of two")
			require.NotEmpty(t, writeSQL(true, c))
			require.NotEmpty(t, writeSQL(false, c))
			ws = ws[c:]
			total += c
		}
		require.Equal(t, n, total)
	}
	big := []write{{val: make([]byte, maxChunkBytes/2+1)}, {val: make([]byte, maxChunkBytes/2+1)}}
	require.Equal(t, 1, chunk(big))
}

// TestBounds checks the range an iteration covers.
func TestBounds(t *testing.T) {
	tests := []struct {
		prefix, start, lo, hi []byte
	}{
		{nil, nil, []byte{}, nil},
		{[]byte("a/"), nil, []byte("a/"), []byte("a0")},
		{[]byte("a/"), []byte("0"), []byte("a/"), []byte("a0")},
		{[]byte("a/"), []byte("a/x"), []byte("a/x"), []byte("a0")},
		{nil, []byte("b"), []byte("b"), nil},
		{[]byte{'a', 0xff}, nil, []byte{'a', 0xff}, []byte("b")},
		{[]byte{0xff, 0xff}, nil, []byte{0xff, 0xff}, nil},
	}
	for _, tc := range tests {
		lo, hi := bounds(tc.prefix, tc.start)
		require.Equal(t, tc.lo, lo, "%q %q", tc.prefix, tc.start)
		require.Equal(t, tc.hi, hi, "%q %q", tc.prefix, tc.start)
	}
}

// FuzzPrefixEnd checks that [prefix, prefixEnd(prefix)) holds exactly the
// keys that start with prefix, and that successor(k) is the next key.
func FuzzPrefixEnd(f *testing.F) {
	for _, seed := range [][2][]byte{
		{nil, []byte("a")}, {[]byte("a"), []byte("a")}, {[]byte{0xff}, []byte{0xff, 0x00}},
		{[]byte{'a', 0xff}, []byte("b")}, {[]byte{0xff, 0xff}, []byte{0xff}}, {[]byte{0x00}, []byte{}},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, prefix, key []byte) {
		end := prefixEnd(prefix)
		if got, want := inRange(key, prefix, end), bytes.HasPrefix(key, prefix); got != want {
			t.Fatalf("prefix %x end %x key %x: in range %v, has prefix %v", prefix, end, key, got, want)
		}
		if end != nil && bytes.Compare(end, prefix) <= 0 {
			t.Fatalf("prefixEnd(%x) = %x, not after the prefix", prefix, end)
		}
		next := successor(key)
		if bytes.Compare(next, key) <= 0 {
			t.Fatalf("successor(%x) = %x", key, next)
		}
		// Nothing lies between key and its successor.
		keys := [][]byte{key, next, prefix, append(slices.Clone(key), 0, 0)}
		sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
		for _, k := range keys {
			if bytes.Compare(k, key) > 0 && bytes.Compare(k, next) < 0 {
				t.Fatalf("%x lies between %x and its successor %x", k, key, next)
			}
		}
	})
}

// TestGetForUpdate: a key taken with GetForUpdate makes a second store's
// GetForUpdate of it wait until the first transaction ends, and fail with
// ErrConflict when the first changed it, before the second did any work;
// after a rollback the second gets the key. A View cannot lock.
func TestGetForUpdate(t *testing.T) {
	s1, dsn := open(t, Options{})
	s2, err := Open(dsn, Options{})
	require.NoError(t, err)
	defer s2.Close()
	key := []byte("l/seq")
	require.NoError(t, s1.Update(func(tx store.Txn) error { return tx.Set(key, []byte("1")) }))

	for _, commit := range []bool{true, false} {
		locked := make(chan struct{})
		second := make(chan error, 1)
		err := s1.Update(func(tx store.Txn) error {
			v, err := tx.(store.Locker).GetForUpdate(key)
			require.NoError(t, err)
			go func() {
				<-locked
				second <- s2.Update(func(tx2 store.Txn) error {
					_, err := tx2.(store.Locker).GetForUpdate(key)
					return err
				})
			}()
			close(locked)
			select {
			case err := <-second:
				t.Fatalf("the second lock did not wait: %v", err)
			case <-time.After(100 * time.Millisecond): // it waits: a condition, not a bound
			}
			if !commit {
				return errors.New("roll back")
			}
			return tx.Set(key, append(v, '1'))
		})
		if commit {
			require.NoError(t, err)
			require.ErrorIs(t, <-second, store.ErrConflict, "the key changed while it waited")
		} else {
			require.Error(t, err)
			require.NoError(t, <-second, "nothing changed: the second takes the key")
		}
	}
	require.ErrorIs(t, s1.View(func(tx store.Txn) error {
		_, err := tx.(store.Locker).GetForUpdate(key)
		return err
	}), store.ErrReadOnly)
}
