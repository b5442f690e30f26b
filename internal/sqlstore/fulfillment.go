package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
)

var _ fulfillment.Store = (*DB)(nil)

// ClaimOrder implements fulfillment.Store.
func (db *DB) ClaimOrder(ctx context.Context, number, owner string, now, until time.Time) (fulfillment.Claim, error) {
	var c fulfillment.Claim
	var claimed []int64
	err := db.tx(ctx, func(tx *Tx) error {
		var id int64
		var status order.Status
		err := tx.QueryRowContext(ctx, `SELECT id, status FROM orders WHERE number = $1`, number).Scan(&id, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("order %q: %w", number, order.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("claim order: %w", err)
		}
		if !status.Fulfillable() {
			return fmt.Errorf("order %s is %s: %w", number, status, order.ErrNotFulfillable)
		}
		// A line with a refund (not Denied) is being given back: never
		// delivered now.
		rows, err := tx.QueryContext(ctx, `UPDATE order_lines SET lease_owner = $1, lease_until = $2
			WHERE order_id = $3 AND status <> 'Complete' AND (lease_until IS NULL OR lease_until < $4)
			AND NOT EXISTS (SELECT 1 FROM refund_lines rl WHERE rl.order_line_id = order_lines.id AND rl.status <> 'Denied') RETURNING id`,
			owner, db.ts(until), id, db.ts(now))
		if err != nil {
			return fmt.Errorf("lease lines: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var lid int64
			if err := rows.Scan(&lid); err != nil {
				return err
			}
			claimed = append(claimed, lid)
		}
		return rows.Err()
	})
	if err != nil && !errors.Is(err, order.ErrNotFulfillable) {
		return c, err
	}
	o, gerr := db.GetOrder(ctx, number)
	if gerr != nil {
		return c, gerr
	}
	c.Order = o
	c.Lines, c.Owner = pick(o, claimed), owner
	return c, err
}

func pick(o order.Order, ids []int64) []order.Line {
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []order.Line
	for _, l := range o.Lines {
		if want[l.ID] {
			out = append(out, l)
		}
	}
	return out
}

// ClaimDue implements fulfillment.Store: it leases up to limit lines whose
// next attempt is due and whose lease is free or expired, in due order,
// leaving alone the lines of the product classes in skip (their module's
// breaker is open: they stay as they are, unwritten, until it closes).
func (db *DB) ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int, skip []catalog.Class) ([]fulfillment.Claim, error) {
	// due is the condition, with now as argument $n and the skipped
	// classes from argument $k+1 on.
	due := func(n, k int) string {
		c := fmt.Sprintf(`next_attempt_at <= $%d AND (lease_until IS NULL OR lease_until < $%d)`, n, n)
		if len(skip) > 0 {
			c += ` AND product_class NOT IN (` + inList(len(skip), k) + `)`
		}
		return c
	}
	classes := make([]any, len(skip))
	for i, c := range skip {
		classes[i] = string(c)
	}
	// A look on a reader first: a worker with nothing to claim (nothing
	// due, or every due line paused by an open breaker) takes no write
	// transaction, so it never holds SQLite's writer to find nothing.
	var one int
	err := db.rd.QueryRowContext(ctx, `SELECT 1 FROM order_lines WHERE `+due(1, 1)+` LIMIT 1`,
		append([]any{db.ts(now)}, classes...)...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for due lines: %w", err)
	}
	byOrder := map[int64][]int64{}
	var orderIDs []int64
	err = db.tx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE order_lines SET lease_owner = $1, lease_until = $2
			WHERE id IN (SELECT id FROM order_lines WHERE `+due(3, 4)+`
				ORDER BY next_attempt_at LIMIT $4`+db.skipLocked()+`)
			RETURNING id, order_id`, append([]any{owner, db.ts(until), db.ts(now), limit}, classes...)...)
		if err != nil {
			return fmt.Errorf("lease due lines: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, oid int64
			if err := rows.Scan(&id, &oid); err != nil {
				return err
			}
			if _, ok := byOrder[oid]; !ok {
				orderIDs = append(orderIDs, oid)
			}
			byOrder[oid] = append(byOrder[oid], id)
		}
		return rows.Err()
	})
	if err != nil || len(orderIDs) == 0 {
		return nil, err
	}
	var os []order.Order
	err = db.read(ctx, func(tx *Tx) error {
		os, err = db.loadOrders(ctx, tx, orderIDs)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]fulfillment.Claim, 0, len(os))
	for _, o := range os {
		out = append(out, fulfillment.Claim{Order: o, Lines: pick(o, byOrder[o.ID]), Owner: owner})
	}
	return out, nil
}

// RecordOutcome implements fulfillment.Store: it writes what the domain
// computed, in one transaction. Every line write is a compare-and-set on
// status and lease: a holder whose lease was taken over writes nothing for
// that line but its attempt. The order then rolls up from all its lines as
// committed (order.Summarize). On PostgreSQL the writes after the roll-up
// are one statement, and so are a single line's write and the read of the
// lines (chainPostgres, lineChangeAndReadPostgres): lock, line, the rest.
func (db *DB) RecordOutcome(ctx context.Context, out fulfillment.Outcome) (order.Order, error) {
	if o, ok, err := db.recordOneLine(ctx, out); err != nil || ok {
		return o, err
	}
	var number string
	o := out.Order
	var newNotes []order.Note
	err := db.tx(ctx, func(tx *Tx) error {
		newNotes = newNotes[:0]
		var from order.Status
		if err := tx.QueryRowContext(ctx, `SELECT number, status FROM orders WHERE id = $1`+db.forUpdate(), out.OrderID).Scan(&number, &from); err != nil {
			return fmt.Errorf("lock order %d: %w", out.OrderID, err)
		}
		var hist []order.HistoryEntry
		var attempts []*order.Attempt
		var notes []fulfillment.LineChange
		// applied books a line move that was written.
		applied := func(ch fulfillment.LineChange) {
			if ch.From != ch.To {
				hist = append(hist, order.HistoryEntry{LineID: ch.LineID, From: string(ch.From), To: string(ch.To),
					Reason: "fulfillment", Actor: out.Actor, CreatedAt: out.Now})
			}
			if ch.Note != "" {
				notes = append(notes, ch)
				newNotes = append(newNotes, order.Note{LineID: ch.LineID, Kind: order.NoteError, Message: ch.Note, CreatedAt: out.Now})
			}
		}
		var lines []order.Line
		if db.Engine == Postgres && len(out.Changes) == 1 {
			// The checkout's case: one line, written and the order's lines
			// read back in one statement (dialect.go).
			ch := out.Changes[0]
			if ch.Attempt != nil {
				attempts = append(attempts, ch.Attempt)
			}
			var ok bool
			var err error
			if lines, ok, err = db.writeLineChangeAndRead(ctx, tx, out, ch); err != nil {
				return err
			}
			if ok {
				applied(ch)
			}
		} else {
			for _, ch := range out.Changes {
				if ch.Attempt != nil {
					attempts = append(attempts, ch.Attempt)
				}
				ok, err := db.writeLineChange(ctx, tx, out, ch)
				if err != nil {
					return err
				}
				if ok {
					applied(ch) // else the lease was lost: the new holder decides this line
				}
			}
			var err error
			if lines, err = db.committedLines(ctx, tx, out.OrderID); err != nil {
				return err
			}
		}
		sum, err := order.Summarize(from, lines)
		if err != nil {
			return err
		}
		if sum.Status != from {
			hist = append(hist, order.HistoryEntry{From: string(from), To: string(sum.Status), Reason: "fulfillment", Actor: out.Actor, CreatedAt: out.Now})
		}
		inc := 0
		if len(attempts) > 0 {
			inc = 1
		}
		update := stmt{`UPDATE orders SET status = $1, needs_attention = $2, next_attempt_at = $3, last_error = $4,
			attempts = attempts + $5, updated_at = $6 WHERE id = $7 AND status = $8 RETURNING attempts`,
			[]any{sum.Status, sum.NeedsAttention, db.tsp(sum.NextAttemptAt), sum.LastError, inc, db.ts(out.Now), out.OrderID, from}}
		var attemptsNow int
		if db.Engine == Postgres {
			// Attempts, history, notes and the order in
			// one statement (dialect.go).
			var ctes []cte
			for _, c := range []cte{{"a", db.attemptRows(out.OrderID, attempts).values()}, {"h", db.historyRows(out.OrderID, hist).values()},
				{"n", db.noteRows(out.OrderID, notes, out.Now).values()}} {
				if c.sql != "" {
					ctes = append(ctes, c)
				}
			}
			all := chainPostgres(ctes, update)
			err = tx.QueryRowContext(ctx, all.sql, all.args...).Scan(&attemptsNow)
		} else {
			if err := db.insertAttempts(ctx, tx, out.OrderID, attempts); err != nil {
				return err
			}
			if err := db.insertHistory(ctx, tx, out.OrderID, hist); err != nil {
				return err
			}
			if err := db.insertNotes(ctx, tx, out.OrderID, notes, out.Now); err != nil {
				return err
			}
			err = tx.QueryRowContext(ctx, update.sql, update.args...).Scan(&attemptsNow)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("order %d: %w", out.OrderID, order.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		if o.ID == out.OrderID {
			fresh := make(map[int64]order.Line, len(lines))
			for _, l := range lines {
				fresh[l.ID] = l
			}
			o.Refresh(sum, attemptsNow, out.Now, fresh)
		}
		return nil
	})
	if err != nil {
		return order.Order{}, err
	}
	if o.ID != out.OrderID {
		return db.GetOrder(ctx, number)
	}
	o.Notes = append(append([]order.Note(nil), o.Notes...), newNotes...)
	return o, nil
}

// recordOneLine is RecordOutcome for the checkout's case, an attempt on
// (or a skip of) the only line of an order given as claimed. Such a line's
// state after the write is known (an attempt sets every column Summarize
// reads; a skip keeps the last error it was claimed with), so
// the order's roll-up is computed before the write instead of read back,
// and the line is written only if the order is still in the status it was
// claimed in and the line still leased by out.Owner; the other rows are
// written only if the line was. On PostgreSQL that is one statement sent
// outside any transaction (PostgreSQL runs it as its own), one round trip
// instead of five (recordOneLinePostgres); on SQLite two statements fewer
// (recordOneLineSQLite). It reports false, having written nothing, when
// the case does not apply or the line was not written: RecordOutcome's
// transaction then decides, as it does for every other outcome.
func (db *DB) recordOneLine(ctx context.Context, out fulfillment.Outcome) (order.Order, bool, error) {
	o := out.Order
	if len(out.Changes) != 1 || o.ID != out.OrderID || len(o.Lines) != 1 || o.Lines[0].ID != out.Changes[0].LineID {
		return order.Order{}, false, nil
	}
	ch := out.Changes[0]
	line, err := db.lineChangeStmt(out, ch)
	if err != nil {
		return order.Order{}, false, err
	}
	// A move without an attempt (a skip: the module's breaker is open)
	// keeps the line's last error, which no one but the lease holder
	// writes: the one it was claimed with.
	lastError, inc := o.Lines[0].LastError, 0
	var attempts []*order.Attempt
	if ch.Attempt != nil {
		_, _, lastError = ch.Failure()
		inc = 1
		attempts = append(attempts, ch.Attempt)
	}
	next := ch.NextAttemptAt
	if next != nil {
		t := next.UTC().Truncate(time.Microsecond) // as stored, so as the transaction path reads it back
		next = &t
	}
	after := order.Line{ID: ch.LineID, Status: ch.To, NeedsAttention: ch.NeedsAttention, NextAttemptAt: next, LastError: lastError}
	sum, err := order.Summarize(o.Status, []order.Line{after})
	if err != nil {
		return order.Order{}, false, err
	}
	var hist []order.HistoryEntry
	if ch.From != ch.To {
		hist = append(hist, order.HistoryEntry{LineID: ch.LineID, From: string(ch.From), To: string(ch.To),
			Reason: "fulfillment", Actor: out.Actor, CreatedAt: out.Now})
	}
	if sum.Status != o.Status {
		hist = append(hist, order.HistoryEntry{From: string(o.Status), To: string(sum.Status), Reason: "fulfillment", Actor: out.Actor, CreatedAt: out.Now})
	}
	var notes []fulfillment.LineChange
	if ch.Note != "" {
		notes = append(notes, ch)
	}
	ord := stmt{`UPDATE orders SET status = $1, needs_attention = $2, next_attempt_at = $3, last_error = $4,
		attempts = attempts + $5, updated_at = $6 WHERE id = $7`,
		[]any{sum.Status, sum.NeedsAttention, db.tsp(sum.NextAttemptAt), sum.LastError, inc, db.ts(out.Now), out.OrderID}}
	var attemptsNow int
	var fresh order.Line
	var applied bool
	if db.Engine == Postgres {
		applied, err = db.recordOneLinePostgres(ctx, out, line, ord, attempts, hist, notes, &attemptsNow, &fresh)
	} else {
		applied, err = db.recordOneLineSQLite(ctx, out, line, ord, attempts, hist, notes, &attemptsNow, &fresh)
	}
	if err != nil || !applied {
		return order.Order{}, false, err
	}
	o.Refresh(sum, attemptsNow, out.Now, map[int64]order.Line{fresh.ID: fresh})
	if ch.Note != "" {
		o.Notes = append(append([]order.Note(nil), o.Notes...), order.Note{LineID: ch.LineID, Kind: order.NoteError, Message: ch.Note, CreatedAt: out.Now})
	}
	return o, true, nil
}

// recordOneLinePostgres is recordOneLine's write on PostgreSQL: line, an
// UPDATE of the line without RETURNING; order, the order's UPDATE without
// WHERE's end. It reports whether the line was written, then reading the
// order's attempts and the line as committed.
func (db *DB) recordOneLinePostgres(ctx context.Context, out fulfillment.Outcome, line, ord stmt, as []*order.Attempt,
	hist []order.HistoryEntry, notes []fulfillment.LineChange, attempts *int, fresh *order.Line) (bool, error) {
	line.sql += fmt.Sprintf(` AND (SELECT status FROM l) = $%d RETURNING `+committedLineCols, len(line.args)+1)
	line.args = append(line.args, out.Order.Status)
	ctes := []cte{
		{"l", stmt{`SELECT status FROM orders WHERE id = $1 FOR UPDATE`, []any{out.OrderID}}},
		{"u", line},
	}
	for _, c := range []cte{{"a", db.attemptRows(out.OrderID, as).from("u")},
		{"h", db.historyRows(out.OrderID, hist).from("u")}, {"n", db.noteRows(out.OrderID, notes, out.Now).from("u")}} {
		if c.sql != "" {
			ctes = append(ctes, c)
		}
	}
	ord.sql += ` AND EXISTS (SELECT 1 FROM u) RETURNING attempts`
	ctes = append(ctes, cte{"o", ord})
	all := chainPostgres(ctes, stmt{`SELECT o.attempts, u.* FROM o, u`, nil})
	rows, err := db.w.QueryContext(ctx, all.sql, all.args...)
	if err != nil {
		return false, fmt.Errorf("record outcome of order %d: %w", out.OrderID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("record outcome of order %d: %w", out.OrderID, err)
		}
		return false, nil
	}
	if *fresh, err = scanCommittedLine(rows, attempts); err != nil {
		return false, err
	}
	return true, rows.Close()
}

// recordOneLineSQLite is recordOneLinePostgres on SQLite, in a write
// transaction of the group commit: there the transaction holds the only
// write lock, so the order needs no lock of its own and its status is
// checked in the line's UPDATE; the writes follow only if the line was
// written. Two statements fewer than RecordOutcome's transaction (the
// order's read and its lines' read).
func (db *DB) recordOneLineSQLite(ctx context.Context, out fulfillment.Outcome, line, ord stmt, as []*order.Attempt,
	hist []order.HistoryEntry, notes []fulfillment.LineChange, attempts *int, fresh *order.Line) (bool, error) {
	n := len(line.args)
	line.sql += fmt.Sprintf(` AND (SELECT status FROM orders WHERE id = $%d) = $%d RETURNING `+committedLineCols, n+1, n+2)
	line.args = append(line.args, out.OrderID, out.Order.Status)
	ord.sql += ` RETURNING attempts`
	var applied bool
	err := db.tx(ctx, func(tx *Tx) error {
		applied = false
		rows, err := tx.QueryContext(ctx, line.sql, line.args...)
		if err != nil {
			return fmt.Errorf("update line %d: %w", out.Changes[0].LineID, err)
		}
		if !rows.Next() {
			rows.Close()
			return rows.Err()
		}
		*fresh, err = scanCommittedLine(rows)
		rows.Close()
		if err != nil {
			return err
		}
		if err := db.insertAttempts(ctx, tx, out.OrderID, as); err != nil {
			return err
		}
		if err := db.insertHistory(ctx, tx, out.OrderID, hist); err != nil {
			return err
		}
		if err := db.insertNotes(ctx, tx, out.OrderID, notes, out.Now); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, ord.sql, ord.args...).Scan(attempts); err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		applied = true
		return nil
	})
	return applied, err
}

// writeLineChange writes one line's move with compare-and-set on its
// status and on the writer's lease, and reports whether it applied. A move
// without an attempt (a skip) keeps the line's last error.
func (db *DB) writeLineChange(ctx context.Context, tx *Tx, out fulfillment.Outcome, ch fulfillment.LineChange) (bool, error) {
	s, err := db.lineChangeStmt(out, ch)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, s.sql, s.args...)
	if err != nil {
		return false, fmt.Errorf("update line %d: %w", ch.LineID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// writeLineChangeAndRead is writeLineChange and committedLines in one
// statement, on PostgreSQL (lineChangeAndReadPostgres).
func (db *DB) writeLineChangeAndRead(ctx context.Context, tx *Tx, out fulfillment.Outcome, ch fulfillment.LineChange) ([]order.Line, bool, error) {
	s, err := db.lineChangeStmt(out, ch)
	if err != nil {
		return nil, false, err
	}
	s = lineChangeAndReadPostgres(s, out.OrderID)
	rows, err := tx.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return nil, false, fmt.Errorf("update line %d: %w", ch.LineID, err)
	}
	defer rows.Close()
	var lines []order.Line
	applied := false
	for rows.Next() {
		var written bool
		l, err := scanCommittedLine(rows, &written)
		if err != nil {
			return nil, false, err
		}
		applied = applied || written
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("update line %d: %w", ch.LineID, err)
	}
	return lines, applied, nil
}

// lineChangeStmt is the compare-and-set UPDATE of writeLineChange.
func (db *DB) lineChangeStmt(out fulfillment.Outcome, ch fulfillment.LineChange) (stmt, error) {
	// The named moves checked this already; the store refuses to write an
	// illegal one whoever built it.
	if err := order.LineTransition(ch.From, ch.To); err != nil {
		return stmt{}, err
	}
	var fulfilledAt any
	if ch.To == order.LineComplete {
		fulfilledAt = db.ts(out.Now)
	}
	inc := 0
	if ch.Attempt != nil {
		inc = 1
	}
	class, status, msg := ch.Failure()
	data := ""
	if ch.Data != nil {
		raw, err := json.Marshal(ch.Data)
		if err != nil {
			return stmt{}, err
		}
		data = string(raw)
	}
	return stmt{`UPDATE order_lines SET status = $1, attempts = attempts + $2,
		last_error_class = CASE WHEN $2 = 0 THEN last_error_class ELSE $3 END,
		last_http_status = CASE WHEN $2 = 0 THEN last_http_status ELSE $4 END,
		last_error = CASE WHEN $2 = 0 THEN last_error ELSE $5 END,
		needs_attention = $6, next_attempt_at = $7, fulfilled_at = $8, lease_owner = NULL, lease_until = NULL,
		fulfillment_data = CASE WHEN $13 = '' THEN fulfillment_data ELSE $13 END
		WHERE id = $9 AND order_id = $10 AND status = $11 AND lease_owner = $12`,
		[]any{ch.To, inc, string(class), status, msg, ch.NeedsAttention, db.tsp(ch.NextAttemptAt), fulfilledAt,
			ch.LineID, out.OrderID, ch.From, out.Owner, data}}, nil
}

// committedLines reads the fields of an order's lines that fulfillment
// changes, as this transaction sees them.
func (db *DB) committedLines(ctx context.Context, tx *Tx, orderID int64) ([]order.Line, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+committedLineCols+` FROM order_lines WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read lines: %w", err)
	}
	defer rows.Close()
	var out []order.Line
	for rows.Next() {
		l, err := scanCommittedLine(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// committedLineCols are the columns committedLines reads.
const committedLineCols = `id, status, needs_attention, next_attempt_at, last_error, attempts, last_error_class,
	last_http_status, fulfilled_at, fulfillment_data`

// scanCommittedLine scans the committedLineCols of a row, after the
// columns into before.
func scanCommittedLine(rows *sql.Rows, before ...any) (order.Line, error) {
	var l order.Line
	var nt, done nullTime
	var data string
	if err := rows.Scan(append(before, &l.ID, &l.Status, &l.NeedsAttention, &nt, &l.LastError, &l.Attempts, &l.LastErrorClass,
		&l.LastHTTPStatus, &done, &data)...); err != nil {
		return l, err
	}
	l.NextAttemptAt, l.FulfilledAt = nt.ptr(), done.ptr()
	if data != "" && data != "{}" {
		_ = json.Unmarshal([]byte(data), &l.FulfillmentData)
	}
	return l, nil
}

func (db *DB) insertAttempts(ctx context.Context, tx *Tx, orderID int64, as []*order.Attempt) error {
	s := db.attemptRows(orderID, as).values()
	if s.sql == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
		return fmt.Errorf("insert attempts: %w", err)
	}
	return nil
}

// attemptRows are the fulfillment_attempts rows of as.
func (db *DB) attemptRows(orderID int64, as []*order.Attempt) rowsInsert {
	args := make([]any, 0, 10*len(as))
	for _, a := range as {
		args = append(args, orderID, a.LineID, a.Number, a.Actor, a.Module, db.ts(a.StartedAt), a.Duration.Microseconds(), a.Outcome, a.HTTPStatus, a.Message)
	}
	return rowsInsert{attemptsTable, args}
}

func (db *DB) insertNotes(ctx context.Context, tx *Tx, orderID int64, chs []fulfillment.LineChange, now time.Time) error {
	s := db.noteRows(orderID, chs, now).values()
	if s.sql == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
		return fmt.Errorf("insert notes: %w", err)
	}
	return nil
}

// noteRows are the order_notes rows of the error notes of chs.
func (db *DB) noteRows(orderID int64, chs []fulfillment.LineChange, now time.Time) rowsInsert {
	args := make([]any, 0, 5*len(chs))
	for _, ch := range chs {
		args = append(args, orderID, ch.LineID, order.NoteError, ch.Note, db.ts(now))
	}
	return rowsInsert{notesTable, args}
}

// MarkComplete forces a Fulfillment Error order and its unfinished lines to
// Complete without calling any module (Otto's mark_orders_status_complete),
// recording who and why. Lines under a live lease make it fail with
// order.ErrConflict; other statuses with order.ErrNotFulfillable.
func (db *DB) MarkComplete(ctx context.Context, number, actor, reason string) (order.Order, error) {
	now := db.clock()
	err := db.tx(ctx, func(tx *Tx) error {
		var id int64
		var from order.Status
		err := tx.QueryRowContext(ctx, `SELECT id, status FROM orders WHERE number = $1`+db.forUpdate(), number).Scan(&id, &from)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("order %q: %w", number, order.ErrNotFound)
		}
		if err != nil {
			return err
		}
		// Otto marks only failed orders complete; the move itself is the
		// table's.
		if from != order.StatusFulfillmentError {
			return fmt.Errorf("order %s is %s, only %s orders can be marked complete: %w", number, from, order.StatusFulfillmentError, order.ErrNotFulfillable)
		}
		if err := order.Transition(from, order.StatusComplete); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, status, lease_until FROM order_lines WHERE order_id = $1 AND status <> 'Complete'`+db.forUpdate(), id)
		if err != nil {
			return fmt.Errorf("read lines: %w", err)
		}
		var hist []order.HistoryEntry
		var lines []int64
		for rows.Next() {
			var lid int64
			var st order.LineStatus
			var lease nullTime
			if err := rows.Scan(&lid, &st, &lease); err != nil {
				rows.Close()
				return err
			}
			if err := order.LineTransition(st, order.LineComplete); err != nil {
				rows.Close()
				return err
			}
			if lease.Valid && !lease.Time.Before(now) {
				rows.Close()
				return fmt.Errorf("order %s has lines being fulfilled right now: %w", number, order.ErrConflict)
			}
			lines = append(lines, lid)
			hist = append(hist, order.HistoryEntry{LineID: lid, From: string(st), To: string(order.LineComplete), Reason: reason, Actor: actor, CreatedAt: now})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The same lease condition again: on PostgreSQL a claim may have
		// slipped in between the read and this write.
		// Delivered by a person: the failure it had is history now (the
		// attempts and notes keep it), not the line's last error.
		res, err := tx.ExecContext(ctx, `UPDATE order_lines SET status = 'Complete', fulfilled_at = $1, next_attempt_at = NULL,
			needs_attention = $2, lease_owner = NULL, lease_until = NULL, last_error = '', last_error_class = '', last_http_status = 0
			WHERE order_id = $3 AND status <> 'Complete' AND (lease_until IS NULL OR lease_until < $1)`, db.ts(now), false, id)
		if err != nil {
			return fmt.Errorf("complete lines: %w", err)
		}
		if n, _ := res.RowsAffected(); int(n) != len(lines) {
			return fmt.Errorf("order %s has lines being fulfilled right now: %w", number, order.ErrConflict)
		}
		hist = append(hist, order.HistoryEntry{From: string(from), To: string(order.StatusComplete), Reason: reason, Actor: actor, CreatedAt: now})
		if err := db.insertHistory(ctx, tx, id, hist); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE orders SET status = 'Complete', needs_attention = $1, next_attempt_at = NULL, last_error = '', updated_at = $2
			WHERE id = $3 AND status = $4`, false, db.ts(now), id, from)
		return err
	})
	if err != nil {
		return order.Order{}, err
	}
	return db.GetOrder(ctx, number)
}

// QueueStats reports the retry queue: lines due now, how long the oldest
// has waited, and orders needing attention.
func (db *DB) QueueStats(ctx context.Context, now time.Time) (due int64, oldest time.Duration, attention int64, err error) {
	var min nullTime
	if err = db.rd.QueryRowContext(ctx, `SELECT COUNT(*), MIN(next_attempt_at) FROM order_lines WHERE next_attempt_at <= $1`, db.ts(now)).Scan(&due, &min); err != nil {
		return 0, 0, 0, fmt.Errorf("queue stats: %w", err)
	}
	if min.Valid {
		oldest = now.Sub(min.Time)
	}
	if err = db.rd.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE needs_attention = $1`, true).Scan(&attention); err != nil {
		return 0, 0, 0, fmt.Errorf("queue stats: %w", err)
	}
	return due, oldest, attention, nil
}
