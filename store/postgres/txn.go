package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kernelhost/kernelhost/store"
)

// Statements. Each is one text per shape, so that pgx prepares it once per
// connection and reuses it; the batched writes come in a few fixed sizes
// (writeSQL) for the same reason.
const (
	sqlGet          = "SELECT v FROM " + kvTable + " WHERE k = $1"
	sqlGetForUpdate = sqlGet + " FOR UPDATE"
	// A page of a range read. Values over inlineMax are left out (NULL, and
	// the third column true) and read one by one: a page holds at most
	// maxPage × inlineMax bytes of values, however large the values.
	sqlPageCols = "SELECT k, CASE WHEN octet_length(v) <= " + inlineMaxText + " THEN v END, octet_length(v) > " +
		inlineMaxText + " FROM " + kvTable
	sqlPage        = sqlPageCols + " WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"
	sqlPageNoUpper = sqlPageCols + " WHERE k >= $1 ORDER BY k LIMIT $2"
	sqlSnapshot    = "SELECT 1"
)

// Sizes of range reads and batched writes.
const (
	inlineMax     = 16 << 10
	inlineMaxText = "16384" // inlineMax in the SQL text
	// firstPage rows are asked for first: many iterations stop after a few
	// keys. Each later page is twice the last, up to maxPage.
	firstPage = 64
	maxPage   = 512
	// flushRows and flushBytes bound the writes buffered in a Txn: past
	// either, they are sent (between iterations) before the commit.
	flushRows  = 1024
	flushBytes = 8 << 20
	// maxChunkRows and maxChunkBytes bound one INSERT or DELETE statement.
	// Chunks have power-of-two sizes: at most 2×9 statement texts.
	maxChunkRows  = 256
	maxChunkBytes = 32 << 20
)

// txn is a Txn over one connection of the pool. It is used by one goroutine.
//
// Writes are buffered in pending (sorted by key) and sent in one batch of
// multi-row statements: when the buffer grows past flushRows or flushBytes,
// and with the COMMIT. Get looks in the buffer first; Iterate merges it
// with the database's rows. The database does not change while an
// iteration runs (nothing is sent then), so fn's writes stay unseen by it.
type txn struct {
	s      *pgStore
	conn   *pgxpool.Conn // acquired at the first statement
	update bool
	done   bool
	begun  bool  // BEGIN was sent
	err    error // the first statement error: the database transaction is aborted

	pending      []write // sorted by key; one entry per key
	pendingBytes int
	written      int // bytes of every Set and Delete, for MaxTxnBytes
	iterating    int // Iterate calls running (nested ones included)
}

// write is a buffered Set or Delete.
type write struct {
	key string
	val []byte // kept, not copied: the caller leaves it alone until Update returns
	del bool
}

func (t *txn) check(key []byte, write bool) error {
	switch {
	case t.done:
		return store.ErrTxnDone
	case write && !t.update:
		return store.ErrReadOnly
	case t.err != nil:
		return t.err
	}
	return store.CheckKey(key)
}

// find returns where key is or would be in pending.
func (t *txn) find(key []byte) (int, bool) {
	return slices.BinarySearchFunc(t.pending, key, func(w write, k []byte) int {
		return strings.Compare(w.key, string(k))
	})
}

func (t *txn) Get(key []byte) ([]byte, error) {
	if err := t.check(key, false); err != nil {
		return nil, err
	}
	if i, ok := t.find(key); ok {
		if t.pending[i].del {
			return nil, store.ErrNotFound
		}
		return append([]byte{}, t.pending[i].val...), nil
	}
	return t.getDB(key)
}

// GetForUpdate is Get that locks key's row until the transaction ends
// (store.Locker). A key written in this transaction is not locked again:
// its row is locked when the write is sent.
func (t *txn) GetForUpdate(key []byte) ([]byte, error) {
	if err := t.check(key, false); err != nil {
		return nil, err
	}
	if !t.update {
		return nil, fmt.Errorf("get for update: %w", store.ErrReadOnly)
	}
	if i, ok := t.find(key); ok {
		if t.pending[i].del {
			return nil, store.ErrNotFound
		}
		return append([]byte{}, t.pending[i].val...), nil
	}
	return t.query(sqlGetForUpdate, key)
}

// getDB reads key from the database.
func (t *txn) getDB(key []byte) ([]byte, error) { return t.query(sqlGet, key) }

// query runs sql, a one-key read, for key.
func (t *txn) query(sql string, key []byte) ([]byte, error) {
	var v []byte
	found := true
	err := t.send(func(b *pgx.Batch) { b.Queue(sql, key) }, func(br pgx.BatchResults) error {
		err := br.QueryRow().Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get: %w", err)
	case !found:
		return nil, store.ErrNotFound
	case v == nil:
		v = []byte{}
	}
	return v, nil
}

func (t *txn) Set(key, value []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // NULL is not a value: v is NOT NULL
	}
	return t.put(key, value, false)
}

func (t *txn) Delete(key []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	return t.put(key, nil, true)
}

