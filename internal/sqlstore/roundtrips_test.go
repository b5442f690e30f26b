package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore/sqlstoretest/pgschema"
)

// roundTrips counts what a connection sends PostgreSQL: statements (Exec
// and Query) and round trips (statements plus BEGIN, COMMIT and ROLLBACK).
// pgx caches each statement's preparation per connection, so once warm a
// statement is one round trip.
type roundTrips struct {
	statements, trips atomic.Int64
	log               sync.Mutex
	queries           []string
}

func (c *roundTrips) statement(q string) {
	c.statements.Add(1)
	c.trips.Add(1)
	c.log.Lock()
	c.queries = append(c.queries, q)
	c.log.Unlock()
}

// take returns the counts since the last take and resets them.
func (c *roundTrips) take() (statements, trips int64, queries []string) {
	c.log.Lock()
	queries, c.queries = c.queries, nil
	c.log.Unlock()
	return c.statements.Swap(0), c.trips.Swap(0), queries
}

// countingPgx is the driver "pgx-counting": pgx's stdlib driver, counted
// in counted. Registered once (sql.Register panics on a second name).
var (
	countingOnce sync.Once
	counted      roundTrips
)

func registerCountingPgx() {
	countingOnce.Do(func() { sql.Register("pgx-counting", countingDriver{stdlib.GetDefaultDriver()}) })
}

type countingDriver struct{ d driver.Driver }

func (d countingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.d.Open(name)
	if err != nil {
		return nil, err
	}
	return countingConn{c.(*stdlib.Conn)}, nil
}

// countingConn forwards every interface of *stdlib.Conn that database/sql
// uses, counting the ones that reach the server.
type countingConn struct{ c *stdlib.Conn }

func (c countingConn) Prepare(q string) (driver.Stmt, error) { return c.c.Prepare(q) }
func (c countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.c.PrepareContext(ctx, q)
}
func (c countingConn) Close() error { return c.c.Close() }
func (c countingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c countingConn) Ping(ctx context.Context) error              { return c.c.Ping(ctx) }
func (c countingConn) CheckNamedValue(nv *driver.NamedValue) error { return c.c.CheckNamedValue(nv) }
func (c countingConn) ResetSession(ctx context.Context) error {
	return c.c.ResetSession(ctx)
}

func (c countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	counted.trips.Add(1)
	tx, err := c.c.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingTx{tx}, nil
}

func (c countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	counted.statement(q)
	return c.c.ExecContext(ctx, q, args)
}

func (c countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	counted.statement(q)
	return c.c.QueryContext(ctx, q, args)
}

type countingTx struct{ tx driver.Tx }

func (t countingTx) Commit() error   { counted.trips.Add(1); return t.tx.Commit() }
func (t countingTx) Rollback() error { counted.trips.Add(1); return t.tx.Rollback() }

// TestRoundTripsPerCheckout counts the SQL of a free checkout on
// PostgreSQL, as checkout.Buy runs it for a free basket of one seat:
// ProductsBySKU, PlaceOrder, then RecordOutcome of the line's success.
// The bounds are what the store achieves: a regression fails.
func TestRoundTripsPerCheckout(t *testing.T) {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL not set")
	}
	t.Parallel()
	registerCountingPgx()
	ctx := context.Background()

	u, err := url.Parse(pgschema.New(t, base, "rt"))
	require.NoError(t, err)
	q := u.Query()
	q.Set("max_open_conns", "1") // one connection: pgx's statement cache is warm after the first checkout
	u.RawQuery = q.Encode()
	db, err := open(ctx, u.String(), "pgx-counting")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx))

	free, err := money.Parse("0", "USD")
	require.NoError(t, err)
	c, err := db.PutCourse(ctx, catalog.Course{ID: "course-v1:RT+R1+Run", Name: "Round trips",
		Seats: []catalog.Seat{{CertificateType: "verified", Price: free}}})
	require.NoError(t, err)
	sku := c.Seats[0].SKU

	type step struct {
		name              string
		statements, trips int64
	}
	checkout := func(user string) []step {
		var steps []step
		mark := func(name string) {
			s, r, qs := counted.take()
			steps = append(steps, step{name, s, r})
			for _, q := range qs {
				t.Logf("  %s: %.100s", name, strings.Join(strings.Fields(q), " "))
			}
		}
		counted.take()
		ps, err := db.ProductsBySKU(ctx, []string{sku})
		require.NoError(t, err)
		mark("ProductsBySKU")
		bk, err := basket.Build(order.User{Username: user, Email: user + "@example.com"}, []string{sku}, ps, time.Now())
		require.NoError(t, err)
		o, err := db.PlaceOrder(ctx, bk, user, lease.Lease{Owner: "checkout-" + user, Until: time.Now().Add(time.Minute)})
		require.NoError(t, err)
		mark("PlaceOrder")
		now := time.Now().UTC()
		l := o.Lines[0]
		done, err := db.RecordOutcome(ctx, fulfillment.Outcome{OrderID: o.ID, Order: o, Owner: "checkout-" + user, Actor: user, Now: now,
			Changes: []fulfillment.LineChange{{LineID: l.ID, From: order.LineOpen, To: order.LineComplete,
				Attempt: &order.Attempt{LineID: l.ID, Number: 1, Actor: user, Module: "enrollment", StartedAt: now,
					Duration: time.Millisecond, Outcome: fulfillment.OutcomeSuccess, HTTPStatus: 200}}}})
		require.NoError(t, err)
		require.Equal(t, order.StatusComplete, done.Status)
		mark("RecordOutcome")
		return steps
	}
	checkout("warm") // prepares every statement on the one connection
	steps := checkout("ann")

	// What the store achieves (BENCHMARKS.md, "Round trips per checkout"):
	// statements, round trips.
	bound := map[string][2]int64{
		"ProductsBySKU": {1, 1},
		"PlaceOrder":    {1, 1},
		"RecordOutcome": {1, 1},
	}
	var total step
	for _, s := range steps {
		t.Logf("%-14s %2d statements, %2d round trips", s.name, s.statements, s.trips)
		total.statements += s.statements
		total.trips += s.trips
		require.LessOrEqual(t, s.statements, bound[s.name][0], "%s: statements", s.name)
		require.LessOrEqual(t, s.trips, bound[s.name][1], "%s: round trips", s.name)
	}
	t.Logf("checkout       %2d statements, %2d round trips", total.statements, total.trips)
}

// TestChainPostgres checks that chained statements' arguments are
// renumbered in turn (no database needed).
func TestChainPostgres(t *testing.T) {
	t.Parallel()
	got := chainPostgres([]cte{{"a", stmt{`INSERT INTO x VALUES ($1, $2, $1)`, []any{1, 2}}}, {"b", stmt{`INSERT INTO y VALUES ($1)`, []any{3}}}},
		stmt{`UPDATE z SET v = $2 WHERE id = $1 RETURNING v`, []any{4, 5}})
	require.Equal(t, "WITH a AS (INSERT INTO x VALUES ($1, $2, $1)),\nb AS (INSERT INTO y VALUES ($3))\nUPDATE z SET v = $5 WHERE id = $4 RETURNING v", got.sql)
	require.Equal(t, []any{1, 2, 3, 4, 5}, got.args)
	one := stmt{`SELECT $1`, []any{1}}
	require.Equal(t, one, chainPostgres(nil, one))
}
