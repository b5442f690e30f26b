-- +goose Up
-- What a fulfillment module got back for a line (an entitlement's uuid),
-- needed to revoke it.
ALTER TABLE order_lines ADD COLUMN fulfillment_data TEXT NOT NULL DEFAULT '{}';

-- Single-use codes issued by an Enrollment Code line (Otto's bulk purchase).
-- (order_line_id, seq) makes issuing idempotent: a retried line issues the
-- same N codes, never 2N.
CREATE TABLE enrollment_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    order_line_id BIGINT NOT NULL REFERENCES order_lines (id),
    seq INTEGER NOT NULL,
    seat_sku TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('available', 'redeemed', 'revoked')),
    redeemed_by TEXT NOT NULL DEFAULT '',
    redeemed_order TEXT NOT NULL DEFAULT '',
    redeemed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (order_line_id, seq)
);

-- +goose Down
DROP TABLE enrollment_codes;
ALTER TABLE order_lines DROP COLUMN fulfillment_data;
