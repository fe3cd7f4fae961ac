-- The GitLab-compatible API lists a project's live environments by
-- integration, in id order, a page at a time (OFFSET up to 10,000 rows) and
-- counts them: this index serves both from the index alone.
CREATE INDEX environments_integration_live ON environments (integration_id, deleted_at, id);
