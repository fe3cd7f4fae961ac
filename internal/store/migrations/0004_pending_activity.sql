-- The activity (deploy, stop, delete or pause) whose job an environment waits
-- for; 0 when none. A job whose activity is no longer the pending one was
-- superseded, and the repair sweep re-drives environments whose pending
-- job is gone.
ALTER TABLE environments ADD COLUMN pending_activity_id BIGINT NOT NULL DEFAULT 0;
