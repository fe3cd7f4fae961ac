-- Retention keeps each environment's newest --activity-history activities
-- and forgets older ones with their GitLab bookkeeping (feedback_deploys).
-- A forgotten deploy's GitLab deployment must not be taken for one whose
-- creation answer was lost (internal/feedback's createDeployment looks for
-- an unclaimed deployment of the same commit): every deployment id up to
-- this one stays claimed. GitLab's ids only grow, and feedback creates an
-- environment's deployments one sync at a time, oldest deploy first, so the
-- deployment of any deploy still kept is above it.
ALTER TABLE feedback_environments ADD COLUMN forgotten_deployment_id BIGINT NOT NULL DEFAULT 0;
