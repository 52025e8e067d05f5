package kernel

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Group commit. Every write of the kernel goes through one committer
// goroutine, which runs the attempts waiting for it one after another, each
// on its own overlay over one store transaction, and commits them together:
// one transaction and one fsync for the whole batch. An attempt that fails
// drops its overlay and leaves the others alone. Nobody is answered before
// the batch is durable.
//
// Because the committer is the only writer, actions never conflict with
// each other: actions on the same principal are ordered, not failed (a
// store shared with another writer can still conflict; the whole batch then
// fails with store.ErrConflict and each action retries). Batching happens by
// itself: while one batch commits, the next one queues.
//
// Reads commit nothing (Do runs them on a snapshot). Their audit events are
// queued here and written with the next batch; a crash can lose the events
// of reads not yet flushed (CommitStats.EventsPending), never an
// acknowledged write.
//
// Audit events are numbered here, as the batch runs: the batch reads the
// last number (l/seq) from its own transaction, numbers the queued read
// events and then each attempt's events in the order the attempts run,
// takes back the numbers of an attempt that failed, and writes the new last
// number with the batch. Numbers are therefore gapless and in commit
// order, and a snapshot holds every event up to the l/seq it shows: a
// reader continuing from the last number it saw never misses one. Several
// kernels on one store (PostgreSQL) share the order through l/seq: two
// batches that overlap conflict on it, and one of them runs again. That is
// one key every batch writes, not every action: its cost is measured in
// the README ("Kernel on PostgreSQL").
type committer struct {
	st store.Store
	// num is the next event number of the batch being run; only the
	// loop's goroutine touches it.
	num uint64
	// flush, when set, writes in-memory state that must reach the store
	// with the next batch (the kernel's rate windows), at the end of the
	// batch's transaction; committed tells it afterwards whether that
	// commit happened.
	flush     func(tx store.Txn) error
	committed func(ok bool)
	// record: the kernel records its inputs (record.go); rnum is the next
	// record number of the batch being run, from l/rseq.
	record bool
	rnum   uint64
	// shared: other kernels write the store too. A batch then locks l/seq
	// first when the store can (store.Locker), and a batch that failed on
	// the lock, before any attempt ran, runs again at once.
	shared bool
	// deferred is st's split commit and sync, when it has one: batch n+1
	// then runs while batch n is being synced (syncLoop), and each batch
	// is answered once a sync after it returned.
	deferred store.DeferredSync
	synced   chan *syncBatch // committed batches waiting for a sync
	syncDone chan struct{}   // closed when syncLoop has answered all
	jobs     chan *commitJob
	wake     chan struct{} // a read event was queued
	stop     chan struct{}
	done     chan struct{} // closed when the loop has flushed and returned

	mu     sync.Mutex
	events []queuedEvent // read events awaiting a batch
	// eventsRoom is signalled, with mu held, when a flush empties events.
	eventsRoom sync.Cond

	batches, actions, queued, flushed, lockRetries atomic.Uint64
}

// commitJob is one attempt waiting for the committer.
type commitJob struct {
	body  func(store.Txn) error
	first bool // put at the head of its batch (it was too big to share one)
	err   error
	done  chan struct{}
	ov    overlay
}

// syncBatch is a committed batch waiting to be durable.
type syncBatch struct {
	jobs   []*commitJob
	events int // read events it wrote
}

// queuedEvent is a read's audit event, encoded with sequence number 0: the
// batch that writes it numbers it (setEventSeq).
type queuedEvent struct {
	val []byte
}

const (
	// maxBatchJobs bounds the attempts in one batch.
	maxBatchJobs = 512
	// maxBatchBytes bounds the bytes an attempt may add to a batch that
	// already holds others: Badger refuses a transaction past ~15% of its
	// memtable (64 MiB by default). An attempt alone in its batch may be
	// bigger (a module up to MaxModuleBytes).
	maxBatchBytes = 4 << 20
	// maxBatchEvents bounds the read events one batch writes.
	maxBatchEvents = 8192
	// maxPendingEvents bounds the read events waiting: a reader waits for
	// room past it, so a crash loses at most this many.
	maxPendingEvents = 4 * maxBatchEvents
)

// maxLockRetries bounds the times a batch that lost the race for l/seq
// runs again by itself.
const maxLockRetries = 64

// errBatchFull tells an attempt that its writes did not fit in the batch
// it ran in: it runs again, at the head of the next batch.
var errBatchFull = errors.New("kernel: batch full")

var jobPool = sync.Pool{New: func() any { return &commitJob{done: make(chan struct{}, 1)} }}

