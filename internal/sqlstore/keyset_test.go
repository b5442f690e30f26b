package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore/sqlstoretest/pgschema"
)

// These tests read listOrdersSQL, so they live inside the package, where
// sqlstoretest (it imports sqlstore) cannot be used: openKeyset instead.

// openKeyset returns a migrated store on a fresh database of engine e.
func openKeyset(t *testing.T, e Engine) *DB {
	t.Helper()
	ctx := context.Background()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "keyset.db")
	if e == Postgres {
		dbURL = pgschema.New(t, os.Getenv("TEST_DATABASE_URL"), "ks")
	}
	db, err := Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx))
	return db
}

// TestListOrdersKeysetByDate pages through listings of orders whose
// date_placed is not in id order (as when replicas' clocks disagree), with
// ties: every matching order comes exactly once, newest first, at any page
// size, whether the listing is ordered by date (a date bound) or by id.
func TestListOrdersKeysetByDate(t *testing.T) {
	t.Parallel()
	for _, e := range testEngines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			testListOrdersKeysetByDate(t, openKeyset(t, e))
		})
	}
}

func testListOrdersKeysetByDate(t *testing.T, db *DB) {
	ctx := context.Background()
	free, err := money.Parse("0", "USD")
	require.NoError(t, err)
	c, err := db.PutCourse(ctx, catalog.Course{ID: "course-v1:KS+K1+Run", Name: "Keyset", Seats: []catalog.Seat{
		{Price: free}, {CertificateType: "verified", Price: free}, {CertificateType: "professional", Price: free}}})
	require.NoError(t, err)
	var skus []string
	for _, s := range c.Seats {
		skus = append(skus, s.SKU)
	}
	products, err := db.ProductsBySKU(ctx, skus)
	require.NoError(t, err)

	// Order i is placed at minute (7i mod 12) after t0: placement (id)
	// order and date order disagree, and every date is shared by two
	// orders 12 ids apart. Learner k<i/3> buys seat i mod 3.
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(minute int) *time.Time {
		v := t0.Add(time.Duration(minute) * time.Minute)
		return &v
	}
	const n = 24
	var all []order.Order
	for i := range n {
		placed := *at(7 * i % 12)
		db.SetClock(func() time.Time { return placed })
		user, sku := fmt.Sprintf("k%d", i/3), skus[i%3]
		b, err := basket.Build(order.User{Username: user, Email: user + "@example.com"}, []string{sku}, products, placed)
		require.NoError(t, err)
		o, err := db.PlaceOrder(ctx, b, user, lease.Lease{Owner: "keyset", Until: placed.Add(time.Hour)})
		require.NoError(t, err)
		all = append(all, o)
	}
	byID := func(a, b order.Order) int { return int(b.ID - a.ID) }
	byDate := func(a, b order.Order) int {
		if c := b.DatePlaced.Compare(a.DatePlaced); c != 0 {
			return c
		}
		return byID(a, b)
	}
	require.False(t, slices.Equal(keysetIDs(slices.SortedFunc(slices.Values(all), byID)), keysetIDs(slices.SortedFunc(slices.Values(all), byDate))),
		"the fixture must place orders out of id order")

	before := func(m int) func(order.Order) bool {
		return func(o order.Order) bool { return o.DatePlaced.Before(*at(m)) }
	}
	after := func(m int) func(order.Order) bool {
		return func(o order.Order) bool { return !o.DatePlaced.Before(*at(m)) }
	}
	both := func(ps ...func(order.Order) bool) func(order.Order) bool {
		return func(o order.Order) bool {
			for _, p := range ps {
				if !p(o) {
					return false
				}
			}
			return true
		}
	}
	bySKU := func(sku string) func(order.Order) bool {
		return func(o order.Order) bool { return o.Lines[0].SKU == sku }
	}
	byUser := func(u string) func(order.Order) bool {
		return func(o order.Order) bool { return o.User.Username == u }
	}
	for _, tc := range []struct {
		name string
		f    order.Filter
		keep func(order.Order) bool
		// newest first by (date placed, id) rather than by id
		byDate bool
	}{
		{"no date bound", order.Filter{}, func(order.Order) bool { return true }, false},
		{"placed_before", order.Filter{PlacedBefore: at(6)}, before(6), true},
		{"placed_after", order.Filter{PlacedAfter: at(5)}, after(5), true},
		{"placed_after and placed_before", order.Filter{PlacedAfter: at(2), PlacedBefore: at(10)}, both(after(2), before(10)), true},
		{"placed_before far in the past", order.Filter{PlacedBefore: at(1)}, before(1), true},
		{"placed_before and sku", order.Filter{PlacedBefore: at(9), SKU: skus[1]}, both(before(9), bySKU(skus[1])), true},
		{"placed_after and course", order.Filter{PlacedAfter: at(3), CourseID: c.ID}, after(3), true},
		{"placed_after and username", order.Filter{PlacedAfter: at(1), Username: "k2"}, both(after(1), byUser("k2")), true},
		{"placed_before and status", order.Filter{PlacedBefore: at(11), Status: order.StatusOpen}, before(11), true},
		{"sku only", order.Filter{SKU: skus[2]}, bySKU(skus[2]), false},
		{"nothing matches", order.Filter{PlacedBefore: at(0)}, before(0), true},
	} {
		var want []order.Order
		for _, o := range all {
			if tc.keep(o) {
				want = append(want, o)
			}
		}
		if tc.byDate {
			slices.SortFunc(want, byDate)
		} else {
			slices.SortFunc(want, byID)
		}
		count, err := db.CountOrders(ctx, tc.f)
		require.NoError(t, err)
		require.Equal(t, len(want), count, "%s: count", tc.name)
		for _, limit := range []int{1, 2, 5, 50} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				f := tc.f
				f.Limit = limit
				var got []order.Order
				for range n + 1 {
					page, err := db.ListOrders(ctx, f)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page), limit)
					got = append(got, page...)
					if len(page) < limit {
						break
					}
					f.AfterID = page[len(page)-1].ID
				}
				require.Equal(t, keysetIDs(want), keysetIDs(got), "every matching order once, newest first")
			})
		}
	}
}

