-- Activity logs as append-only chunks (internal/activitylog) instead of one
-- TEXT column rewritten per line, which made a long build quadratic on the
-- single writer. A chunk covers the log's bytes [start_off, end_off); a
-- writer appends one chunk per flush, readers resume from a byte offset.
CREATE TABLE activity_log_chunks (
    activity_id BIGINT NOT NULL,
    start_off   BIGINT NOT NULL,
    end_off     BIGINT NOT NULL,
    data        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (activity_id, start_off)
);

-- log_cut: the offset where an activity's kept log starts; retention drops
-- the head of logs over --activity-log-max-size and readers say so.
ALTER TABLE activities ADD COLUMN log_cut BIGINT NOT NULL DEFAULT 0;

-- Logs written before this migration become their activity's first chunk.
INSERT INTO activity_log_chunks (activity_id, start_off, end_off, data, created_at)
    SELECT id, 0, octet_length(log), log, created_at FROM activities WHERE log <> '';
UPDATE activities SET log = '' WHERE log <> '';

-- Retention drops deliveries' bodies after --delivery-body-retention and
-- says when; headers and results stay.
ALTER TABLE deliveries ADD COLUMN body_dropped_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX deliveries_body_kept ON deliveries (body_dropped_at, received_at);

-- Retention forgets deleted environments after --deleted-environment-retention.
CREATE INDEX environments_deleted ON environments (deleted_at);

-- Retention drops the logs of activities completed before
-- --activity-log-retention.
CREATE INDEX activities_completed ON activities (completed_at);

-- Retention caps the logs written since its last pass.
CREATE INDEX activity_log_chunks_created ON activity_log_chunks (created_at, activity_id);