func newCommitter(st store.Store) *committer {
	c := &committer{st: st, jobs: make(chan *commitJob, maxBatchJobs), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	c.eventsRoom.L = &c.mu
	if d, ok := st.(store.DeferredSync); ok {
		c.deferred = d
		c.synced, c.syncDone = make(chan *syncBatch, 64), make(chan struct{})
	}
	return c
}

// start starts the loops, once the hooks are set.
func (c *committer) start() {
	if c.deferred != nil {
		go c.syncLoop()
	}
	go c.loop()
}

// submit runs body in the next batch and returns once the batch has
// committed: nil when body returned nil and its writes are durable, body's
// error (its writes dropped), or the batch's commit error. It retries by
// itself an attempt that did not fit in a shared batch.
func (c *committer) submit(body func(store.Txn) error) error {
	j := jobPool.Get().(*commitJob)
	j.body, j.first = body, false
	for {
		c.jobs <- j
		<-j.done
		if j.err != errBatchFull {
			break
		}
		j.first = true
	}
	err := j.err
	j.body, j.err = nil, nil
	j.ov.reset(nil)
	jobPool.Put(j)
	return err
}

// queueEvent queues a read's audit event, already encoded, for the next
// batch, which numbers it. It waits while maxPendingEvents are queued.
func (c *committer) queueEvent(val []byte) {
	c.mu.Lock()
	for len(c.events) >= maxPendingEvents {
		c.eventsRoom.Wait()
	}
	c.events = append(c.events, queuedEvent{val: val})
	c.queued.Add(1)
	c.mu.Unlock()
	c.poke()
}

// poke makes the loop run a batch soon even if no action is waiting: read
// events or rate usage are waiting to be written.
func (c *committer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sync returns once every read event queued before it was called is
// durable, so that a reader of the audit log sees the events of the reads
// it has been answered for.
func (c *committer) sync() error {
	target := c.queued.Load()
	for c.flushed.Load() < target {
		if err := c.submit(func(store.Txn) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

// close flushes the queued events and stops the loop. The kernel calls it
// once no action is in flight.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	if c.deferred != nil {
		defer func() {
			close(c.synced)
			<-c.syncDone
		}()
	}
	batch := make([]*commitJob, 0, maxBatchJobs)
	for {
		batch = batch[:0]
		select {
		case j := <-c.jobs:
			batch = append(batch, j)
		case <-c.wake:
		case <-c.stop:
			// One last batch writes what waits outside any action (rate
			// usage); then the queued read events.
			if err := c.commit(nil); err != nil {
				return
			}
			for c.pendingEvents() > 0 {
				if err := c.commit(nil); err != nil {
					return // the store is gone: the events are lost, as on a crash
				}
			}
			return
		}
	drain:
		for len(batch) < maxBatchJobs {
			select {
			case j := <-c.jobs:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		_ = c.commit(batch)
	}
}

func (c *committer) pendingEvents() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// commit runs batch and the queued read events in one transaction and
// answers every job. It returns the transaction's error.
func (c *committer) commit(batch []*commitJob) error {
	// An attempt that was too big for a shared batch goes first.
	for i, j := range batch {
		if j.first && i > 0 {
			batch[0], batch[i] = batch[i], batch[0]
			break
		}
	}
	c.mu.Lock()
	n := min(len(c.events), maxBatchEvents)
	events := c.events[:n:n]
	c.mu.Unlock()

	update := c.st.Update
	if c.deferred != nil {
		update = c.deferred.UpdateDeferred
	}
	size := 0
	var ran bool // an attempt's body ran in this transaction
	body := func(tx store.Txn) error {
		ran = false
		var last uint64
		var err error
		if l, ok := tx.(store.Locker); ok && c.shared {
			var b []byte
			b, err = l.GetForUpdate(keySeq)
			switch {
			case errors.Is(err, store.ErrNotFound):
				err = nil
			case err == nil:
				last, err = decodeU64(b)
			}
		} else {
			last, err = readCounter(tx, keySeq)
		}
		if err != nil {
			return err
		}
		c.num = last + 1
		var rlast uint64
		if c.record {
			if rlast, err = readCounter(tx, keyRecordSeq); err != nil {
				return err
			}
			c.rnum = rlast + 1
		}
		for _, e := range events {
			setEventSeq(e.val, c.num)
			if err := tx.Set(eventKey(c.num), e.val); err != nil {
				return err
			}
			c.num++
		}
		size = 0
		for i, j := range batch {
			ran = true
			j.ov.reset(tx)
			j.ov.num = &c.num
			if c.record {
				j.ov.rnum = &c.rnum
			}
			first, rfirst := c.num, c.rnum
			j.err = runBody(j.body, &j.ov)
			if j.err == nil && i > 0 && size+j.ov.bytes > maxBatchBytes {
				j.err = errBatchFull
			}
			if j.err != nil {
				c.num, c.rnum = first, rfirst // its numbers go to the next attempt
				continue
			}
			size += j.ov.bytes
			if err := j.ov.flush(tx); err != nil {
				return err
			}
		}
		// Last, so that it includes the usage the batch's own actions
		// charged.
		if c.flush != nil {
			if err := c.flush(tx); err != nil {
				return err
			}
		}
		if c.record && c.rnum != rlast+1 {
			if err := tx.Set(keyRecordSeq, encodeU64(c.rnum-1)); err != nil {
				return err
			}
		}
		if c.num != last+1 {
			return tx.Set(keySeq, encodeU64(c.num-1))
		}
		return nil
	}
	err := update(body)
	// Another node committed while this batch waited for l/seq: nothing
	// ran yet, so run the batch again at once rather than fail every
	// attempt in it back to Do's retry and backoff.
	for retry := 0; err != nil && c.shared && !ran && errors.Is(err, store.ErrConflict) && retry < maxLockRetries; retry++ {
		c.lockRetries.Add(1)
		err = update(body)
	}
	if c.committed != nil {
		c.committed(err == nil)
	}
	if err == nil && n > 0 {
		c.mu.Lock()
		c.events = append(c.events[:0], c.events[n:]...)
		c.eventsRoom.Broadcast()
		c.mu.Unlock()
	}
	for _, j := range batch {
		if err != nil && j.err == nil {
			j.err = err
			if errors.Is(err, store.ErrTxnTooBig) && len(batch) > 1 {
				j.err = errBatchFull // alone in a batch of its own, it may fit
			}
		}
	}
	if err == nil && c.deferred != nil {
		c.synced <- &syncBatch{jobs: slices.Clone(batch), events: n}
		return nil
	}
	if err != nil {
		n = 0
	}
	c.finish(batch, n, err == nil)
	return err
}

// runBody runs one attempt's body on its overlay. A panic in it (a bug,
// in the kernel or in an Evaluator) fails that attempt with INTERNAL and
// drops its overlay instead of taking down the committer, and with it
// every other action of the process.
func runBody(body func(store.Txn) error, ov *overlay) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Code: abi.Internal, Msg: "internal error", Err: fmt.Errorf("kernel: panic in a committed action: %v\n%s", r, debug.Stack())}
		}
	}()
	return body(ov)
}

// syncLoop makes committed batches durable, one sync for all the batches
// committed meanwhile, and answers them.
func (c *committer) syncLoop() {
	defer close(c.syncDone)
	var pending []*syncBatch
	for sb := range c.synced {
		pending = append(pending[:0], sb)
	drain:
		for {
			select {
			case sb, ok := <-c.synced:
				if !ok {
					break drain
				}
				pending = append(pending, sb)
			default:
				break drain
			}
		}
		err := c.deferred.Sync()
		for _, sb := range pending {
			for _, j := range sb.jobs {
				if err != nil && j.err == nil {
					j.err = err // committed but maybe not durable: the store is failing
				}
			}
			c.finish(sb.jobs, sb.events, true)
		}
	}
}

// finish answers the jobs of a batch and counts the read events it wrote;
// committed tells whether the batch's transaction committed.
func (c *committer) finish(jobs []*commitJob, events int, committed bool) {
	c.flushed.Add(uint64(events))
	n := 0
	for _, j := range jobs {
		if j.err == nil {
			n++
		}
		j.done <- struct{}{}
	}
	if committed {
		c.batches.Add(1)
		c.actions.Add(uint64(n))
	}
}

// CommitStats counts the committer's work since the kernel opened.
type CommitStats struct {
	// Batches is the number of store transactions committed for actions
	// and read events; Actions the attempts they committed.
	Batches, Actions uint64
	// EventsFlushed counts read audit events written; EventsPending those
	// queued, which a crash would lose.
	EventsFlushed, EventsPending uint64
	// LockRetries counts batches that ran again because another kernel on
	// the store committed while they waited for the event counter.
	LockRetries uint64
}

// CommitStats returns the group commit's counters, for metrics.
func (k *Kernel) CommitStats() CommitStats {
	c := k.com
	return CommitStats{Batches: c.batches.Load(), Actions: c.actions.Load(),
		EventsFlushed: c.flushed.Load(), EventsPending: uint64(c.pendingEvents()), LockRetries: c.lockRetries.Load()}
}
