-- Issue 15: a delivery's body (8 KB typically, up to 25 MB) moves to a table
-- of its own, written once when the delivery is accepted and deleted by
-- retention (--delivery-body-retention). SQLite rewrites a whole record,
-- overflow pages included, on any UPDATE: marking a delivery processed used
-- to write its body a second time. deliveries.body stays (empty) so that
-- older statements naming it still run.
CREATE TABLE delivery_bodies (
    delivery_id {{BIGINT_KEY}},
    body        TEXT NOT NULL
);
INSERT INTO delivery_bodies (delivery_id, body) SELECT id, body FROM deliveries WHERE body_dropped_at = 0;
UPDATE deliveries SET body = '' WHERE body <> '';
