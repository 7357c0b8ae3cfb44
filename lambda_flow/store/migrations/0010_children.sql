-- Child workflows (issue 13).
-- * steps may be 'child': wf.start_child records one, 'scheduled' while the child runs; its
--   input holds the child's run id and the time the parent stops waiting for it.
-- * runs.parent_id / runs.parent_step: the run (and the step of it) that started this run as
--   a child. A child's id is derived from them, so starting it again is a no-op.
-- * Two triggers keep parents and children consistent whatever ends a run (a pass, a dead
--   letter, the sweeper's deadline check), in the statement that ends it:
--   - a child that ends hands its outcome to its parent's waiting step (and bumps the
--     parent's version, so the parent is unsettled until a pass sees it: invariant 5);
--   - a run that ends, or is asked to cancel, asks its unfinished children to cancel (their
--     waiting steps are cancelled like a cancel request's); that update fires the trigger
--     again for grandchildren.

ALTER TABLE {schema}.steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE {schema}.steps ADD CONSTRAINT steps_kind_check
    CHECK (kind IN ('rpc', 'inline', 'sleep', 'suspend', 'callback', 'condition', 'patch',
                    'scope', 'child'));

ALTER TABLE {schema}.runs ADD COLUMN parent_id uuid, ADD COLUMN parent_step text;

CREATE INDEX runs_by_parent ON {schema}.runs (parent_id, created_at DESC, id DESC)
    WHERE parent_id IS NOT NULL;

CREATE FUNCTION {schema}.lf_child_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH s AS (
        UPDATE {schema}.steps st SET
            status = CASE WHEN NEW.status = 'completed' THEN 'succeeded' ELSE 'failed' END,
            result = CASE WHEN NEW.status = 'completed' THEN NEW.output END,
            error = CASE WHEN NEW.status = 'completed' THEN NULL
                ELSE coalesce(NEW.error, jsonb_build_object('type', 'Cancelled', 'message',
                    'cancelled')) || jsonb_build_object('step_key', st.step_key) END,
            wake_at = NULL, updated_at = NEW.updated_at
        WHERE st.run_id = NEW.parent_id AND st.step_key = NEW.parent_step
            AND st.kind = 'child' AND st.status = 'scheduled'
        RETURNING st.run_id, st.step_key, st.attempt, st.status, st.result, st.error
    ), a AS (
        UPDATE {schema}.step_attempts sa SET status = s.status, result = s.result,
            error = s.error, finished_at = NEW.updated_at
        FROM s WHERE sa.run_id = s.run_id AND sa.step_key = s.step_key
            AND sa.attempt = s.attempt
    )
    UPDATE {schema}.runs p SET version = p.version + 1, updated_at = NEW.updated_at
    FROM s WHERE p.id = s.run_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_child_ended AFTER UPDATE OF status ON {schema}.runs FOR EACH ROW
    WHEN (NEW.parent_id IS NOT NULL
          AND NEW.status IN ('completed', 'failed', 'cancelled')
          AND OLD.status NOT IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION {schema}.lf_child_ended();

CREATE FUNCTION {schema}.lf_cancel_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH c AS (
        UPDATE {schema}.runs ch SET status = 'running',
            cancel_requested_at = NEW.updated_at,
            cancel_reason = 'its parent run ' || NEW.id || CASE
                WHEN NEW.status IN ('completed', 'failed', 'cancelled')
                THEN ' ended (' || NEW.status || ')' ELSE ' was cancelled' END,
            cleanup_deadline = NEW.cleanup_deadline,
            version = ch.version + 1, updated_at = NEW.updated_at
        WHERE ch.parent_id = NEW.id AND ch.status IN ('running', 'suspended')
            AND ch.cancel_requested_at IS NULL
        RETURNING ch.id
    ), cs AS (
        UPDATE {schema}.steps st SET status = 'cancelled', lease_owner = NULL,
            lease_expires_at = NULL, lease_token = st.lease_token + 1,
            updated_at = NEW.updated_at
        FROM c WHERE st.run_id = c.id AND st.status IN ('pending', 'scheduled', 'running')
        RETURNING st.run_id, st.step_key, st.attempt
    )
    UPDATE {schema}.step_attempts sa SET status = 'cancelled',
        finished_at = coalesce(sa.finished_at, NEW.updated_at)
    FROM cs WHERE sa.run_id = cs.run_id AND sa.step_key = cs.step_key
        AND sa.attempt = cs.attempt AND sa.status IN ('pending', 'scheduled', 'running');
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_cancel_children AFTER UPDATE OF status, cancel_requested_at
    ON {schema}.runs FOR EACH ROW
    WHEN ((OLD.cancel_requested_at IS NULL AND NEW.cancel_requested_at IS NOT NULL)
          OR (NEW.status IN ('completed', 'failed', 'cancelled')
              AND OLD.status NOT IN ('completed', 'failed', 'cancelled')))
    EXECUTE FUNCTION {schema}.lf_cancel_children();
