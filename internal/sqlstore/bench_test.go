package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// The benchmarks run on SQLite and, when TEST_DATABASE_URL is set, on
// PostgreSQL, each on a fresh database:
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/sqlstore/
//
// BenchmarkListOrders pre-fills FULFILL_BENCH_ORDERS orders (default
// 20,000) with bulk SQL before measuring.

// benchSeat creates a course with one free verified seat and returns its
// product, as the checkout finds it.
func benchSeat(b *testing.B, db *sqlstore.DB) catalog.Product {
	b.Helper()
	ctx := context.Background()
	free, err := money.Parse("0", "USD")
	require.NoError(b, err)
	c, err := db.PutCourse(ctx, catalog.Course{ID: "course-v1:Bench+B1+Run", Name: "Bench",
		Seats: []catalog.Seat{{CertificateType: "verified", Price: free}}})
	require.NoError(b, err)
	sku := c.Seats[0].SKU
	ps, err := db.ProductsBySKU(ctx, []string{sku})
	require.NoError(b, err)
	return ps[sku]
}

func benchBasket(b *testing.B, p catalog.Product, user string) basket.Basket {
	bk, err := basket.Build(order.User{Username: user, Email: user + "@example.com"}, []string{p.Stock.SKU},
		map[string]catalog.Product{p.Stock.SKU: p}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return bk
}

// forEngines runs fn as a sub-benchmark per engine.
func forEngines(b *testing.B, fn func(b *testing.B, engine sqlstore.Engine)) {
	for _, e := range sqlstoretest.Engines(b) {
		b.Run(string(e), func(b *testing.B) { fn(b, e) })
	}
}

// BenchmarkPlaceOrder places a one-line free order (the transaction a free
// checkout commits before calling the LMS): one learner per order.
func BenchmarkPlaceOrder(b *testing.B) {
	forEngines(b, func(b *testing.B, e sqlstore.Engine) {
		b.Run("serial", func(b *testing.B) {
			db := sqlstoretest.Open(b, e)
			p := benchSeat(b, db)
			ctx := context.Background()
			until := time.Now().Add(time.Hour)
			i := 0
			for b.Loop() {
				i++
				user := "bench-" + strconv.Itoa(i)
				if _, err := db.PlaceOrder(ctx, benchBasket(b, p, user), user, lease.Lease{Owner: "bench", Until: until}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
		b.Run("parallel", func(b *testing.B) {
			db := sqlstoretest.Open(b, e)
			p := benchSeat(b, db)
			ctx := context.Background()
			until := time.Now().Add(time.Hour)
			var n atomic.Int64
			b.SetParallelism(8) // 8 × GOMAXPROCS goroutines, like concurrent checkouts
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					user := "bench-" + strconv.FormatInt(n.Add(1), 10)
					if _, err := db.PlaceOrder(ctx, benchBasket(b, p, user), user, lease.Lease{Owner: "bench", Until: until}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	})
}

// placeN places n one-line orders leased by owner, 8 at a time.
func placeN(b *testing.B, db *sqlstore.DB, p catalog.Product, n int, owner string) []order.Order {
	b.Helper()
	ctx := context.Background()
	out := make([]order.Order, n)
	until := time.Now().Add(time.Hour)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				user := "rec-" + strconv.Itoa(i)
				o, err := db.PlaceOrder(ctx, benchBasket(b, p, user), user, lease.Lease{Owner: owner, Until: until})
				if err != nil {
					failed.Store(err)
					return
				}
				out[i] = o
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return out
}

func successOutcome(o order.Order, owner string) fulfillment.Outcome {
	now := time.Now().UTC()
	l := o.Lines[0]
	return fulfillment.Outcome{OrderID: o.ID, Owner: owner, Actor: "bench", Now: now, Changes: []fulfillment.LineChange{{
		LineID: l.ID, From: order.LineOpen, To: order.LineComplete,
		Attempt: &order.Attempt{LineID: l.ID, Number: 1, Actor: "bench", Module: "enrollment", StartedAt: now,
			Duration: 3 * time.Millisecond, Outcome: fulfillment.OutcomeSuccess, HTTPStatus: 200},
	}}}
}

// BenchmarkRecordOutcome records the success of a leased line (Open →
// Complete, order Open → Complete), the transaction that follows a
// successful LMS call, including the read of the order it returns. The
// orders are placed before the timer starts.
func BenchmarkRecordOutcome(b *testing.B) {
	forEngines(b, func(b *testing.B, e sqlstore.Engine) {
		b.Run("serial", func(b *testing.B) {
			db := sqlstoretest.Open(b, e)
			os := placeN(b, db, benchSeat(b, db), b.N, "bench")
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				got, err := db.RecordOutcome(ctx, successOutcome(os[i], "bench"))
				if err != nil {
					b.Fatal(err)
				}
				if got.Status != order.StatusComplete {
					b.Fatalf("order %s is %s", got.Number, got.Status)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
		b.Run("parallel", func(b *testing.B) {
			db := sqlstoretest.Open(b, e)
			os := placeN(b, db, benchSeat(b, db), b.N, "bench")
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					o := os[next.Add(1)-1]
					if _, err := db.RecordOutcome(ctx, successOutcome(o, "bench")); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	})
}

// benchOrders is the size of the table BenchmarkListOrders lists.
func benchOrders(b *testing.B) int {
	n := 20_000
	if s := os.Getenv("FULFILL_BENCH_ORDERS"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(b, err, "FULFILL_BENCH_ORDERS")
		n = v
	}
	require.GreaterOrEqual(b, n, 1000, "FULFILL_BENCH_ORDERS must be at least 1000")
	return n
}

// BenchmarkListOrders reads the first page (50 orders, with lines, refunds
// and notes) of a filtered list, as GET /api/v2/orders/ does, on a table of
// FULFILL_BENCH_ORDERS orders: 99 % Complete, 1 % Fulfillment Error (a
// tenth of those needing attention), 20 orders per learner, placed one
// second apart. p50-µs and p99-µs are the latencies of single calls.
func BenchmarkListOrders(b *testing.B) {
	n := benchOrders(b)
	forEngines(b, func(b *testing.B, e sqlstore.Engine) {
		url := sqlstoretest.URL(b, e)
		ctx := context.Background()
		db, err := sqlstore.Open(ctx, url)
		require.NoError(b, err)
		b.Cleanup(func() { db.Close() })
		require.NoError(b, db.Migrate(ctx))
		p := benchSeat(b, db)
		start := time.Now()
		now := fillOrders(b, e, url, p, n)
		b.Logf("%s: filled %d orders in %s", e, n, time.Since(start).Round(time.Millisecond))

		yes := true
		mid := now.Add(-time.Duration(n/2) * time.Second)
		hour := now.Add(-time.Hour)
		for _, f := range []struct {
			name string
			f    order.Filter
		}{
			{"status=Complete", order.Filter{Status: order.StatusComplete}},
			{"status=FulfillmentError", order.Filter{Status: order.StatusFulfillmentError}},
			{"needs_attention", order.Filter{NeedsAttention: &yes}},
			{"username", order.Filter{Username: "bench-u" + strconv.Itoa(n/40)}},
			{"placed_after=1h_ago", order.Filter{PlacedAfter: &hour}},
			{"placed_before=midpoint", order.Filter{PlacedBefore: &mid}},
		} {
			b.Run(fmt.Sprintf("orders=%d/%s", n, f.name), func(b *testing.B) {
				f.f.Limit = 50
				var lat []time.Duration
				for b.Loop() {
					t0 := time.Now()
					got, err := db.ListOrders(ctx, f.f)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					if len(got) == 0 {
						b.Fatalf("empty page for %s", f.name)
					}
				}
				slices.Sort(lat)
				q := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)].Microseconds())
				}
				b.ReportMetric(q(0.50), "p50-µs")
				b.ReportMetric(q(0.99), "p99-µs")
			})
		}
	})
}

// fillOrders bulk-inserts n orders with one line each, bypassing the store
// (PlaceOrder would take minutes for a million), and returns the time the
// newest was placed. The rows obey the schema's constraints as the store
// writes them.
func fillOrders(b *testing.B, e sqlstore.Engine, url string, p catalog.Product, n int) time.Time {
	b.Helper()
	users := max(1, n/20)
	now := time.Now().UTC().Truncate(time.Second)
	var raw *sql.DB
	var err error
	var stmts []string
	if e == sqlstore.Postgres {
		raw, err = sql.Open("pgx", url)
		require.NoError(b, err)
		ts := fmt.Sprintf(`(TIMESTAMPTZ '%s' - (%d - g) * INTERVAL '1 second')`, now.Format(time.RFC3339), n)
		stmts = []string{
			fmt.Sprintf(`INSERT INTO users (id, username, email, created_at, updated_at)
				SELECT g, 'bench-u' || g, 'bench-u' || g || '@example.com', now(), now() FROM generate_series(1, %d) g`, users),
			fmt.Sprintf(`INSERT INTO baskets (id, owner_id, status, created_at, updated_at)
				SELECT g, 1 + g %% %d, 'Submitted', %s, %s FROM generate_series(1, %d) g`, users, ts, ts, n),
			fmt.Sprintf(`INSERT INTO orders (id, number, basket_id, user_id, status, currency, total_minor, needs_attention, attempts,
					last_error, next_attempt_at, date_placed, updated_at)
				SELECT g, 'EDX-' || (g + 100000), g, 1 + g %% %d,
					CASE WHEN g %% 100 = 0 THEN 'Fulfillment Error' ELSE 'Complete' END, 'USD', 0, g %% 1000 = 0, 1,
					CASE WHEN g %% 100 = 0 THEN 'LMS answered 503' ELSE '' END,
					CASE WHEN g %% 100 = 0 AND g %% 1000 <> 0 THEN %s + INTERVAL '1 hour' END, %s, %s
				FROM generate_series(1, %d) g`, users, ts, ts, ts, n),
			fmt.Sprintf(`INSERT INTO order_lines (id, order_id, product_id, product_class, title, sku, attributes, quantity,
					unit_price_minor, line_price_minor, status, attempts, last_error, needs_attention, next_attempt_at, fulfilled_at)
				SELECT g, g, %d, 'Seat', 'Seat in Bench', '%s', '{}', 1, 0, 0,
					CASE WHEN g %% 100 = 0 THEN 'Fulfillment Server Error' ELSE 'Complete' END, 1,
					CASE WHEN g %% 100 = 0 THEN 'LMS answered 503' ELSE '' END, g %% 1000 = 0,
					CASE WHEN g %% 100 = 0 AND g %% 1000 <> 0 THEN %s + INTERVAL '1 hour' END,
					CASE WHEN g %% 100 <> 0 THEN %s END
				FROM generate_series(1, %d) g`, p.ID, p.Stock.SKU, ts, ts, n),
		}
		for _, t := range []string{"users", "baskets", "orders", "order_lines"} {
			stmts = append(stmts, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), (SELECT max(id) FROM %s))`, t, t))
		}
		stmts = append(stmts, `ANALYZE`)
	} else {
		path := strings.TrimPrefix(url, "sqlite:")
		raw, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
		require.NoError(b, err)
		seq := fmt.Sprintf(`WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d) `, n)
		at := func(extra string) string {
			return fmt.Sprintf(`(strftime('%%Y-%%m-%%dT%%H:%%M:%%S', '%s', '-' || (%d - g) || ' seconds'%s) || '.000000Z')`,
				now.Format("2006-01-02 15:04:05"), n, extra)
		}
		ts, later := at(""), at(", '+1 hour'")
		stmts = []string{
			fmt.Sprintf(`WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d)
				INSERT INTO users (id, username, email, created_at, updated_at)
				SELECT g, 'bench-u' || g, 'bench-u' || g || '@example.com', '%s', '%s' FROM s`, users,
				now.Format("2006-01-02T15:04:05.000000Z"), now.Format("2006-01-02T15:04:05.000000Z")),
			seq + fmt.Sprintf(`INSERT INTO baskets (id, owner_id, status, created_at, updated_at)
				SELECT g, 1 + g %% %d, 'Submitted', %s, %s FROM s`, users, ts, ts),
			seq + fmt.Sprintf(`INSERT INTO orders (id, number, basket_id, user_id, status, currency, total_minor, needs_attention, attempts,
					last_error, next_attempt_at, date_placed, updated_at)
				SELECT g, 'EDX-' || (g + 100000), g, 1 + g %% %d,
					CASE WHEN g %% 100 = 0 THEN 'Fulfillment Error' ELSE 'Complete' END, 'USD', 0, g %% 1000 = 0, 1,
					CASE WHEN g %% 100 = 0 THEN 'LMS answered 503' ELSE '' END,
					CASE WHEN g %% 100 = 0 AND g %% 1000 <> 0 THEN %s END, %s, %s FROM s`, users, later, ts, ts),
			seq + fmt.Sprintf(`INSERT INTO order_lines (id, order_id, product_id, product_class, title, sku, attributes, quantity,
					unit_price_minor, line_price_minor, status, attempts, last_error, needs_attention, next_attempt_at, fulfilled_at)
				SELECT g, g, %d, 'Seat', 'Seat in Bench', '%s', '{}', 1, 0, 0,
					CASE WHEN g %% 100 = 0 THEN 'Fulfillment Server Error' ELSE 'Complete' END, 1,
					CASE WHEN g %% 100 = 0 THEN 'LMS answered 503' ELSE '' END, g %% 1000 = 0,
					CASE WHEN g %% 100 = 0 AND g %% 1000 <> 0 THEN %s END,
					CASE WHEN g %% 100 <> 0 THEN %s END FROM s`, p.ID, p.Stock.SKU, later, ts),
			`ANALYZE`,
		}
	}
	defer raw.Close()
	for _, s := range stmts {
		_, err := raw.Exec(s)
		require.NoError(b, err, "%s", s)
	}
	return now
}
