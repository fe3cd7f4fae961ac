-- Retention keeps each environment's newest --activity-history activities
-- and forgets older ones with their GitLab bookkeeping (feedback_deploys).
-- A forgotten deploy's GitLab deployment must not be taken for one whose
-- creation answer was lost (internal/feedback's createDeployment looks for
-- an unclaimed deployment of the same commit): every deployment id up to
-- this one stays claimed. GitLab's ids only grow, so a deployment created
-- after the forgetting is above it.
ALTER TABLE feedback_environments ADD COLUMN forgotten_deployment_id BIGINT NOT NULL DEFAULT 0;
