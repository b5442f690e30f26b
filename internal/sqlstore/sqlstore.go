// Package sqlstore is the one store of fulfill, over database/sql, for
// SQLite (the embedded default, pure Go) and PostgreSQL (production, shared
// by replicas). Both engines run the same $n SQL; where they must differ the
// difference sits in dialect.go.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // driver "sqlite"
)

//go:embed migrations
var migrations embed.FS

// Engine names a database engine.
type Engine string

// Engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// DB is the store. Writes go through w; on SQLite, w is a single connection
// owned by the group commit's writer goroutine (groupcommit.go), so writers
// queue in Go instead of spinning on SQLITE_BUSY and commit together, and r
// serves reads concurrently thanks to WAL. On PostgreSQL both are one pool.
type DB struct {
	Engine Engine
	w, r   *sql.DB
	// wc and rc are the statement caches of w and r (nil on PostgreSQL);
	// wr and rd run statements on w and r through them.
	wc, rc *stmtCache
	wr, rd pooled
	// group runs SQLite's write transactions, ckpt its checkpoints (both
	// nil on PostgreSQL).
	group *groupCommit
	ckpt  *checkpointer
	// Partner is the prefix of order numbers (Otto's partner short code).
	Partner string
	now     func() time.Time
	// products caches lookups by SKU briefly (productcache.go).
	products productCache
	// noSiteOffers remembers briefly that there are none (productcache.go).
	noSiteOffers emptyCache
}

// busyTimeout is how long a SQLite connection waits for a lock.
const busyTimeout = 10 * time.Second

// PostgreSQL pool defaults: two replicas (2 × 40) plus migrations, psql and
// the CLI fit in PostgreSQL's default max_connections of 100. Idle
// connections are kept up to the open bound: closing them under load only
// to reopen them costs a PostgreSQL backend process each (measured with the
// load tool: 10 idle of 40 halved paid checkouts per second).
const (
	defaultMaxOpenConns = 40
	defaultMaxIdleConns = 40
)

// Open connects to dbURL and does not migrate (call Migrate). dbURL is one
// of:
//
//   - "sqlite:PATH" (or "sqlite://PATH", or a bare path), optionally with
//     "?synchronous=normal" (the default: a commit is durable once the WAL
//     is synced at the next checkpoint; a power cut may lose the last
//     commits, never corrupt the file) or "?synchronous=full" (every commit
//     syncs the WAL before it is answered);
//   - "postgres://…" or "postgresql://…", where max_open_conns=N (default
//     40) and max_idle_conns=M (default 40) bound this process's pool and
//     are taken out of the URL before pgx sees it.
func Open(ctx context.Context, dbURL string) (*DB, error) {
	return open(ctx, dbURL, "pgx")
}

// open is Open with PostgreSQL reached through the database/sql driver
// named pgDriver: pgx's, or in tests one that wraps it to count round trips.
func open(ctx context.Context, dbURL, pgDriver string) (*DB, error) {
	db := &DB{Partner: "EDX", now: time.Now}
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		db.Engine = Postgres
		pgURL, maxOpen, maxIdle, err := poolOptions(dbURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		p, err := sql.Open(pgDriver, pgURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		p.SetMaxOpenConns(maxOpen)
		p.SetMaxIdleConns(maxIdle)
		p.SetConnMaxIdleTime(5 * time.Minute)
		db.w, db.r = p, p
	default:
		db.Engine = SQLite
		path := strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite://"), "sqlite:")
		synchronous := "NORMAL"
		if i := strings.IndexByte(path, '?'); i >= 0 {
			var err error
			if synchronous, err = sqliteOptions(path[i+1:]); err != nil {
				return nil, fmt.Errorf("open sqlite: %w", err)
			}
			path = path[:i]
		}
		if path == "" {
			return nil, errors.New("open sqlite: empty path")
		}
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "foreign_keys(1)", "synchronous(" + synchronous + ")"} {
			q.Add("_pragma", p)
		}
		readDSN := "file:" + path + "?" + q.Encode()
		q.Set("_txlock", "immediate")
		// The writer never checkpoints: the checkpointer does, from a
		// reader connection, off the serialised path. Its savepoints'
		// journals (one per group commit member) stay in memory instead of
		// spilling to a temporary file past 64 KiB.
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Add("_pragma", "temp_store(MEMORY)")
		dsn := "file:" + path + "?" + q.Encode()
		w, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		// Readers begin deferred transactions: a snapshot, no write lock.
		r, err := sql.Open("sqlite", readDSN)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		// As many idle as open: a reader pool that closes connections
		// between bursts reopens (and re-prepares) them at once.
		r.SetMaxOpenConns(8)
		r.SetMaxIdleConns(8)
		db.w, db.r = w, r
	}
	if db.Engine == SQLite {
		db.wc, db.rc = newStmtCache(db.w), newStmtCache(db.r)
		restart := new(atomic.Bool) // the checkpointer asks, the writer restarts the WAL
		db.ckpt = newCheckpointer(db.r, restart)
		db.group = newGroupCommit(db.w, db.wc, db.ckpt.committed, restart)
	}
	db.wr, db.rd = pooled{db.w, db.wc}, pooled{db.r, db.rc}
	if err := db.w.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect %s: %w", db.Engine, err)
	}
	return db, nil
}

