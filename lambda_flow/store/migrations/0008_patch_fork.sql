-- Versioning and forks (issue 13):
-- * steps may be 'patch': the marker wf.patched records where a run reaches a patch on code
--   that has it (it has no attempt to run; its step and attempt rows are written succeeded).
-- * runs.forked_from: the run id and step key of a run started by fork(), which
--   reuses the recorded steps of that run before that step.

ALTER TABLE {schema}.steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE {schema}.steps ADD CONSTRAINT steps_kind_check
    CHECK (kind IN ('rpc', 'inline', 'sleep', 'suspend', 'callback', 'condition', 'patch'));

ALTER TABLE {schema}.runs ADD COLUMN forked_from jsonb;
