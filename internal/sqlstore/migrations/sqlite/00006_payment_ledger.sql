-- +goose Up
-- The payment ledger replaces payment_notifications: every verified
-- notification a processor sent, keyed by the processor's event id (a
-- decline and a later accept of one payment are two events), and what
-- became of the money (payment.State). The basket is not a foreign key: a
-- payment for a basket that does not exist was still taken, and is
-- refunded.
CREATE TABLE payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    processor TEXT NOT NULL,
    event_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    basket_id BIGINT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'decline')),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    raw TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('received', 'placed', 'replayed', 'declined', 'refund_due', 'refunded', 'attention')),
    cause TEXT NOT NULL DEFAULT '',
    order_number TEXT NOT NULL DEFAULT '',
    credit_reference TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- The queue of the reconciler and refund worker: due when
    -- next_attempt_at has passed and no live lease is held.
    next_attempt_at TIMESTAMP,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (processor, event_id),
    CONSTRAINT final_is_not_scheduled CHECK (state IN ('received', 'refund_due') OR next_attempt_at IS NULL)
);
CREATE INDEX payments_due ON payments (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX payments_state ON payments (state, id);
CREATE INDEX payments_basket ON payments (basket_id);
INSERT INTO payments (processor, event_id, reference, basket_id, decision, amount_minor, currency, raw, state, cause,
        order_number, next_attempt_at, created_at, updated_at)
    SELECT processor, reference || ':' || decision, reference, basket_id, decision, amount_minor, currency, raw,
        CASE WHEN decision = 'decline' THEN 'declined'
             WHEN handled_at IS NULL THEN 'received'
             WHEN outcome LIKE 'order placed: %' THEN 'placed'
             WHEN outcome LIKE 'duplicate: order %' THEN 'replayed'
             ELSE 'attention' END,
        CASE WHEN decision = 'accept' AND handled_at IS NOT NULL AND outcome NOT LIKE 'order placed: %'
             AND outcome NOT LIKE 'duplicate: order %' THEN outcome ELSE '' END,
        CASE WHEN outcome LIKE 'order placed: %' THEN substr(outcome, 15)
             WHEN outcome LIKE 'duplicate: order %' THEN substr(outcome, 18) ELSE '' END,
        CASE WHEN decision = 'accept' AND handled_at IS NULL THEN created_at END,
        created_at, created_at
    FROM payment_notifications;
DROP TABLE payment_notifications;

-- +goose Down
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
DROP TABLE payments;
