-- Chained batches (issue 13's scale requirement): in remote mode a wf.map over a registered
-- function records a plan, and each item's worker starts the next item in the statement that
-- stores its result, so a map of 10,000 items costs one step message per item and two passes
-- (its start and its end), not a pass (and a replay of the whole body) per item.
-- * batches: one row per chained map (its policy, counters and the next item to start). The
--   row is locked by each completion, so concurrent workers never start the same item twice
--   nor exceed the concurrency limit.
-- * batch_items: each item's input and name, read one row at a time as items start.
-- * steps.batch_key: the batch an item step belongs to (NULL for every other step).

CREATE TABLE {schema}.batches (
    run_id             uuid        NOT NULL REFERENCES {schema}.runs (id) ON DELETE CASCADE,
    batch_key          text        NOT NULL,
    target             text        NOT NULL,
    total              integer     NOT NULL,
    concurrency        integer     NOT NULL,
    next_index         integer     NOT NULL,
    running            integer     NOT NULL,
    succeeded          integer     NOT NULL DEFAULT 0,
    failed             integer     NOT NULL DEFAULT 0,
    min_successful     integer,
    tolerated_failures integer,
    tolerated_ratio    double precision,
    position_base      integer     NOT NULL,
    max_attempts       integer     NOT NULL,
    retry_delay_ms     bigint      NOT NULL,
    retry_policy       jsonb,
    timeout_ms         bigint,
    created_at         timestamptz NOT NULL,
    PRIMARY KEY (run_id, batch_key)
);

CREATE TABLE {schema}.batch_items (
    run_id    uuid    NOT NULL,
    batch_key text    NOT NULL,
    idx       integer NOT NULL,
    name      text    NOT NULL,
    input     json,
    PRIMARY KEY (run_id, batch_key, idx),
    FOREIGN KEY (run_id, batch_key) REFERENCES {schema}.batches (run_id, batch_key)
        ON DELETE CASCADE
);

ALTER TABLE {schema}.steps ADD COLUMN batch_key text;