func keysetIDs(os []order.Order) []int64 {
	out := make([]int64, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

// TestListOrdersByDatePlan checks that a listing bounded by date, first
// page or later, is one range of orders_date_placed_id with no sort, on a
// table large enough that a wrong plan would cost: a bound far in the past
// used to walk the primary key past every newer order. On PostgreSQL both
// plans pgx may run are checked: the custom plan of the first executions
// and the generic one it may switch to after five.
func TestListOrdersByDatePlan(t *testing.T) {
	t.Parallel()
	for _, e := range testEngines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := openKeyset(t, e)
			const n = 20_000
			t0 := fillKeysetOrders(t, db, n)
			at := func(i int) *time.Time { // order i's date
				v := t0.Add(time.Duration(i) * time.Second)
				return &v
			}
			for _, f := range []order.Filter{
				{PlacedBefore: at(n / 100)},
				{PlacedBefore: at(n / 100), AfterID: n/100 - 60},
				{PlacedBefore: at(n / 2)},
				{PlacedBefore: at(n / 2), AfterID: n / 3},
				{PlacedAfter: at(n - 3600)},
				{PlacedAfter: at(n - 3600), AfterID: n - 100},
				{PlacedAfter: at(n / 4), PlacedBefore: at(n / 2), AfterID: n / 3},
			} {
				f.Limit = 50
				q, args := db.listOrdersSQL(f)
				for _, plan := range keysetPlans(t, db, q, args) {
					require.Contains(t, plan, "orders_date_placed_id", "%+v: %s", f, plan)
					require.NotContains(t, plan, "Sort", "%+v: %s", f, plan)
					require.NotContains(t, plan, "TEMP B-TREE", "%+v: %s", f, plan)
					if db.Engine == Postgres && f.AfterID > 0 {
						// The cursor bounds the range, not a filter of it: a
						// page costs the same at any depth.
						require.Regexp(t, `"Index Cond": "[^"]*ROW\(date_placed, id\) <`, plan, "%+v", f)
					}
				}
				page, err := db.ListOrders(context.Background(), f)
				require.NoError(t, err)
				require.Len(t, page, 50, "%+v", f)
			}
		})
	}
}

