-- +goose Up
-- Discounts (issue "Discounts", phase 1), after Oscar and Otto: offers (a
-- condition, a benefit and limits, offer.Offer), vouchers (codes that
-- unlock offers), coupons (a batch of vouchers sharing one offer), and the
-- uses orders record, which a full refund releases. Amounts are minor
-- units; a Percentage benefit_value is in basis points (1050 = 10.5 %).
CREATE TABLE offers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    offer_type TEXT NOT NULL CHECK (offer_type IN ('Site', 'Voucher', 'User')),
    status TEXT NOT NULL CHECK (status IN ('Open', 'Suspended', 'Consumed')),
    priority INTEGER NOT NULL DEFAULT 0,
    is_exclusive BOOLEAN NOT NULL DEFAULT TRUE,
    start_at TIMESTAMP,
    end_at TIMESTAMP,
    program_uuid TEXT NOT NULL DEFAULT '',
    -- offer.Range as JSON: {"all", "skus", "course_keys", "classes", "seat_types"}.
    product_range TEXT NOT NULL DEFAULT '{}',
    condition_type TEXT NOT NULL CHECK (condition_type IN ('Count', 'Value', 'Coverage')),
    -- items (Count, Coverage) or minor units of currency (Value)
    condition_value BIGINT NOT NULL CHECK (condition_value >= 0),
    benefit_type TEXT NOT NULL CHECK (benefit_type IN ('Percentage', 'Absolute', 'Fixed price')),
    benefit_value BIGINT NOT NULL CHECK (benefit_value >= 0),
    max_affected_items INTEGER NOT NULL DEFAULT 0 CHECK (max_affected_items >= 0),
    currency TEXT NOT NULL DEFAULT '' CHECK (currency = '' OR length(currency) = 3),
    -- 0 is no limit
    max_basket_applications INTEGER NOT NULL DEFAULT 0 CHECK (max_basket_applications >= 0),
    max_user_applications INTEGER NOT NULL DEFAULT 0 CHECK (max_user_applications >= 0),
    max_global_applications INTEGER NOT NULL DEFAULT 0 CHECK (max_global_applications >= 0),
    -- comma-separated, lower-case
    email_domains TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT percentage_at_most_100 CHECK (benefit_type <> 'Percentage' OR benefit_value BETWEEN 1 AND 10000),
    CONSTRAINT fixed_price_not_by_value CHECK (benefit_type <> 'Fixed price' OR condition_type <> 'Value'),
    CONSTRAINT money_has_currency CHECK ((benefit_type = 'Percentage' AND condition_type <> 'Value') OR currency <> ''),
    CONSTRAINT count_at_least_one CHECK (condition_type = 'Value' OR condition_value >= 1),
    CONSTRAINT offer_dates_in_order CHECK (start_at IS NULL OR end_at IS NULL OR end_at > start_at)
);
CREATE INDEX offers_type_status ON offers (offer_type, status);

-- The live counters of an offer, one row each, locked to record a use:
-- what orders recorded, less what full refunds released.
CREATE TABLE offer_usage (
    offer_id BIGINT PRIMARY KEY REFERENCES offers (id) ON DELETE CASCADE,
    num_applications BIGINT NOT NULL DEFAULT 0 CHECK (num_applications >= 0),
    num_orders BIGINT NOT NULL DEFAULT 0 CHECK (num_orders >= 0)
);

-- One row per offer used by an order: the per-user counts, and what a
-- full refund releases.
CREATE TABLE offer_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    offer_id BIGINT NOT NULL REFERENCES offers (id) ON DELETE CASCADE,
    username TEXT NOT NULL DEFAULT '',
    order_number TEXT NOT NULL,
    applications INTEGER NOT NULL CHECK (applications > 0),
    discount_minor BIGINT NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    created_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    UNIQUE (offer_id, order_number)
);
CREATE INDEX offer_applications_user ON offer_applications (username, offer_id) WHERE released_at IS NULL;
CREATE INDEX offer_applications_order ON offer_applications (order_number);

