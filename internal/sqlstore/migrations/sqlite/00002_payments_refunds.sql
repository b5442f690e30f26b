-- +goose Up
ALTER TABLE baskets ADD COLUMN payment_processor TEXT NOT NULL DEFAULT '';
ALTER TABLE baskets ADD COLUMN total_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE baskets ADD COLUMN currency TEXT NOT NULL DEFAULT '';
ALTER TABLE baskets ADD COLUMN frozen_at TIMESTAMP;

-- Every notification a payment processor sent, as Otto's
-- PaymentProcessorResponse: the evidence that a basket was paid, kept before
-- the order exists so that "charged but no order" can be reconciled.
CREATE TABLE payment_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    processor TEXT NOT NULL,
    reference TEXT NOT NULL,
    basket_id BIGINT NOT NULL REFERENCES baskets (id),
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'decline')),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    raw TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL DEFAULT '',
    handled_at TIMESTAMP,
    UNIQUE (processor, reference)
);
CREATE INDEX payment_notifications_unhandled ON payment_notifications (created_at) WHERE handled_at IS NULL;

CREATE TABLE payment_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    processor TEXT NOT NULL,
    reference TEXT NOT NULL,
    amount_debited_minor BIGINT NOT NULL,
    amount_refunded_minor BIGINT NOT NULL DEFAULT 0,
    currency TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_sources_order_id ON payment_sources (order_id);

CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    processor TEXT NOT NULL,
    event_type TEXT NOT NULL CHECK (event_type IN ('Paid', 'Refunded')),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reference TEXT NOT NULL,
    refund_id BIGINT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_events_order_id ON payment_events (order_id);
-- A refund is credited at most once.
CREATE UNIQUE INDEX payment_events_one_credit ON payment_events (refund_id) WHERE refund_id IS NOT NULL;

CREATE TABLE refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('Open', 'Denied', 'Payment Refund Error', 'Payment Refunded', 'Revocation Error', 'Complete')),
    action TEXT NOT NULL DEFAULT '',
    total_credit_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    needs_attention BOOLEAN NOT NULL DEFAULT FALSE,
    next_attempt_at TIMESTAMP,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX refunds_order_id ON refunds (order_id);
CREATE INDEX refunds_status ON refunds (status, id);
CREATE INDEX refunds_due ON refunds (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE refund_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id BIGINT NOT NULL REFERENCES refunds (id),
    order_line_id BIGINT NOT NULL REFERENCES order_lines (id),
    line_credit_minor BIGINT NOT NULL,
    quantity INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('Open', 'Revocation Error', 'Denied', 'Complete')),
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX refund_lines_refund_id ON refund_lines (refund_id);
-- A line with a refund that is not Denied can never be refunded again, even
-- by two requests at the same instant.
CREATE UNIQUE INDEX refund_lines_once ON refund_lines (order_line_id) WHERE status <> 'Denied';

CREATE TABLE refund_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id BIGINT NOT NULL REFERENCES refunds (id),
    refund_line_id BIGINT REFERENCES refund_lines (id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX refund_history_refund_id ON refund_history (refund_id);

-- +goose Down
DROP TABLE refund_history;
DROP TABLE refund_lines;
DROP TABLE refunds;
DROP TABLE payment_events;
DROP TABLE payment_sources;
DROP TABLE payment_notifications;
ALTER TABLE baskets DROP COLUMN frozen_at;
ALTER TABLE baskets DROP COLUMN currency;
ALTER TABLE baskets DROP COLUMN total_minor;
ALTER TABLE baskets DROP COLUMN payment_processor;
