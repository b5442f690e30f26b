-- +goose Up
-- The append-only rows of an order (status history, fulfillment attempts,
-- notes) are written only by the store,
-- in the statement or transaction that writes or locks their order and
-- line, and never deleted: their foreign keys checked nothing a writer
-- could get wrong, at one trigger per row and key (16 per checkout, 15 %
-- of PostgreSQL's CPU per order, issue 14). The keys of rows other writers
-- reference (orders, lines, refunds, payments) stay. The shipping events
-- go altogether in 00011.
ALTER TABLE status_history DROP CONSTRAINT status_history_order_id_fkey, DROP CONSTRAINT status_history_line_id_fkey;
ALTER TABLE fulfillment_attempts DROP CONSTRAINT fulfillment_attempts_order_id_fkey, DROP CONSTRAINT fulfillment_attempts_line_id_fkey;
ALTER TABLE order_notes DROP CONSTRAINT order_notes_order_id_fkey, DROP CONSTRAINT order_notes_line_id_fkey;

-- +goose Down
ALTER TABLE status_history ADD FOREIGN KEY (order_id) REFERENCES orders (id), ADD FOREIGN KEY (line_id) REFERENCES order_lines (id);
ALTER TABLE fulfillment_attempts ADD FOREIGN KEY (order_id) REFERENCES orders (id), ADD FOREIGN KEY (line_id) REFERENCES order_lines (id);
ALTER TABLE order_notes ADD FOREIGN KEY (order_id) REFERENCES orders (id), ADD FOREIGN KEY (line_id) REFERENCES order_lines (id);
