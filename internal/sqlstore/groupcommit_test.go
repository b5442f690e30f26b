package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"fulfill/internal/sqlstore/sqlstoretest/pgschema"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests drive db.tx directly, so they live inside the package; that
// rules out sqlstoretest (it imports sqlstore), hence openTest.

// testEngines lists the engines to run on: SQLite always, PostgreSQL when
// TEST_DATABASE_URL is set (where tx is one transaction per call, and must
// keep the same contract).
func testEngines(t *testing.T) []Engine {
	out := []Engine{SQLite}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		out = append(out, Postgres)
	}
	return out
}

// openTest opens a fresh database of engine e with a table gc (n, note).
func openTest(t *testing.T, e Engine, query string) *DB {
	t.Helper()
	ctx := context.Background()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "gc.db") + query
	if e == Postgres {
		dbURL = pgschema.New(t, os.Getenv("TEST_DATABASE_URL"), "gc")
	}
	db, err := Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.w.ExecContext(ctx, `CREATE TABLE gc (n BIGINT PRIMARY KEY, note TEXT NOT NULL)`)
	require.NoError(t, err)
	return db
}

func insertN(ctx context.Context, tx *Tx, n int) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO gc (n, note) VALUES ($1, $2)`, n, fmt.Sprint("member ", n))
	return err
}

// rowsOf returns the n of every committed row, read outside the writer.
func rowsOf(t *testing.T, db *DB) map[int]bool {
	t.Helper()
	rows, err := db.r.Query(`SELECT n FROM gc`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var n int
		require.NoError(t, rows.Scan(&n))
		out[n] = true
	}
	require.NoError(t, rows.Err())
	return out
}

// TestGroupCommit: 200 concurrent write transactions, every fifth failing
// after its insert: exactly the others commit, each caller gets its own
// answer, and no fn runs twice. On SQLite they share far fewer commits.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, e := range testEngines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := openTest(t, e, "")
			ctx := context.Background()
			const n = 200
			calls := make([]atomic.Int32, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = db.tx(ctx, func(tx *Tx) error {
						calls[i].Add(1)
						if err := insertN(ctx, tx, i); err != nil {
							return err
						}
						// Its own write is visible to it, uncommitted.
						var note string
						if err := tx.QueryRowContext(ctx, `SELECT note FROM gc WHERE n = $1`, i).Scan(&note); err != nil {
							return err
						}
						if note != fmt.Sprint("member ", i) {
							return fmt.Errorf("member %d read %q", i, note)
						}
						if i%5 == 0 {
							return fmt.Errorf("member %d fails", i)
						}
						return nil
					})
				})
			}
			close(start)
			wg.Wait()
			want := map[int]bool{}
			for i := range n {
				require.EqualValues(t, 1, calls[i].Load(), "member %d ran once", i)
				if i%5 == 0 {
					require.EqualError(t, errs[i], fmt.Sprintf("member %d fails", i))
					continue
				}
				require.NoError(t, errs[i], "member %d", i)
				want[i] = true
			}
			require.Equal(t, want, rowsOf(t, db))
			require.Len(t, want, 160)
			if e == SQLite {
				batches := db.group.batches.Load()
				t.Logf("%d transactions in %d commits", n, batches)
				require.Less(t, batches, int64(n), "concurrent writers share commits")
			}
		})
	}
}

// blockWriter starts a write transaction that holds the writer until the
// returned func is called, so that the writes started meanwhile queue and
// join its batch (SQLite).
func blockWriter(t *testing.T, db *DB, fn func(*Tx) error) (release func() error) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.tx(context.Background(), func(tx *Tx) error {
			close(started)
			<-unblock
			if fn != nil {
				return fn(tx)
			}
			return nil
		})
	}()
	<-started
	return func() error {
		close(unblock)
		return <-done
	}
}

// queued runs n write transactions concurrently, each made by mk, once the
// writer is held, and returns their results after release.
func queued(t *testing.T, db *DB, n int, mk func(i int) func(*Tx) error, release func() error) (errs []error, blockerErr error) {
	t.Helper()
	errs = make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = db.tx(context.Background(), mk(i)) })
	}
	time.Sleep(200 * time.Millisecond) // let them all queue behind the blocker
	blockerErr = release()
	wg.Wait()
	return errs, blockerErr
}

// TestGroupCommitSavepoints: in one batch, a failed member's writes are
// undone before the next member runs (the next writes the same key), and
// a later member reads the writes of an earlier one. SQLite only: it
// relies on the one writer's order (on PostgreSQL the members run side by
// side).
func TestGroupCommitSavepoints(t *testing.T) {
	t.Parallel()
	db := openTest(t, SQLite, "")
	ctx := context.Background()
	release := blockWriter(t, db, func(tx *Tx) error { return insertN(ctx, tx, 999) })
	batches := db.group.batches.Load()
	// Senders blocked on a channel are served in order: members queue
	// behind the blocker as 0, 1, 2, …
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.tx(ctx, func(tx *Tx) error {
				var c int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM gc WHERE n = 1`).Scan(&c); err != nil {
					return err
				}
				if c > 0 {
					return errors.New("taken") // an earlier member's write, seen
				}
				if err := insertN(ctx, tx, 1); err != nil {
					return err
				}
				if i == 0 {
					return errors.New("member 0 fails")
				}
				return nil
			})
		})
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, release())
	wg.Wait()
	require.Equal(t, batches+1, db.group.batches.Load(), "the blocker and the six shared one transaction")
	require.EqualError(t, errs[0], "member 0 fails")
	require.NoError(t, errs[1], "member 0's insert was undone")
	for i := 2; i < n; i++ {
		require.EqualError(t, errs[i], "taken", "member %d sees member 1's write", i)
	}
	require.Equal(t, map[int]bool{1: true, 999: true}, rowsOf(t, db))
	var note string
	require.NoError(t, db.r.QueryRow(`SELECT note FROM gc WHERE n = 1`).Scan(&note))
	require.Equal(t, "member 1", note)
}