// put buffers a write, flushing the buffer when it is full and no
// iteration runs.
func (t *txn) put(key, val []byte, del bool) error {
	n := len(key) + len(val)
	if t.written+n > t.s.maxTxnBytes {
		return fmt.Errorf("%w: %d bytes written, %d more would pass %d", store.ErrTxnTooBig, t.written, n, t.s.maxTxnBytes)
	}
	t.written += n
	if i, ok := t.find(key); ok {
		w := &t.pending[i]
		t.pendingBytes += len(val) - len(w.val)
		w.val, w.del = val, del
	} else {
		t.pending = slices.Insert(t.pending, i, write{key: string(key), val: val, del: del})
		t.pendingBytes += n
	}
	if t.iterating == 0 && (len(t.pending) >= flushRows || t.pendingBytes >= flushBytes) {
		if err := t.flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// flush sends the buffered writes.
func (t *txn) flush() error {
	if len(t.pending) == 0 {
		return nil
	}
	var n int
	err := t.send(func(b *pgx.Batch) { n = t.queueWrites(b) }, func(br pgx.BatchResults) error {
		return execN(br, n)
	})
	if err != nil {
		return err
	}
	t.pending, t.pendingBytes = t.pending[:0], 0
	return nil
}

// commit sends the buffered writes and COMMIT in one round trip (with
// BEGIN, if nothing was sent yet). An Update that sent nothing and wrote
// nothing has nothing to commit.
func (t *txn) commit() error {
	if t.err != nil {
		return t.err
	}
	if !t.begun && len(t.pending) == 0 {
		return nil
	}
	var n int
	return t.send(func(b *pgx.Batch) {
		n = t.queueWrites(b)
		b.Queue("COMMIT")
	}, func(br pgx.BatchResults) error {
		if err := execN(br, n); err != nil {
			return err
		}
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" { // ROLLBACK: the transaction had failed
			return fmt.Errorf("postgres: COMMIT answered %q", tag.String())
		}
		return nil
	})
}

// execN reads the results of n statements.
func execN(br pgx.BatchResults, n int) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}

// queueWrites queues the buffered writes as multi-row upserts and deletes
// (portable SQL: INSERT ... ON CONFLICT, DELETE ... IN) and returns how
// many statements it queued. Keys go in ascending order, so concurrent
// transactions lock rows in one order and deadlock less.
func (t *txn) queueWrites(b *pgx.Batch) int {
	var sets, dels []write
	for _, w := range t.pending {
		if w.del {
			dels = append(dels, w)
		} else {
			sets = append(sets, w)
		}
	}
	n := 0
	for len(sets) > 0 {
		c := chunk(sets)
		args := make([]any, 0, 2*c)
		for _, w := range sets[:c] {
			args = append(args, []byte(w.key), w.val)
		}
		b.Queue(writeSQL(true, c), args...)
		sets = sets[c:]
		n++
	}
	for len(dels) > 0 {
		c := chunk(dels)
		args := make([]any, 0, c)
		for _, w := range dels[:c] {
			args = append(args, []byte(w.key))
		}
		b.Queue(writeSQL(false, c), args...)
		dels = dels[c:]
		n++
	}
	return n
}

// chunk returns how many of ws the next statement takes: the largest power
// of two up to maxChunkRows whose rows fit in maxChunkBytes, at least one.
func chunk(ws []write) int {
	c := maxChunkRows
	for c > len(ws) {
		c /= 2
	}
	for c > 1 {
		size := 0
		for _, w := range ws[:c] {
			size += len(w.key) + len(w.val)
		}
		if size <= maxChunkBytes {
			break
		}
		c /= 2
	}
	return c
}

var (
	writeSQLOnce sync.Once
	upsertSQLs   map[int]string
	deleteSQLs   map[int]string
)

// writeSQL returns the upsert (set) or delete statement for n rows, n a
// power of two up to maxChunkRows.
func writeSQL(set bool, n int) string {
	writeSQLOnce.Do(func() {
		upsertSQLs, deleteSQLs = map[int]string{}, map[int]string{}
		for n := 1; n <= maxChunkRows; n *= 2 {
			var up, del strings.Builder
			up.WriteString("INSERT INTO " + kvTable + " (k, v) VALUES ")
			del.WriteString("DELETE FROM " + kvTable + " WHERE k IN (")
			for i := range n {
				if i > 0 {
					up.WriteString(", ")
					del.WriteString(", ")
				}
				up.WriteString("($" + strconv.Itoa(2*i+1) + ", $" + strconv.Itoa(2*i+2) + ")")
				del.WriteString("$" + strconv.Itoa(i+1))
			}
			up.WriteString(" ON CONFLICT (k) DO UPDATE SET v = excluded.v")
			del.WriteString(")")
			upsertSQLs[n], deleteSQLs[n] = up.String(), del.String()
		}
	})
	if set {
		return upsertSQLs[n]
	}
	return deleteSQLs[n]
}

