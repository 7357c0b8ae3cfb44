-- Remote mode: step workers need each step's retry policy, and the sweeper finds work that
-- lost its way (unsent or abandoned step jobs, expired leases, due timers) through these indexes.

ALTER TABLE {schema}.steps
    ADD COLUMN max_attempts   integer NOT NULL DEFAULT 1,
    ADD COLUMN retry_delay_ms bigint  NOT NULL DEFAULT 0;

CREATE INDEX steps_outstanding ON {schema}.steps (updated_at)
    WHERE kind = 'rpc' AND status IN ('scheduled', 'running');

CREATE INDEX runs_leased ON {schema}.runs (lease_expires_at)
    WHERE status = 'running' AND lease_expires_at IS NOT NULL;
