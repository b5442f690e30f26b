package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit (SQLite). SQLite has one writer, and a commit costs more
// than most transactions' statements (BENCHMARKS.md: 255 µs of commits and
// 44 µs of BEGIN per order, against 465 µs of statements). So one goroutine
// owns the writer: it takes the write transactions waiting at that moment
// (never waiting for more to arrive), runs them back to back inside one
// SQLite transaction, each after the first in its own SAVEPOINT, and
// commits once. A member whose fn fails (or panics) is rolled back to its
// savepoint alone and gets its own error (a failing first member rolls the
// transaction back: nothing else is in it yet); if the COMMIT fails, every
// member gets that error. No caller is answered before the commit its work
// depends on.
//
// fn runs on the writer goroutine, on the batch's transaction: it reads its
// own writes, and those of the members before it in the batch, which is
// what running after them one at a time would have shown too.

// maxBatch bounds the members of one group commit: a member's answer waits
// for every member after it in its batch.
const maxBatch = 64

// errClosed answers writes after Close.
var errClosed = errors.New("sqlstore: database is closed")

// States of a write request.
const (
	reqWaiting int32 = iota
	reqStarted
	reqCancelled
)

// writeReq is one caller's write transaction.
type writeReq struct {
	ctx   context.Context
	fn    func(*Tx) error
	state atomic.Int32
	err   error      // fn's result, set by the writer
	done  chan error // buffered: the writer never blocks on a caller
}

func (r *writeReq) answer(err error) { r.done <- err }

// groupCommit is the writer goroutine of a SQLite database.
type groupCommit struct {
	w     *sql.DB
	cache *stmtCache
	reqs  chan *writeReq
	quit  chan struct{}
	done  chan struct{}
	// committed is told how many transactions each batch committed (the
	// checkpointer's nudge).
	committed func(n int)
	batch     []*writeReq
	once      sync.Once
	// batches counts the transactions the writer ended (tests); commits
	// those it committed (DB.Commits).
	batches, commits atomic.Int64
	// restart, shared with the checkpointer, asks the writer to restart
	// the WAL after its batch (restartWAL).
	restart *atomic.Bool
}

func newGroupCommit(w *sql.DB, cache *stmtCache, committed func(int), restart *atomic.Bool) *groupCommit {
	g := &groupCommit{w: w, cache: cache, reqs: make(chan *writeReq), quit: make(chan struct{}), done: make(chan struct{}),
		committed: committed, batch: make([]*writeReq, 0, maxBatch), restart: restart}
	go g.loop()
	return g
}

// do runs fn as a member of a group commit and returns its result once
// the batch is committed. fn runs at most once. A caller whose ctx ends
// before its fn starts gets ctx's error at once and fn never runs; one
// whose ctx ends while fn runs has its work undone and gets ctx's error.
func (g *groupCommit) do(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return errClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqWaiting, reqCancelled) {
			return ctx.Err() // the writer will pass it over
		}
		return <-r.done // started: its outcome is on its way
	}
}

// close stops the writer after the batch in progress; writes after it
// get errClosed.
func (g *groupCommit) close() {
	g.once.Do(func() { close(g.quit) })
	<-g.done
}

func (g *groupCommit) loop() {
	defer close(g.done)
	for {
		select {
		case r := <-g.reqs:
			g.run(r)
			if g.restart.CompareAndSwap(true, false) {
				g.restartWAL()
			}
		case <-g.quit:
			return
		}
	}
}

// run runs one batch, starting with first, then taking whatever else is
// waiting, up to maxBatch members.
func (g *groupCommit) run(first *writeReq) {
	ctx := context.Background() // the batch belongs to no caller
	batch := g.batch[:0]
	defer func() { clear(batch[:cap(batch)]) }() // let answered requests go
	if !first.state.CompareAndSwap(reqWaiting, reqStarted) {
		return // cancelled while it was being handed over
	}
	// A connection of its own, not just a transaction: a COMMIT that fails
	// may leave SQLite's transaction open, and it must be rolled back
	// before the connection goes back to the pool.
	conn, err := g.w.Conn(ctx)
	if err != nil {
		first.answer(fmt.Errorf("begin: %w", err))
		return
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		first.answer(fmt.Errorf("begin: %w", err))
		return
	}
	var broken error // the transaction's state is unknown: commit nothing
	for r := first; r != nil; r = g.next(len(batch)) {
		if r != first && !r.state.CompareAndSwap(reqWaiting, reqStarted) {
			continue
		}
		batch = append(batch, r)
		if r == first {
			// Nothing to protect yet: no savepoint (nor its journal) for a
			// writer that has the database to itself. If it fails, the
			// transaction holds its work alone: roll it all back.
			if r.err = g.fn(tx, r); r.err != nil {
				break
			}
			continue
		}
		if broken = g.member(ctx, tx, r); broken != nil {
			break
		}
	}
	switch {
	case first.err != nil: // nothing else ran
		_ = tx.Rollback()
	case broken != nil:
		_ = tx.Rollback()
		broken = fmt.Errorf("group commit: %w", broken)
	default:
		if err := tx.Commit(); err != nil {
			_, _ = conn.ExecContext(ctx, `ROLLBACK`) // "no transaction is active" when SQLite already did
			broken = fmt.Errorf("commit: %w", err)
		}
	}
	ok := 0
	for _, r := range batch {
		switch {
		case r.err != nil:
			r.answer(r.err) // its own failure, rolled back either way
		case broken != nil:
			r.answer(broken)
		default:
			ok++
			r.answer(nil)
		}
	}
	g.batches.Add(1)
	if first.err == nil && broken == nil {
		g.commits.Add(1)
	}
	if ok > 0 && g.committed != nil {
		g.committed(ok)
	}
}

