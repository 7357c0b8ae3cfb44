-- Remote mode: step workers need each step's retry policy, and the sweeper finds work that
-- lost its way (unsent or abandoned step jobs) through this index.

ALTER TABLE {schema}.steps
    ADD COLUMN max_attempts   integer NOT NULL DEFAULT 1,
    ADD COLUMN retry_delay_ms bigint  NOT NULL DEFAULT 0;

CREATE INDEX steps_outstanding ON {schema}.steps (updated_at)
    WHERE kind = 'rpc' AND status IN ('scheduled', 'running');

-- No index on runs.lease_expires_at: every step write extends the lease, and an index on it
-- would stop those updates from being HOT (measured: +50% WAL per step). The sweeper finds
-- expired leases among running runs through runs_due's partial index instead.