// row is one row of a page.
type row struct {
	key, val []byte
	big      bool // val was left out of the page: read it apart
}

func (t *txn) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	switch {
	case t.done:
		return store.ErrTxnDone
	case t.err != nil:
		return t.err
	}
	lo, hi := bounds(prefix, start)
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	// The buffered writes in range, as they are now: fn's later writes
	// replace entries of t.pending, not these.
	i, _ := t.find(lo)
	var mine []write
	for _, w := range t.pending[i:] {
		if hi != nil && w.key >= string(hi) {
			break
		}
		mine = append(mine, w)
	}
	t.iterating++
	defer func() { t.iterating-- }()

	var stopped error // fn's error, store.ErrStop included
	emit := func(k, v []byte) bool {
		if err := fn(k, v); err != nil {
			stopped = err
			return false
		}
		return true
	}
	limit := firstPage
	for page := 0; stopped == nil; page++ {
		if page > 0 {
			limit = min(2*limit, maxPage)
		}
		rows, err := t.page(lo, hi, limit)
		if err != nil {
			return fmt.Errorf("iterate: %w", err)
		}
		for _, r := range rows {
			for len(mine) > 0 && mine[0].key < string(r.key) {
				w := mine[0]
				mine = mine[1:]
				if !w.del && !emit([]byte(w.key), w.val) {
					break
				}
			}
			if stopped != nil {
				break
			}
			if len(mine) > 0 && mine[0].key == string(r.key) {
				w := mine[0]
				mine = mine[1:]
				if !w.del && !emit(r.key, w.val) {
					break
				}
				continue
			}
			v := r.val
			if r.big {
				if v, err = t.getDB(r.key); err != nil {
					return fmt.Errorf("iterate: %w", err)
				}
			}
			if !emit(r.key, v) {
				break
			}
		}
		if stopped != nil || len(rows) < limit {
			break
		}
		lo = successor(rows[len(rows)-1].key)
	}
	for _, w := range mine {
		if stopped != nil {
			break
		}
		if !w.del {
			emit([]byte(w.key), w.val)
		}
	}
	if stopped != nil && !errors.Is(stopped, store.ErrStop) {
		return stopped
	}
	return nil
}

// page reads up to limit rows of [lo, hi) in key order.
func (t *txn) page(lo, hi []byte, limit int) ([]row, error) {
	var rows []row
	err := t.send(func(b *pgx.Batch) {
		if hi == nil {
			b.Queue(sqlPageNoUpper, lo, limit)
		} else {
			b.Queue(sqlPage, lo, hi, limit)
		}
	}, func(br pgx.BatchResults) error {
		rs, err := br.Query()
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.key, &r.val, &r.big); err != nil {
				return err
			}
			if r.val == nil {
				r.val = []byte{}
			}
			rows = append(rows, r)
		}
		return rs.Err()
	})
	return rows, err
}

// snapshot begins a View's transaction and takes its snapshot.
func (t *txn) snapshot() error {
	return t.send(func(b *pgx.Batch) { b.Queue(sqlSnapshot) }, func(br pgx.BatchResults) error {
		_, err := br.Exec()
		return err
	})
}

// failNextSend makes the next send fail in the database (a division by
// zero ahead of its statements): a test hook, so that a test can fail a
// statement for real in the middle of a transaction.
var failNextSend atomic.Bool

// send runs the statements queue adds in one round trip, preceded by BEGIN
// when the transaction has not begun, and hands their results to read. A
// failure aborts the database transaction: it is kept in t.err and returned
// by every later call.
func (t *txn) send(queue func(*pgx.Batch), read func(pgx.BatchResults) error) error {
	if t.err != nil {
		return t.err
	}
	ctx, cancel := t.s.ctx()
	defer cancel()
	if t.conn == nil {
		conn, err := t.s.pool.Acquire(ctx)
		if err != nil {
			// Nothing began: the next call may try again.
			return fmt.Errorf("acquire connection: %w", err)
		}
		t.conn = conn
	}
	b := &pgx.Batch{}
	begin := !t.begun
	if begin {
		if t.update {
			b.Queue(beginUpdate)
		} else {
			b.Queue(t.s.beginView)
		}
	}
	broken := failNextSend.CompareAndSwap(true, false)
	if broken {
		b.Queue("SELECT 1/0")
	}
	queue(b)
	br := t.conn.SendBatch(ctx, b)
	err := func() error {
		if begin {
			if _, err := br.Exec(); err != nil {
				return err
			}
			t.begun = true
		}
		if broken {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return read(br)
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.err = mapErr(err)
		return t.err
	}
	return nil
}

// end marks t done, rolls back whatever did not commit and gives the
// connection back (the pool closes one it cannot tell is idle).
func (t *txn) end() {
	t.done = true
	if t.conn == nil {
		return
	}
	if c := t.conn.Conn(); !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
		ctx, cancel := t.s.ctx()
		_, _ = c.Exec(ctx, "ROLLBACK")
		cancel()
	}
	t.conn.Release()
	t.conn = nil
}
