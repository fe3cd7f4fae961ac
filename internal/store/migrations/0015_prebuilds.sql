-- Prebuilds (issue 17): with --prebuild-branches an integration builds the
-- head of an inactive branch environment on every push, without running
-- it, so activating it starts in the time of a redeploy of a built tree.
-- The prebuilds themselves are activities of kind 'prebuild'.
ALTER TABLE integrations ADD COLUMN prebuild_branches BOOLEAN NOT NULL DEFAULT FALSE;
