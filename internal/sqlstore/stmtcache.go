package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// On SQLite, parsing SQL took about a third of a checkout's CPU: the driver
// prepares every statement anew. So on SQLite each statement text is
// prepared once per connection and reused. PostgreSQL needs none of this:
// pgx caches prepared statements itself.

// stmtCache holds the prepared statements of one pool.
type stmtCache struct {
	pool    *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
	max     int
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}, pending: map[string]bool{}, max: 512}
}

// get returns the prepared statement of q, or nil the first time, when it
// starts preparing q in the background: preparing needs a free connection,
// and the caller's transaction may hold the only one (SQLite's writer).
func (c *stmtCache) get(q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if !c.pending[q] && len(c.m)+len(c.pending) < c.max {
		c.pending[q] = true
		go func() {
			st, err := c.pool.Prepare(q)
			c.mu.Lock()
			defer c.mu.Unlock()
			delete(c.pending, q)
			if err == nil {
				c.m[q] = st
			}
		}()
	}
	return nil
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		_ = st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// Tx is a transaction of the store; its statements go through the cache.
type Tx struct {
	*sql.Tx
	cache *stmtCache
	// shared marks a member of a group commit (groupcommit.go): the
	// transaction is the batch's, so the caller's ctx must not interrupt a
	// statement (on SQLite an interrupted write rolls back the whole
	// transaction, every member's work). Cancellation is checked when the
	// member's fn returns instead.
	shared bool
}

// detach returns the context the transaction's statements run under.
func (t *Tx) detach(ctx context.Context) context.Context {
	if t.shared {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// ExecContext runs a statement in the transaction.
func (t *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = t.detach(ctx)
	if st := t.cache.get(q); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

// QueryContext runs a query in the transaction.
func (t *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = t.detach(ctx)
	if st := t.cache.get(q); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

// QueryRowContext runs a one-row query in the transaction.
func (t *Tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = t.detach(ctx)
	if st := t.cache.get(q); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// pooled runs statements outside a transaction, through the cache.
type pooled struct {
	*sql.DB
	cache *stmtCache
}

func (p pooled) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := p.cache.get(q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, q, args...)
}

func (p pooled) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := p.cache.get(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, q, args...)
}

func (p pooled) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := p.cache.get(q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, q, args...)
}