// fillKeysetOrders inserts n orders of as many learners, ids 1 to n placed
// one second apart from t0, and refreshes the planner's statistics.
func fillKeysetOrders(t *testing.T, db *DB, n int) (t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var stmts []string
	if db.Engine == Postgres {
		ts := fmt.Sprintf(`TIMESTAMPTZ '%s' + (g * INTERVAL '1 second')`, t0.Format(time.RFC3339))
		stmts = []string{
			fmt.Sprintf(`INSERT INTO users (id, username, email, created_at, updated_at)
				SELECT g, 'ks' || g, 'ks' || g || '@example.com', now(), now() FROM generate_series(1, %d) g`, n),
			fmt.Sprintf(`INSERT INTO baskets (id, owner_id, status, created_at, updated_at)
				SELECT g, g, 'Submitted', %s, %s FROM generate_series(1, %d) g`, ts, ts, n),
			fmt.Sprintf(`INSERT INTO orders (id, number, basket_id, user_id, status, currency, total_minor, date_placed, updated_at)
				SELECT g, 'EDX-' || (g + 100000), g, g, 'Complete', 'USD', 0, %s, %s FROM generate_series(1, %d) g`, ts, ts, n),
			`ANALYZE`,
		}
	} else {
		seq := fmt.Sprintf(`WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d) `, n)
		ts := fmt.Sprintf(`strftime('%%Y-%%m-%%dT%%H:%%M:%%S', '%s', '+' || g || ' seconds') || '.000000Z'`, t0.Format("2006-01-02 15:04:05"))
		stmts = []string{
			seq + fmt.Sprintf(`INSERT INTO users (id, username, email, created_at, updated_at)
				SELECT g, 'ks' || g, 'ks' || g || '@example.com', %s, %s FROM s`, ts, ts),
			seq + fmt.Sprintf(`INSERT INTO baskets (id, owner_id, status, created_at, updated_at)
				SELECT g, g, 'Submitted', %s, %s FROM s`, ts, ts),
			seq + fmt.Sprintf(`INSERT INTO orders (id, number, basket_id, user_id, status, currency, total_minor, date_placed, updated_at)
				SELECT g, 'EDX-' || (g + 100000), g, g, 'Complete', 'USD', 0, %s, %s FROM s`, ts, ts),
			`ANALYZE`,
		}
	}
	for _, s := range stmts {
		_, err := db.w.ExecContext(ctx, s)
		require.NoError(t, err, "%s", s)
	}
	return t0
}

// keysetPlans returns the plans of q with args, as text: SQLite's one
// plan, or PostgreSQL's custom and generic plans.
func keysetPlans(t *testing.T, db *DB, q string, args []any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := db.w.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	if db.Engine == SQLite {
		rows, err := conn.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		require.NoError(t, err)
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		return []string{strings.Join(plan, "\n")}
	}
	// EXPLAIN of q itself would plan it for these arguments only; EXPLAIN
	// EXECUTE of a prepared q shows the plan plan_cache_mode picks.
	_, err = conn.ExecContext(ctx, "PREPARE keyset_plan AS "+q)
	require.NoError(t, err)
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	var plans []string
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		_, err := conn.ExecContext(ctx, "SET plan_cache_mode = "+mode)
		require.NoError(t, err)
		var raw string
		// EXECUTE takes no bound parameters: pgx writes them in as literals.
		require.NoError(t, conn.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) EXECUTE keyset_plan("+strings.Join(ph, ", ")+")",
			append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...).Scan(&raw))
		require.True(t, json.Valid([]byte(raw)), "plan is JSON: %s", raw)
		plans = append(plans, mode+": "+raw)
	}
	for _, s := range []string{"DEALLOCATE keyset_plan", "RESET plan_cache_mode"} {
		_, err = conn.ExecContext(ctx, s)
		require.NoError(t, err)
	}
	return plans
}
