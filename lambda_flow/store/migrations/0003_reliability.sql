-- Reliability (docs/reliability.md):
-- * settled_version: the run's version when a pass last finished having seen every result.
--   A result stored after it (version > settled_version) needs a pass; the sweeper finds runs
--   whose worker died between storing a result and driving the run on.
-- * driven_at / redrives: when the sweeper last re-drove the run, and how many times in a row
--   without a pass finishing, so a backlog of queued messages is not multiplied (each re-drive
--   waits twice as long as the one before).
-- * steps may be 'cancelled': a run that ended (cancelled, or failed from outside) while a step
--   still waited shows that step as cancelled, not pending.

ALTER TABLE {schema}.runs
    ADD COLUMN settled_version bigint      NOT NULL DEFAULT 0,
    ADD COLUMN driven_at       timestamptz,
    ADD COLUMN redrives        integer     NOT NULL DEFAULT 0;

ALTER TABLE {schema}.steps DROP CONSTRAINT steps_status_check;
ALTER TABLE {schema}.steps ADD CONSTRAINT steps_status_check
    CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled'));

-- Runs in flight when this migration runs have had every result seen by a pass, as far as
-- anyone can tell; the sweeper's older rules still cover them.
UPDATE {schema}.runs SET settled_version = version;
