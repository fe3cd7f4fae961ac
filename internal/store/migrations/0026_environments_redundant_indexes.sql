-- Issue 15: every environment written updates each of its indexes; two of
-- them are the first column of another and serve no query that one does
-- not (SQLite and PostgreSQL both use a leading column of an index alone):
-- environments_integration (integration_id) leads
-- environments_integration_live (integration_id, deleted_at, id), and
-- environments_deleted (deleted_at) leads environments_dashboard
-- (deleted_at, updated_at, id).
DROP INDEX IF EXISTS environments_integration;
DROP INDEX IF EXISTS environments_deleted;