// TestGroupCommitPanic: a panicking fn fails alone; its writes are undone
// and the rest of its batch commits.
func TestGroupCommitPanic(t *testing.T) {
	t.Parallel()
	for _, e := range testEngines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := openTest(t, e, "")
			ctx := context.Background()
			release := blockWriter(t, db, func(tx *Tx) error { return insertN(ctx, tx, 100) })
			errs := make([]error, 20)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() {
					errs[i] = db.tx(ctx, func(tx *Tx) error {
						if err := insertN(ctx, tx, i); err != nil {
							return err
						}
						if i == 7 {
							panic("member 7 panics")
						}
						return nil
					})
				})
			}
			time.Sleep(200 * time.Millisecond)
			require.NoError(t, release())
			wg.Wait()
			want := map[int]bool{100: true}
			for i, err := range errs {
				if i == 7 {
					require.ErrorContains(t, err, "write transaction panicked: member 7 panics")
					continue
				}
				require.NoError(t, err, "member %d", i)
				want[i] = true
			}
			require.Equal(t, want, rowsOf(t, db))
			// The writer carries on.
			require.NoError(t, db.tx(ctx, func(tx *Tx) error { return insertN(ctx, tx, 200) }))
		})
	}
}

// TestGroupCommitCancel: a caller whose ctx ends while it waits for the
// writer returns at once and its fn never runs; an already cancelled ctx
// never queues; a ctx that ends while fn runs undoes that member only.
func TestGroupCommitCancel(t *testing.T) {
	t.Parallel()
	db := openTest(t, SQLite, "")
	ctx := context.Background()
	release := blockWriter(t, db, func(tx *Tx) error { return insertN(ctx, tx, 1) })

	cctx, cancel := context.WithCancel(ctx)
	var ran atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- db.tx(cctx, func(tx *Tx) error { ran.Store(true); return insertN(ctx, tx, 2) })
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled caller still waits for the writer")
	}
	require.ErrorIs(t, db.tx(cctx, func(*Tx) error { ran.Store(true); return nil }), context.Canceled)

	// Cancelled while its fn runs: undone, the others commit.
	mid, cancelMid := context.WithCancel(ctx)
	midDone := make(chan error, 1)
	go func() {
		midDone <- db.tx(mid, func(tx *Tx) error {
			if err := insertN(mid, tx, 3); err != nil {
				return err
			}
			cancelMid()
			// Its statements still run: an interrupted statement would
			// roll back the whole batch.
			return insertN(mid, tx, 4)
		})
	}()
	after := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		after <- db.tx(ctx, func(tx *Tx) error { return insertN(ctx, tx, 5) })
	}()
	time.Sleep(150 * time.Millisecond)
	require.NoError(t, release())
	require.ErrorIs(t, <-midDone, context.Canceled)
	require.NoError(t, <-after)
	require.False(t, ran.Load(), "a cancelled caller's fn never runs")
	require.Equal(t, map[int]bool{1: true, 5: true}, rowsOf(t, db))
}

