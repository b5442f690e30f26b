-- +goose Up
-- A learner holds at most one live line of a product bought once (a seat,
-- an entitlement): holder_id is the buyer's user id on such a line while
-- it is live, NULL on lines bought repeatedly (enrollment codes,
-- donations), on lines of failed payments and once a refund of the line
-- completes. The partial unique index refuses a second live line whatever
-- front end, replica or race placed it.
ALTER TABLE order_lines ADD COLUMN holder_id BIGINT;
-- Existing data: the oldest live line of each (learner, SKU) holds it.
UPDATE order_lines SET holder_id = (SELECT o.user_id FROM orders o WHERE o.id = order_lines.order_id)
    WHERE id IN (
        SELECT MIN(ol.id) FROM order_lines ol JOIN orders o ON o.id = ol.order_id
        WHERE ol.product_class IN ('Seat', 'Course Entitlement') AND o.status <> 'Payment Error'
          AND NOT EXISTS (SELECT 1 FROM refund_lines rl WHERE rl.order_line_id = ol.id AND rl.status = 'Complete')
        GROUP BY o.user_id, ol.sku);
CREATE UNIQUE INDEX order_lines_one_holder ON order_lines (holder_id, sku) WHERE holder_id IS NOT NULL;

-- +goose Down
DROP INDEX order_lines_one_holder;
ALTER TABLE order_lines DROP COLUMN holder_id;
