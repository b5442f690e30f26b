-- +goose Up
-- Discounts (issue "Discounts", phase 2): what offers took off an order,
-- recorded in the transaction that places it. A basket carries at most
-- one voucher code (Otto) and, once priced, its discounts as JSON
-- (basket.Discount): a frozen basket's total is the discounted total the
-- processor is asked for, and its payment places exactly those discounts.
ALTER TABLE baskets ADD COLUMN voucher_code TEXT NOT NULL DEFAULT '';
ALTER TABLE baskets ADD COLUMN discounts TEXT NOT NULL DEFAULT '';

-- One row per offer per order line (Oscar's OrderDiscount, per line): a
-- snapshot of the offer and voucher as they were, so that the order shows
-- its discounts when the coupon is changed or deleted later.
-- order_lines.line_price_minor is the line's price after these.
CREATE TABLE order_discounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT NOT NULL REFERENCES order_lines (id),
    offer_id BIGINT NOT NULL,
    offer_name TEXT NOT NULL,
    offer_type TEXT NOT NULL,
    voucher_id BIGINT NOT NULL DEFAULT 0,
    voucher_code TEXT NOT NULL DEFAULT '',
    benefit_type TEXT NOT NULL,
    benefit_value BIGINT NOT NULL,
    currency TEXT NOT NULL DEFAULT '',
    -- the offer's applications in the whole order (Oscar's frequency)
    applications INTEGER NOT NULL CHECK (applications > 0),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (line_id, offer_id)
);
CREATE INDEX order_discounts_order ON order_discounts (order_id, id);
CREATE INDEX order_discounts_voucher ON order_discounts (voucher_id) WHERE voucher_id <> 0;

-- +goose Down
DROP TABLE order_discounts;
ALTER TABLE baskets DROP COLUMN discounts;
ALTER TABLE baskets DROP COLUMN voucher_code;