// TestGroupCommitCommitFails: when the COMMIT fails, every member of the
// batch gets the error and nothing of it is kept; the writer goes on.
func TestGroupCommitCommitFails(t *testing.T) {
	t.Parallel()
	db := openTest(t, SQLite, "")
	ctx := context.Background()
	// A deferred foreign key is checked only at COMMIT.
	_, err := db.w.ExecContext(ctx, `CREATE TABLE gc_child (n BIGINT PRIMARY KEY,
		parent BIGINT NOT NULL REFERENCES gc (n) DEFERRABLE INITIALLY DEFERRED)`)
	require.NoError(t, err)
	release := blockWriter(t, db, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gc_child (n, parent) VALUES (1, 999)`)
		return err
	})
	errs, blockerErr := queued(t, db, 10, func(i int) func(*Tx) error {
		return func(tx *Tx) error { return insertN(ctx, tx, i) }
	}, release)
	require.ErrorContains(t, blockerErr, "commit: ")
	require.ErrorContains(t, blockerErr, "FOREIGN KEY constraint failed")
	for i, err := range errs {
		require.Equal(t, blockerErr, err, "member %d shares the batch's fate", i)
	}
	require.Empty(t, rowsOf(t, db))
	require.NoError(t, db.tx(ctx, func(tx *Tx) error { return insertN(ctx, tx, 42) }), "the writer recovers")
	require.Equal(t, map[int]bool{42: true}, rowsOf(t, db))
}

// TestGroupCommitClose: writes after Close are refused, not stuck.
func TestGroupCommitClose(t *testing.T) {
	t.Parallel()
	db := openTest(t, SQLite, "")
	require.NoError(t, db.Close())
	require.ErrorIs(t, db.tx(context.Background(), func(*Tx) error { return nil }), errClosed)
}

// TestOpenOptions: the sqlite: and postgres: URL options.
func TestOpenOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pragma := func(db *sql.DB, name string) int {
		var v int
		require.NoError(t, db.QueryRowContext(ctx, `PRAGMA `+name).Scan(&v))
		return v
	}
	for query, want := range map[string]int{"": 1, "?synchronous=normal": 1, "?synchronous=FULL": 2} {
		db := openTest(t, SQLite, query)
		require.Equal(t, want, pragma(db.w, "synchronous"), query)
		require.Equal(t, 0, pragma(db.w, "wal_autocheckpoint"), "the writer never checkpoints")
	}
	for _, bad := range []string{"?synchronous=off", "?cache=shared"} {
		_, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "x.db")+bad)
		require.Error(t, err, bad)
	}

	u, open, idle, err := poolOptions("postgres://u@h:5432/db?sslmode=disable&max_open_conns=12&max_idle_conns=3")
	require.NoError(t, err)
	require.Equal(t, "postgres://u@h:5432/db?sslmode=disable", u)
	require.Equal(t, [2]int{12, 3}, [2]int{open, idle})
	_, open, idle, err = poolOptions("postgres://u@h/db")
	require.NoError(t, err)
	require.Equal(t, [2]int{defaultMaxOpenConns, defaultMaxIdleConns}, [2]int{open, idle})
	require.LessOrEqual(t, 2*defaultMaxOpenConns, 100-10, "two replicas and tools fit in max_connections=100")
	for _, bad := range []string{"max_open_conns=0", "max_open_conns=x", "max_idle_conns=-1"} {
		_, _, _, err := poolOptions("postgres://u@h/db?" + bad)
		require.Error(t, err, bad)
	}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		db := openTest(t, Postgres, "")
		require.Equal(t, defaultMaxOpenConns, db.w.Stats().MaxOpenConnections)
	}
}

// TestCheckpointer: with the writer's automatic checkpoint off, the
// checkpointer still copies the WAL back into the database file, which
// would otherwise stay as small as it was until the last connection closed.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	db := openTest(t, SQLite, "")
	ctx := context.Background()
	var seq int
	var path string
	require.NoError(t, db.r.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, new(string), &path))
	note := strings.Repeat("x", 4000)
	for i := range 250 {
		require.NoError(t, db.tx(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO gc (n, note) VALUES ($1, $2)`, i, note)
			return err
		}))
	}
	require.Eventually(t, func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() > 250*4000
	}, 5*time.Second, 50*time.Millisecond, "the rows reach %s", path)
}
