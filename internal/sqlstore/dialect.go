package sqlstore

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// forUpdate locks the selected rows until the transaction ends. PostgreSQL
// needs it so that two replicas do not read the same row and both act on
// it; SQLite has no row locks and needs none: an immediate transaction
// already holds the only write lock of the database.
func (db *DB) forUpdate() string {
	if db.Engine == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// skipLocked lets concurrent workers on PostgreSQL each lease different due
// lines instead of queueing behind one another.
func (db *DB) skipLocked() string {
	if db.Engine == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// isUniqueViolation reports whether err is a unique-index violation of the
// named index. PostgreSQL names the index (SQLSTATE 23505); SQLite names
// the columns ("UNIQUE constraint failed: t.a, t.b"), so both are given.
func isUniqueViolation(err error, pgIndex, sqliteColumns string) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" && pe.ConstraintName == pgIndex
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed: "+sqliteColumns)
}

// placeOrderPostgres is insertOrder's statement on PostgreSQL for an order
// of lines lines: the order, its "order placed" history row and its lines
// in one data-modifying CTE chain, one round trip instead of three (the
// foreign keys are checked at the end of the statement, when the order row
// exists). SQLite has no data-modifying CTEs: there insertOrder sends the
// three statements one by one. Arguments: $1–$7 the order (number, basket,
// user, status, currency, total, time), $8–$12 the history row (from, to,
// reason, actor, time), then orderLineCols per line (orderLinesPostgres).
// It returns order_id, id and sku of each line.
func placeOrderPostgres(lines int) string {
	var b strings.Builder
	b.WriteString(`WITH o AS (INSERT INTO orders (number, basket_id, user_id, status, currency, total_minor, date_placed, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id),
	h AS (INSERT INTO status_history (order_id, line_id, from_status, to_status, reason, actor, created_at)
		VALUES ((SELECT id FROM o), NULL, $8, $9, $10, $11, $12))
	`)
	orderLinesPostgres(&b, lines, 12, "$3")
	b.WriteString(` RETURNING order_id, id, sku`)
	return b.String()
}

// placeNewOrderPostgres is placeOrderAlone's statement: placeOrderPostgres
// with the user's upsert and the Submitted basket in front and the order's
// number made from the basket's id as insertOrder makes it. Arguments:
// $1–$5 the user (username, email, full name, staff, time, also every
// row's time), $6–$9 the basket (total, currency, voucher code, discounts),
// $10 the partner, $11 the order's status, $12–$15 the history row (from,
// to, reason, actor), then orderLineCols per line. It returns order_id, id
// and sku of each line, then the order's number, basket and user.
func placeNewOrderPostgres(lines int) string {
	var b strings.Builder
	b.WriteString(`WITH u AS (INSERT INTO users (username, email, full_name, is_staff, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (username) DO UPDATE SET email = excluded.email, full_name = excluded.full_name,
			is_staff = excluded.is_staff, updated_at = excluded.updated_at
		RETURNING id),
	b AS (INSERT INTO baskets (owner_id, status, payment_processor, total_minor, currency, frozen_at, created_at, updated_at,
			voucher_code, discounts)
		VALUES ((SELECT id FROM u), 'Submitted', '', $6, $7, NULL, $5, $5, $8, $9) RETURNING id),
	o AS (INSERT INTO orders (number, basket_id, user_id, status, currency, total_minor, date_placed, updated_at)
		VALUES ($10::text || '-' || ((SELECT id FROM b) + 100000), (SELECT id FROM b), (SELECT id FROM u), $11, $7, $6, $5, $5)
		RETURNING id, number, basket_id, user_id),
	h AS (INSERT INTO status_history (order_id, line_id, from_status, to_status, reason, actor, created_at)
		VALUES ((SELECT id FROM o), NULL, $12, $13, $14, $15, $5))
	`)
	orderLinesPostgres(&b, lines, 15, "(SELECT id FROM u)")
	b.WriteString(` RETURNING order_id, id, sku, (SELECT number FROM o), (SELECT basket_id FROM o), (SELECT user_id FROM o)`)
	return b.String()
}

// orderLinesPostgres writes the INSERT of the lines of order CTE o, the
// orderLineArgs of each from argument k+1 on, the last of them a boolean
// saying whether the line's holder_id is user, an SQL expression.
func orderLinesPostgres(b *strings.Builder, lines, k int, user string) {
	b.WriteString(`INSERT INTO order_lines (order_id, product_id, product_class, title, sku, attributes,
		quantity, unit_price_minor, line_price_minor, status, next_attempt_at, lease_owner, lease_until, course_key, holder_id) VALUES `)
	for r := range lines {
		if r > 0 {
			b.WriteString(", ")
		}
		at := k + r*orderLineCols
		fmt.Fprintf(b, "((SELECT id FROM o), %s, CASE WHEN $%d::boolean THEN %s END)", inList(orderLineCols-1, at), at+orderLineCols, user)
	}
}

// stmt is one SQL statement with its arguments.
type stmt struct {
	sql  string
	args []any
}

// cte is a statement to run as the named common table expression of
// another (chainPostgres).
type cte struct {
	name string
	stmt
}

// argRef is a $n argument reference.
var argRef = regexp.MustCompile(`\$([0-9]+)`)

// chainPostgres joins statements into one round trip on PostgreSQL:
// WITH ctes[0], ctes[1], … last, each one's $n renumbered after the
// arguments of those before it. The CTEs all run, to completion, on the
// statement's one snapshot: a later one sees an earlier one's rows only
// through its RETURNING (FROM name), and foreign keys are checked at the
// end of the statement. SQLite has no data-modifying CTEs: there the
// statements are sent one by one. The statements must hold no "$" but
// their arguments' (no dollar quoting, no "$" in literals).
func chainPostgres(ctes []cte, last stmt) stmt {
	if len(ctes) == 0 {
		return last
	}
	var b strings.Builder
	var args []any
	renumber := func(s stmt) string {
		k := len(args)
		args = append(args, s.args...)
		return argRef.ReplaceAllStringFunc(s.sql, func(ref string) string {
			n, _ := strconv.Atoi(ref[1:])
			return "$" + strconv.Itoa(n+k)
		})
	}
	b.WriteString("WITH ")
	for i, c := range ctes {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(c.name + " AS (" + renumber(c.stmt) + ")")
	}
	b.WriteString("\n" + renumber(last))
	return stmt{b.String(), args}
}

// insertTable is a table that rowsInsert writes: its columns' names and
// PostgreSQL types (for rowsInsert.from), split once.
type insertTable struct {
	name         string
	names, types []string
	columnList   string // "(a, b, …)"
}

// newInsertTable reads cols, "name type, …".
func newInsertTable(name, cols string) *insertTable {
	t := &insertTable{name: name}
	for _, c := range strings.Split(cols, ",") {
		f := strings.Fields(c)
		t.names, t.types = append(t.names, f[0]), append(t.types, f[1])
	}
	t.columnList = "(" + strings.Join(t.names, ", ") + ")"
	return t
}

// The append-only tables of an order, written by rowsInsert. Read-only
// after start-up.
var (
	historyTable = newInsertTable("status_history",
		"order_id bigint, line_id bigint, from_status text, to_status text, reason text, actor text, created_at timestamptz")
	attemptsTable = newInsertTable("fulfillment_attempts", `order_id bigint, line_id bigint, number integer, actor text,
		module text, started_at timestamptz, duration_us bigint, outcome text, http_status integer, message text`)
	notesTable = newInsertTable("order_notes", "order_id bigint, line_id bigint, kind text, message text, created_at timestamptz")
)

// rowsInsert is a multi-row INSERT of args, one row per column of t.
type rowsInsert struct {
	t    *insertTable
	args []any
}

// values is the INSERT … VALUES of r, on both engines ("" for no rows).
func (r rowsInsert) values() stmt {
	if len(r.args) == 0 {
		return stmt{}
	}
	n := len(r.t.names)
	return stmt{`INSERT INTO ` + r.t.name + ` ` + r.t.columnList + ` VALUES ` + placeholders(len(r.args)/n, n, 0), r.args}
}

// from is the INSERT of r as a CTE of chainPostgres that writes the rows
// only if the CTE guard returned a row: INSERT … SELECT … FROM guard UNION
// ALL …, on PostgreSQL only. Each argument is cast to its column's type:
// a SELECT, unlike VALUES, does not take its types from the columns.
func (r rowsInsert) from(guard string) stmt {
	if len(r.args) == 0 {
		return stmt{}
	}
	names, types := r.t.names, r.t.types
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + r.t.name + ` ` + r.t.columnList + ` `)
	for row := range len(r.args) / len(names) {
		if row > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT ")
		for i, t := range types {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d::%s", row*len(names)+i+1, t)
		}
		b.WriteString(" FROM " + guard)
	}
	return stmt{b.String(), r.args}
}

// lineChangeAndReadPostgres makes update, writeLineChange's UPDATE of one
// line of order orderID, also return the committedLineCols of all the
// order's lines, each after a flag that says whether it is the line
// written. The rest of the order's lines are read from the statement's
// snapshot, which misses only the update, hence the UNION of the updated
// row (RETURNING) with the others. SQLite has no data-modifying CTEs:
// there the update and the read are two statements.
func lineChangeAndReadPostgres(update stmt, orderID int64) stmt {
	k := len(update.args) + 1
	return stmt{fmt.Sprintf(`WITH u AS (%s RETURNING %s)
		SELECT true, %[2]s FROM u
		UNION ALL
		SELECT false, %[2]s FROM order_lines WHERE order_id = $%[3]d AND id NOT IN (SELECT id FROM u)
		ORDER BY 2`, update.sql, committedLineCols, k), append(update.args[:len(update.args):len(update.args)], orderID)}
}
