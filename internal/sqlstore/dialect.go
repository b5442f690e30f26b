package sqlstore

import (
	"errors"
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