CREATE TABLE coupons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    category TEXT NOT NULL DEFAULT '',
    client TEXT NOT NULL DEFAULT '',
    price_minor BIGINT NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    note TEXT NOT NULL DEFAULT '',
    notify_email TEXT NOT NULL DEFAULT '',
    inactive BOOLEAN NOT NULL DEFAULT FALSE,
    offer_id BIGINT NOT NULL UNIQUE REFERENCES offers (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Codes are stored upper-case (ASCII letters and digits) and looked up
-- upper-cased, so they match case-insensitively on both engines.
CREATE TABLE vouchers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE CHECK (code = upper(code) AND length(code) BETWEEN 1 AND 128),
    voucher_usage TEXT NOT NULL CHECK (voucher_usage IN ('Single use', 'Multi-use', 'Once per customer')),
    start_at TIMESTAMP NOT NULL,
    end_at TIMESTAMP NOT NULL,
    coupon_id BIGINT REFERENCES coupons (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT voucher_dates_in_order CHECK (end_at > start_at)
);
CREATE INDEX vouchers_coupon ON vouchers (coupon_id, id);

CREATE TABLE voucher_offers (
    voucher_id BIGINT NOT NULL REFERENCES vouchers (id) ON DELETE CASCADE,
    offer_id BIGINT NOT NULL REFERENCES offers (id) ON DELETE CASCADE,
    PRIMARY KEY (voucher_id, offer_id)
);
CREATE INDEX voucher_offers_offer ON voucher_offers (offer_id);

-- One row per use of a voucher by an order. The usage is copied so that
-- the schema repeats the rule the store enforces under the voucher's row
-- lock: a Single use code has one live use, a Once per customer code one
-- per user.
CREATE TABLE voucher_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    voucher_id BIGINT NOT NULL REFERENCES vouchers (id) ON DELETE CASCADE,
    voucher_usage TEXT NOT NULL CHECK (voucher_usage IN ('Single use', 'Multi-use', 'Once per customer')),
    username TEXT NOT NULL DEFAULT '',
    order_number TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    UNIQUE (voucher_id, order_number),
    CONSTRAINT once_per_customer_is_signed_in CHECK (voucher_usage <> 'Once per customer' OR username <> '')
);
CREATE UNIQUE INDEX voucher_applications_single_use ON voucher_applications (voucher_id)
    WHERE voucher_usage = 'Single use' AND released_at IS NULL;
CREATE UNIQUE INDEX voucher_applications_once_per_customer ON voucher_applications (voucher_id, username)
    WHERE voucher_usage = 'Once per customer' AND released_at IS NULL;
CREATE INDEX voucher_applications_order ON voucher_applications (order_number);

-- pricing_version changes whenever what a basket costs may change: any
-- write to offers, vouchers or their links, an offer's status, and a
-- stock record's price, currency, expiry or SKU (triggers below, so that
-- every writer, replica and tool counts). Cached prices compare it.
CREATE TABLE pricing_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO pricing_version (id, version) VALUES (1, 1);
-- +goose StatementBegin
CREATE TRIGGER offers_pricing_insert AFTER INSERT ON offers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER offers_pricing_update AFTER UPDATE ON offers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER offers_pricing_delete AFTER DELETE ON offers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER vouchers_pricing_insert AFTER INSERT ON vouchers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER vouchers_pricing_update AFTER UPDATE ON vouchers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER vouchers_pricing_delete AFTER DELETE ON vouchers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER voucher_offers_pricing_insert AFTER INSERT ON voucher_offers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER voucher_offers_pricing_update AFTER UPDATE ON voucher_offers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER voucher_offers_pricing_delete AFTER DELETE ON voucher_offers
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stock_records_pricing_insert AFTER INSERT ON stock_records
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stock_records_pricing_delete AFTER DELETE ON stock_records
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stock_records_pricing_update AFTER UPDATE ON stock_records WHEN OLD.price_minor IS NOT NEW.price_minor OR OLD.currency IS NOT NEW.currency OR OLD.expires IS NOT NEW.expires OR OLD.sku IS NOT NEW.sku
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER products_pricing_update AFTER UPDATE ON products WHEN OLD.product_class IS NOT NEW.product_class OR OLD.attributes IS NOT NEW.attributes OR OLD.course_id IS NOT NEW.course_id
BEGIN
    UPDATE pricing_version SET version = version + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER offers_pricing_insert;
DROP TRIGGER offers_pricing_update;
DROP TRIGGER offers_pricing_delete;
DROP TRIGGER vouchers_pricing_insert;
DROP TRIGGER vouchers_pricing_update;
DROP TRIGGER vouchers_pricing_delete;
DROP TRIGGER voucher_offers_pricing_insert;
DROP TRIGGER voucher_offers_pricing_update;
DROP TRIGGER voucher_offers_pricing_delete;
DROP TRIGGER stock_records_pricing_insert;
DROP TRIGGER stock_records_pricing_delete;
DROP TRIGGER stock_records_pricing_update;
DROP TRIGGER products_pricing_update;
DROP TABLE pricing_version;
DROP TABLE voucher_applications;
DROP TABLE voucher_offers;
DROP TABLE vouchers;
DROP TABLE coupons;
DROP TABLE offer_applications;
DROP TABLE offer_usage;
DROP TABLE offers;
