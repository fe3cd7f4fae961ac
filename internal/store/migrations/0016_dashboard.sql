-- The dashboard (issue 14) lists live environments newest change first, a
-- page of 50 at a time, across every integration or one, and its change feed
-- asks for rows updated since a time: these indexes serve both without
-- sorting 10,000 rows per request.
CREATE INDEX environments_dashboard ON environments (deleted_at, updated_at, id);
CREATE INDEX environments_dashboard_integration ON environments (integration_name, deleted_at, updated_at, id);
CREATE INDEX environments_updated ON environments (updated_at);
