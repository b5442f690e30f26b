-- +goose Up
-- Listings bounded by date are ordered by (date_placed, id), newest first,
-- with a (date_placed, id) keyset cursor (sqlstore.listedByDate): this
-- index serves the bound, the order and the cursor as one range. Ordered
-- by id instead, a placed_before far in the past walked the primary key
-- past every newer order (BENCHMARKS.md, "List pages"). It replaces
-- orders_date_placed, whose every use it covers.
CREATE INDEX orders_date_placed_id ON orders (date_placed, id);
DROP INDEX orders_date_placed;

-- +goose Down
CREATE INDEX orders_date_placed ON orders (date_placed);
DROP INDEX orders_date_placed_id;
