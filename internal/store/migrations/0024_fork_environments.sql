-- Whether a merge request environment's code comes from a fork (its source
-- project is not the integration's). Fork code never gets glenv's
-- variables, secrets or its parent's data (DESIGN.md, Variable). Until the
-- next event about it, an existing merge request environment of an
-- integration with build_forks on is taken for a fork's, as glenv treated
-- every such merge request before it recorded this.
ALTER TABLE environments ADD COLUMN from_fork BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE environments SET from_fork = TRUE
    WHERE kind = 'mr' AND integration_id IN (SELECT id FROM integrations WHERE build_forks);
