-- Runs, their steps and every attempt of every step. {schema} is filled in with a validated,
-- quoted identifier; nothing else is ever formatted into SQL.

CREATE TABLE {schema}.runs (
    id               uuid PRIMARY KEY,
    workflow         text        NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('running', 'suspended', 'completed', 'failed', 'cancelled')),
    input            jsonb,
    output           jsonb,
    error            jsonb,
    idempotency_key  text,
    lease_owner      text,
    lease_expires_at timestamptz,
    lease_token      bigint      NOT NULL DEFAULT 0,
    version          bigint      NOT NULL DEFAULT 0,
    wake_at          timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE UNIQUE INDEX runs_idempotency_key ON {schema}.runs (workflow, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_by_created ON {schema}.runs (created_at DESC, id DESC);
CREATE INDEX runs_by_status ON {schema}.runs (status, created_at DESC, id DESC);
CREATE INDEX runs_by_workflow ON {schema}.runs (workflow, created_at DESC, id DESC);
CREATE INDEX runs_due ON {schema}.runs (wake_at) WHERE status = 'running';

CREATE TABLE {schema}.steps (
    run_id           uuid        NOT NULL REFERENCES {schema}.runs (id) ON DELETE CASCADE,
    step_key         text        NOT NULL,
    position         integer     NOT NULL,
    name             text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('rpc', 'inline', 'sleep', 'suspend')),
    target           text,
    status           text        NOT NULL
        CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed')),
    attempt          integer     NOT NULL DEFAULT 0,
    input            jsonb,
    result           jsonb,
    error            jsonb,
    wake_at          timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz,
    lease_token      bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (run_id, step_key)
);

CREATE TABLE {schema}.step_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    run_id      uuid        NOT NULL REFERENCES {schema}.runs (id) ON DELETE CASCADE,
    step_key    text        NOT NULL,
    attempt     integer     NOT NULL,
    step_name   text        NOT NULL,
    kind        text        NOT NULL,
    status      text        NOT NULL,
    result      jsonb,
    error       jsonb,
    created_at  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (run_id, step_key, attempt)
);

CREATE INDEX step_attempts_by_run ON {schema}.step_attempts (run_id, id);
