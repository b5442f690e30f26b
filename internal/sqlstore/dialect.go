package sqlstore

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
