-- +goose Up
-- The append-only rows of an order lose their foreign keys, as on
-- PostgreSQL (see its 00010 for why). SQLite cannot drop a constraint, so
-- each table is rebuilt; without AUTOINCREMENT too, as these rows are never
-- deleted: a plain rowid keeps ids increasing without a write to
-- sqlite_sequence per insert. The shipping events go altogether in 00011.
CREATE TABLE order_notes_new (
    id INTEGER PRIMARY KEY,
    order_id BIGINT NOT NULL,
    line_id BIGINT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO order_notes_new SELECT id, order_id, line_id, kind, message, created_at FROM order_notes;
DROP TABLE order_notes;
ALTER TABLE order_notes_new RENAME TO order_notes;
CREATE INDEX order_notes_order_id ON order_notes (order_id);

CREATE TABLE status_history_new (
    id INTEGER PRIMARY KEY,
    order_id BIGINT NOT NULL,
    line_id BIGINT,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
INSERT INTO status_history_new SELECT id, order_id, line_id, from_status, to_status, reason, actor, created_at FROM status_history;
DROP TABLE status_history;
ALTER TABLE status_history_new RENAME TO status_history;
CREATE INDEX status_history_order_id ON status_history (order_id);

CREATE TABLE fulfillment_attempts_new (
    id INTEGER PRIMARY KEY,
    order_id BIGINT NOT NULL,
    line_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    actor TEXT NOT NULL,
    module TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    message TEXT NOT NULL
);
INSERT INTO fulfillment_attempts_new SELECT id, order_id, line_id, number, actor, module, started_at, duration_us, outcome, http_status, message
    FROM fulfillment_attempts;
DROP TABLE fulfillment_attempts;
ALTER TABLE fulfillment_attempts_new RENAME TO fulfillment_attempts;
CREATE INDEX fulfillment_attempts_line_id ON fulfillment_attempts (line_id);

-- +goose Down
CREATE TABLE fulfillment_attempts_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT NOT NULL REFERENCES order_lines (id),
    number INTEGER NOT NULL,
    actor TEXT NOT NULL,
    module TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    message TEXT NOT NULL
);
INSERT INTO fulfillment_attempts_old SELECT * FROM fulfillment_attempts;
DROP TABLE fulfillment_attempts;
ALTER TABLE fulfillment_attempts_old RENAME TO fulfillment_attempts;
CREATE INDEX fulfillment_attempts_line_id ON fulfillment_attempts (line_id);

CREATE TABLE status_history_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT REFERENCES order_lines (id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
INSERT INTO status_history_old SELECT * FROM status_history;
DROP TABLE status_history;
ALTER TABLE status_history_old RENAME TO status_history;
CREATE INDEX status_history_order_id ON status_history (order_id);

CREATE TABLE order_notes_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT REFERENCES order_lines (id),
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO order_notes_old SELECT * FROM order_notes;
DROP TABLE order_notes;
ALTER TABLE order_notes_old RENAME TO order_notes;
CREATE INDEX order_notes_order_id ON order_notes (order_id);
