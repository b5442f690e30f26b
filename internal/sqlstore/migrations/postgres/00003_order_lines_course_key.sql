-- +goose Up
-- The course run of a line, copied out of its attributes so that the
-- dashboard can filter orders by course through an index. (sku, order_id)
-- replaces (sku) for the same reason: both serve "orders with a line of X".
ALTER TABLE order_lines ADD COLUMN course_key TEXT NOT NULL DEFAULT '';
UPDATE order_lines SET course_key = attributes::jsonb ->> 'course_key'
    WHERE jsonb_typeof(attributes::jsonb -> 'course_key') = 'string';
CREATE INDEX order_lines_course_key ON order_lines (course_key, order_id);
CREATE INDEX order_lines_sku_order ON order_lines (sku, order_id);
DROP INDEX order_lines_sku;

-- +goose Down
CREATE INDEX order_lines_sku ON order_lines (sku);
DROP INDEX order_lines_sku_order;
DROP INDEX order_lines_course_key;
ALTER TABLE order_lines DROP COLUMN course_key;
