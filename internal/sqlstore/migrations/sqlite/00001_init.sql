-- +goose Up
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL DEFAULT '',
    is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE courses (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    verification_deadline TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id BIGINT REFERENCES products (id),
    product_class TEXT NOT NULL CHECK (product_class IN ('Seat', 'Enrollment Code', 'Course Entitlement', 'Coupon', 'Donation')),
    title TEXT NOT NULL,
    course_id TEXT REFERENCES courses (id),
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX products_course_id ON products (course_id);

CREATE TABLE stock_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id BIGINT NOT NULL UNIQUE REFERENCES products (id),
    partner TEXT NOT NULL,
    sku TEXT NOT NULL UNIQUE,
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    expires TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE baskets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id BIGINT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('Open', 'Frozen', 'Submitted')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE basket_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    basket_id BIGINT NOT NULL REFERENCES baskets (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL
);
CREATE INDEX basket_lines_basket_id ON basket_lines (basket_id);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT NOT NULL UNIQUE,
    basket_id BIGINT NOT NULL UNIQUE REFERENCES baskets (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('Pending', 'Payment Error', 'Open', 'Fulfillment Error', 'Complete')),
    currency TEXT NOT NULL,
    total_minor BIGINT NOT NULL CHECK (total_minor >= 0),
    needs_attention BOOLEAN NOT NULL DEFAULT FALSE,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    next_attempt_at TIMESTAMP,
    date_placed TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_user_id ON orders (user_id, id);
CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_needs_attention ON orders (id) WHERE needs_attention = 1;
CREATE INDEX orders_date_placed ON orders (date_placed);

CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    product_class TEXT NOT NULL,
    title TEXT NOT NULL,
    sku TEXT NOT NULL,
    attributes TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL,
    line_price_minor BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('Open', 'Complete', 'Fulfillment Configuration Error',
        'Fulfillment Network Error', 'Fulfillment Timeout Error', 'Fulfillment Server Error')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error_class TEXT NOT NULL DEFAULT '',
    last_http_status INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    needs_attention BOOLEAN NOT NULL DEFAULT FALSE,
    -- The retry queue: a line is due when next_attempt_at has passed and no
    -- live lease is held on it.
    next_attempt_at TIMESTAMP,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    fulfilled_at TIMESTAMP,
    CONSTRAINT complete_has_fulfilled_at CHECK ((status = 'Complete') = (fulfilled_at IS NOT NULL)),
    CONSTRAINT complete_is_not_scheduled CHECK (status <> 'Complete' OR next_attempt_at IS NULL)
);
CREATE INDEX order_lines_order_id ON order_lines (order_id);
CREATE INDEX order_lines_due ON order_lines (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX order_lines_sku ON order_lines (sku);

CREATE TABLE order_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT REFERENCES order_lines (id),
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX order_notes_order_id ON order_notes (order_id);

CREATE TABLE status_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT REFERENCES order_lines (id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX status_history_order_id ON status_history (order_id);

-- Oscar's shipping-event ledger: a line is delivered ("Shipped") once.
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

CREATE TABLE fulfillment_attempts (
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
CREATE INDEX fulfillment_attempts_line_id ON fulfillment_attempts (line_id);

CREATE TABLE idempotency_keys (
    username TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    response_body TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (username, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE fulfillment_attempts;
DROP TABLE shipping_event_lines;
DROP TABLE shipping_events;
DROP TABLE status_history;
DROP TABLE order_notes;
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE basket_lines;
DROP TABLE baskets;
DROP TABLE stock_records;
DROP TABLE products;
DROP TABLE courses;
DROP TABLE users;