// sqliteOptions reads the query of a sqlite: URL and returns the
// synchronous pragma's value.
func sqliteOptions(query string) (synchronous string, err error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", err
	}
	synchronous = "NORMAL"
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "synchronous":
			switch strings.ToLower(v) {
			case "normal":
				synchronous = "NORMAL"
			case "full":
				synchronous = "FULL"
			default:
				return "", fmt.Errorf("synchronous=%q: want normal or full", v)
			}
		default:
			return "", fmt.Errorf("unknown option %q (known: synchronous)", k)
		}
	}
	return synchronous, nil
}

// poolOptions takes max_open_conns and max_idle_conns out of a postgres
// URL: pgx would send them to the server as settings.
func poolOptions(dbURL string) (pgURL string, maxOpen, maxIdle int, err error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", 0, 0, err
	}
	q := u.Query()
	maxOpen, maxIdle = defaultMaxOpenConns, defaultMaxIdleConns
	for _, o := range []struct {
		name string
		to   *int
		min  int
	}{{"max_open_conns", &maxOpen, 1}, {"max_idle_conns", &maxIdle, 0}} {
		if !q.Has(o.name) {
			continue
		}
		n, err := strconv.Atoi(q.Get(o.name))
		if err != nil || n < o.min {
			return "", 0, 0, fmt.Errorf("%s=%q: want a whole number ≥ %d", o.name, q.Get(o.name), o.min)
		}
		*o.to = n
		q.Del(o.name)
	}
	maxIdle = min(maxIdle, maxOpen)
	u.RawQuery = q.Encode()
	return u.String(), maxOpen, maxIdle, nil
}

// Close stops the writer and the checkpointer and closes the pools.
func (db *DB) Close() error {
	if db.group != nil {
		db.group.close()
	}
	if db.ckpt != nil {
		db.ckpt.close()
	}
	db.wc.close()
	db.rc.close()
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// SetClock pins the store's clock (tests).
func (db *DB) SetClock(now func() time.Time) { db.now = now }

func (db *DB) clock() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

func (db *DB) provider() (*goose.Provider, error) {
	dialect, dir := goose.DialectSQLite3, "migrations/sqlite"
	var opts []goose.ProviderOption
	if db.Engine == Postgres {
		dialect, dir = goose.DialectPostgres, "migrations/postgres"
		// Replicas starting together must not run the same migration twice.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(dialect, db.w, sub, opts...)
}

// Migrate applies every pending migration.
func (db *DB) Migrate(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ready checks that the database answers and every migration is applied.
func (db *DB) Ready(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	p, err := db.provider()
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	if pending {
		return errors.New("migrations pending")
	}
	return nil
}

// Commits counts the transactions committed to the database so far, for
// a load test to see the write rate of background work: on SQLite the
// commits of this process's writer (a group commit counts once); on
// PostgreSQL every client's commits of this database, read-only ones too,
// as its statistics report them (flushed by each backend within seconds).
func (db *DB) Commits(ctx context.Context) (int64, error) {
	if db.group != nil {
		return db.group.commits.Load(), nil
	}
	var n int64
	if err := db.r.QueryRowContext(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		return 0, fmt.Errorf("commits: %w", err)
	}
	return n, nil
}

// ts converts a time for a query argument. SQLite has no time type, and
// text compares correctly only at a fixed width, so every time is written
// as UTC with exactly six fractional digits.
func (db *DB) ts(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if db.Engine == SQLite {
		return t.Format(sqliteTime)
	}
	return t
}

func (db *DB) tsp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.ts(*t)
}

const sqliteTime = "2006-01-02T15:04:05.000000Z"

// nullTime scans a timestamp from either engine.
type nullTime struct {
	Time  time.Time
	Valid bool
}

func (n *nullTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		n.Valid = false
		return nil
	case time.Time:
		n.Time, n.Valid = x.UTC(), true
		return nil
	case string:
		return n.parse(x)
	case []byte:
		return n.parse(string(x))
	}
	return fmt.Errorf("cannot scan %T into a time", v)
}

func (n *nullTime) parse(s string) error {
	for _, layout := range []string{sqliteTime, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			n.Time, n.Valid = t.UTC(), true
			return nil
		}
	}
	return fmt.Errorf("cannot parse time %q", s)
}

func (n nullTime) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}

var _ driver.Valuer = (*nullTime)(nil)

// Value lets nullTime be an argument too (never used for SQLite text).
func (n nullTime) Value() (driver.Value, error) {
	if !n.Valid {
		return nil, nil
	}
	return n.Time, nil
}

// read runs fn in a read-only transaction, so that an order and its lines
// come from one snapshot even while other requests commit.
func (db *DB) read(ctx context.Context, fn func(*Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Engine == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(&Tx{Tx: tx, cache: db.rc})
}

// tx runs fn in a write transaction. On SQLite, fn joins a group commit
// (groupcommit.go): it runs on the writer goroutine, in a savepoint of a
// transaction it may share with other callers' fns, and tx returns once
// that transaction is committed. fn must therefore not keep tx or use it
// from another goroutine, and must not start another write itself. On both
// engines a panic in fn rolls back its work and becomes its error.
func (db *DB) tx(ctx context.Context, fn func(*Tx) error) error {
	if db.group != nil {
		return db.group.do(ctx, fn)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// A panic in fn is its error on both engines (groupcommit.go's call).
	if err := call(fn, &Tx{Tx: tx, cache: db.wc}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// placeholders returns "($k+1, …, $k+n)" groups for a multi-row insert of
// rows rows of cols columns starting after argument k.
func placeholders(rows, cols, k int) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", k+r*cols+c+1)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// inList returns "$k+1, …, $k+n".
func inList(n, k int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("$%d", k+i+1)
	}
	return strings.Join(s, ", ")
}

// scanIDs reads a one-column result of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