// restartWAL has the WAL start over, from the writer's own connection,
// between batches. Under steady load some reader always holds a recent
// snapshot, so the writer never finds the WAL free to start over by itself
// and it grows without bound (724 MB for 20,000 orders was seen).
// wal_checkpoint(RESTART) waits for the readers of the moment and copies
// what PASSIVE has not yet, so that the next write starts at the file's
// beginning: the file stays about walRestartFrames long. Run here it costs
// the next batch 3–8 ms in its channel; run by the checkpointer, writers
// slept in their busy handler meanwhile (an open loop's p99 at 1,000
// orders/s went from 13–17 to 55–60 ms), and TRUNCATE, which also shrinks
// the file, took 30–40 ms.
//
// It waits for readers at most restartWait, not the connection's busy
// timeout: a long read (a report, a backup) must not stall every write;
// the checkpointer asks again after its next pass.
func (g *groupCommit) restartWAL() {
	ctx := context.Background()
	conn, err := g.w.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds())); err != nil {
		return
	}
	var busy, frames, copied int64
	_ = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
	_, _ = conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds()))
}

// restartWait bounds how long restartWAL waits for readers.
const restartWait = 50 * time.Millisecond

// next returns a request that is waiting now, or nil when none is or the
// batch is full. It never waits for one to arrive.
func (g *groupCommit) next(n int) *writeReq {
	if n >= maxBatch {
		return nil
	}
	select {
	case r := <-g.reqs:
		return r
	default:
		return nil
	}
}

// fn runs r's fn on the batch's transaction and returns its result: its
// error or panic, or its ctx's error if ctx ended while it ran (its work
// is then undone, as database/sql undoes a transaction whose context ends
// before its commit).
func (g *groupCommit) fn(tx *sql.Tx, r *writeReq) error {
	if err := call(r.fn, &Tx{Tx: tx, cache: g.cache, shared: true}); err != nil {
		return err
	}
	return r.ctx.Err()
}

// member runs r's fn inside a savepoint and leaves its result in r.err. It
// returns an error only when the batch's transaction can no longer be
// trusted (a savepoint statement failed).
func (g *groupCommit) member(ctx context.Context, tx *sql.Tx, r *writeReq) error {
	t := &Tx{Tx: tx, cache: g.cache, shared: true}
	if _, err := t.ExecContext(ctx, `SAVEPOINT member`); err != nil {
		r.err = fmt.Errorf("begin: %w", err)
		return err
	}
	if r.err = g.fn(tx, r); r.err != nil {
		if _, err := t.ExecContext(ctx, `ROLLBACK TO member`); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := t.ExecContext(ctx, `RELEASE member`); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// call runs fn, turning a panic into its error.
func call(fn func(*Tx) error, t *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write transaction panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(t)
}

// checkpointInterval is how often the checkpointer runs when the writer
// does not nudge it first.
const checkpointInterval = time.Second

// checkpointEvery is how many committed write transactions nudge the
// checkpointer before its interval ends, so that the WAL stays small under
// load.
const checkpointEvery = 2000

// checkpointer copies the WAL back into the database file from a reader
// connection (PRAGMA wal_checkpoint(PASSIVE): it waits for no one), so that
// the writer, whose automatic checkpoint is off, never pays for it.
type checkpointer struct {
	r *sql.DB
	// restart asks the writer to restart the WAL (groupCommit.restartWAL).
	restart *atomic.Bool
	nudge   chan struct{}
	pending atomic.Int64
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newCheckpointer(r *sql.DB, restart *atomic.Bool) *checkpointer {
	c := &checkpointer{r: r, restart: restart, nudge: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// committed counts n committed write transactions.
func (c *checkpointer) committed(n int) {
	if c.pending.Add(int64(n)) >= checkpointEvery {
		select {
		case c.nudge <- struct{}{}:
		default:
		}
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		case <-c.nudge:
		}
		c.pending.Store(0)
		// A failure (SQLITE_BUSY from a concurrent checkpoint) only means
		// the next one copies more.
		var busy, frames, copied int64
		_ = c.r.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
		if frames > walRestartFrames && copied == frames {
			c.restart.Store(true) // on the writer, between batches (restartWAL)
		}
	}
}

// walRestartFrames is the WAL length, in pages, beyond which the writer
// restarts the WAL once the checkpointer has copied it all back (64 MiB of
// 4 KiB pages).
const walRestartFrames = 16384

func (c *checkpointer) close() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}
