-- Issue 12, items 3 to 6: retry policies, timeouts and cancellation that runs cleanup.
-- * steps.retry_policy: the step's RetryPolicy as JSON (RetryPolicy.to_json), written with the
--   scheduled step (the outbox write), so a step worker decides retries and their waits with
--   the same policy; NULL for steps written before (max_attempts / retry_delay_ms then).
-- * steps.timeout_ms: how long one attempt may run; the step worker enforces it.
-- * runs.deadline: when the run fails with RunDeadlineExceeded (@flow.workflow(timeout=...),
--   start(run_timeout=...)).
-- * runs.cancel_requested_at / cancel_reason / cleanup_deadline: a cancellation asked for from
--   outside; the next pass raises WorkflowCancelled into the body, which may clean up until
--   cleanup_deadline.

ALTER TABLE {schema}.steps
    ADD COLUMN retry_policy jsonb,
    ADD COLUMN timeout_ms   bigint;

ALTER TABLE {schema}.runs
    ADD COLUMN deadline            timestamptz,
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancel_reason       text,
    ADD COLUMN cleanup_deadline    timestamptz;
