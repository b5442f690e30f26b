package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"fulfill/internal/checkout"
	"time"
)

// BeginIdempotent claims (username, key) for a request whose body hashes
// to hash. A claim never finished within stale is taken over.
func (db *DB) BeginIdempotent(ctx context.Context, username, key, hash string, stale time.Duration) (checkout.Idempotency, error) {
	now := db.clock()
	var out checkout.Idempotency
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (username, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (username, key) DO NOTHING`, username, key, hash, db.ts(now))
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out.Proceed = true
			return nil
		}
		var h, body string
		var status int
		var created nullTime
		err = tx.QueryRowContext(ctx, `SELECT request_hash, status_code, response_body, created_at FROM idempotency_keys
			WHERE username = $1 AND key = $2`+db.forUpdate(), username, key).Scan(&h, &status, &body, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("idempotency key vanished: %w", err)
		}
		if err != nil {
			return err
		}
		switch {
		case h != hash:
			out.Mismatch = true
		case status != 0:
			out.Status, out.Body = status, []byte(body)
		case now.Sub(created.Time) > stale:
			_, err = tx.ExecContext(ctx, `UPDATE idempotency_keys SET created_at = $1 WHERE username = $2 AND key = $3`, db.ts(now), username, key)
			out.Proceed = true
		default:
			out.InFlight = true
		}
		return err
	})
	return out, err
}

// FinishIdempotent stores the answer to replay for (username, key).
func (db *DB) FinishIdempotent(ctx context.Context, username, key string, status int, body []byte) error {
	_, err := db.wr.ExecContext(ctx, `UPDATE idempotency_keys SET status_code = $1, response_body = $2 WHERE username = $3 AND key = $4`,
		status, string(body), username, key)
	if err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	return nil
}

// AbandonIdempotent forgets a claim whose request failed before it could
// answer, so that the client may try again with the same key.
func (db *DB) AbandonIdempotent(ctx context.Context, username, key string) error {
	_, err := db.wr.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE username = $1 AND key = $2 AND status_code = 0`, username, key)
	return err
}
