-- +goose Up
-- Oscar's shipping-event ledger is derived from order_lines.fulfilled_at,
-- as on PostgreSQL (see its 00011).
DROP TABLE shipping_event_lines;
DROP TABLE shipping_events;

-- +goose Down
CREATE TABLE shipping_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    event_type TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE shipping_event_lines (
    event_id BIGINT NOT NULL REFERENCES shipping_events (id),
    line_id BIGINT NOT NULL UNIQUE REFERENCES order_lines (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (event_id, line_id)
);
INSERT INTO shipping_events (order_id, event_type, created_at)
    SELECT DISTINCT order_id, 'Shipped', fulfilled_at FROM order_lines WHERE fulfilled_at IS NOT NULL;
INSERT INTO shipping_event_lines (event_id, line_id, quantity)
    SELECT e.id, l.id, l.quantity FROM order_lines l JOIN shipping_events e ON e.order_id = l.order_id AND e.created_at = l.fulfilled_at;
