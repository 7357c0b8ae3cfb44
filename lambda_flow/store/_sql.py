"""The SQL of :class:`~lambda_flow.store.postgres.PostgresStore`, one statement per operation.

Every write a pass makes is one statement: data-modifying CTEs update the run (checking the
lease's fencing token), upsert the steps and their attempt rows together. Only the schema name
is ever formatted into these texts, quoted by psycopg as an identifier; every value is a
parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from psycopg import sql

RUN_COLUMNS = (
    "id, workflow, status, input, output, error, created_at, updated_at, wake_at, idempotency_key,"
    " forked_from, parent_id"
)
# The step half of every pass write; {run_cte} decides which run row (if any) it applies to.
# The writes arrive as json, not jsonb, and input and result are taken out as json: their text
# (and so their keys' order) is stored as the user's code gave it (migration 0004).
_STEP_WRITES = """
, w AS (
    SELECT * FROM json_to_recordset(%(writes)s::json) AS x(
        step_key text, name text, position integer, kind text, target text, status text,
        attempt integer, attempt_status text, started_at timestamptz, finished_at timestamptz,
        input json, result json, error jsonb, wake_at timestamptz, max_attempts integer,
        retry_delay_ms bigint, retry_policy jsonb, timeout_ms bigint, batch_key text,
        lease_owner text, lease_expires_at timestamptz)
), s AS (
    -- A write with a lease owner is a claim (a chained step): it takes the step's lease.
    INSERT INTO {schema}.steps AS st (run_id, step_key, position, name, kind, target, status,
        attempt, input, result, error, wake_at, max_attempts, retry_delay_ms, retry_policy,
        timeout_ms, batch_key, lease_owner, lease_expires_at, lease_token, created_at,
        updated_at)
    SELECT r.id, w.step_key, w.position, w.name, w.kind, w.target, w.status, w.attempt, w.input,
        w.result, w.error, w.wake_at, w.max_attempts, w.retry_delay_ms, w.retry_policy,
        w.timeout_ms, w.batch_key, w.lease_owner, w.lease_expires_at,
        CASE WHEN w.lease_owner IS NULL THEN 0 ELSE 1 END, %(now)s, %(now)s
    FROM r CROSS JOIN w
    ON CONFLICT (run_id, step_key) DO UPDATE SET
        status = EXCLUDED.status, attempt = EXCLUDED.attempt,
        input = coalesce(EXCLUDED.input, st.input), result = EXCLUDED.result,
        error = EXCLUDED.error, wake_at = EXCLUDED.wake_at, updated_at = EXCLUDED.updated_at,
        max_attempts = EXCLUDED.max_attempts, retry_delay_ms = EXCLUDED.retry_delay_ms,
        retry_policy = coalesce(EXCLUDED.retry_policy, st.retry_policy),
        timeout_ms = coalesce(EXCLUDED.timeout_ms, st.timeout_ms),
        lease_owner = CASE WHEN EXCLUDED.lease_owner IS NULL THEN st.lease_owner
            ELSE EXCLUDED.lease_owner END,
        lease_expires_at = CASE WHEN EXCLUDED.lease_owner IS NULL THEN st.lease_expires_at
            ELSE EXCLUDED.lease_expires_at END,
        lease_token = CASE WHEN EXCLUDED.lease_owner IS NULL THEN st.lease_token
            ELSE st.lease_token + 1 END
    RETURNING st.step_key, st.lease_token
), a AS (
    INSERT INTO {schema}.step_attempts AS sa (run_id, step_key, attempt, step_name, kind, status,
        result, error, created_at, started_at, finished_at)
    SELECT r.id, w.step_key, w.attempt, w.name, w.kind, w.attempt_status, w.result, w.error,
        %(now)s, w.started_at, w.finished_at
    FROM r CROSS JOIN w
    ON CONFLICT (run_id, step_key, attempt) DO UPDATE SET
        status = EXCLUDED.status, result = EXCLUDED.result, error = EXCLUDED.error,
        started_at = coalesce(sa.started_at, EXCLUDED.started_at),
        finished_at = EXCLUDED.finished_at
)
SELECT version FROM r
"""


# Steps still waiting when run r ends from outside (cancel, a dead letter) will never finish:
# they and their open attempts read 'cancelled', and a worker's claim on one is fenced off.
_CANCEL_WAITING_STEPS = """
, cs AS (
    UPDATE {schema}.steps st SET status = 'cancelled', lease_owner = NULL,
        lease_expires_at = NULL, lease_token = st.lease_token + 1, updated_at = %(now)s
    FROM r WHERE st.run_id = r.id AND st.status IN ('pending', 'scheduled', 'running')
    RETURNING st.run_id, st.step_key, st.attempt
), ca AS (
    UPDATE {schema}.step_attempts sa SET status = 'cancelled',
        finished_at = coalesce(sa.finished_at, %(now)s)
    FROM cs WHERE sa.run_id = cs.run_id AND sa.step_key = cs.step_key
        AND sa.attempt = cs.attempt AND sa.status IN ('pending', 'scheduled', 'running')
)
"""


# finish_pass: a run that ends leaves none of its steps waiting (a sibling still scheduled, the
# timers and jobs of a run past its deadline).
_CANCEL_STEPS_OF_ENDED_RUN = _CANCEL_WAITING_STEPS.replace(
    "FROM r WHERE st.run_id = r.id", "FROM r WHERE %(ended)s AND st.run_id = r.id"
)

# cancel: only the first request cancels what waits; a second one leaves the cleanup's steps be.
_CANCEL_STEPS_ON_REQUEST = _CANCEL_WAITING_STEPS.replace(
    "FROM r WHERE st.run_id = r.id",
    "FROM r, prev WHERE prev.cancel_requested_at IS NULL AND st.run_id = r.id",
)


# A run's steps as one JSON array of arrays (in position order), parsed in one call: what a pass
# replays. A child step carries its child's run id. As text: the store parses it (postgres.py's
# _leased), with a faster parser than the driver's.
_STEPS_OF = (
    "(SELECT json_agg(json_build_array(st.step_key, st.name, st.position, st.kind, st.target,"
    " st.status, st.attempt, st.result, st.error, st.wake_at, st.callback_id,"
    " CASE WHEN st.kind = 'child' THEN st.input ->> 'run_id' END) ORDER BY st.position)::text"
    " FROM {{schema}}.steps st WHERE st.run_id = {run})"
)

# complete_step takes the run's lease for the worker's pass when it is free (as acquire does),
# judged on the run row as it is when updated (a concurrent writer's commit re-read), never on
# the statement's snapshot. The owner given is unique to the call, so the returned row tells
# whether this call took it.
_TAKES = (
    "(%(owner)s::text IS NOT NULL AND ru.status = 'running'"
    " AND (ru.lease_expires_at IS NULL OR ru.lease_expires_at <= %(now)s))"
)


def quoter(schema: str) -> Callable[[str], str]:
    """Fill ``{schema}`` into SQL text as a quoted identifier (the only thing formatted in)."""
    ident = sql.Identifier(schema)

    def q(text: str) -> str:
        return sql.SQL(text).format(schema=ident).as_string(None)

    return q


def statements(schema: str) -> dict[str, str]:
    """Every statement of the store, with ``schema`` filled in."""
    q = quoter(schema)
    return {
        "create_run": q(
            "INSERT INTO {schema}.runs (id, workflow, status, input, idempotency_key,"
            " created_at, updated_at, deadline)"
            " VALUES (%s, %s, 'running', %s, %s, %s, %s, %s)"
            " ON CONFLICT (workflow, idempotency_key) WHERE idempotency_key IS NOT NULL"
            " DO NOTHING RETURNING id"
        ),
        "fork_run": q(
            # One statement: the new run (only if the source run has the step), then the
            # source's finished steps recorded before that step, and their attempts, positions
            # and order kept. A copied callback gets an id of its own (ids are unique).
            "WITH src AS (SELECT position FROM {schema}.steps"
            " WHERE run_id = %(source)s AND step_key = %(step_key)s),"
            " r AS (INSERT INTO {schema}.runs (id, workflow, status, input, created_at,"
            " updated_at, deadline, forked_from) SELECT %(run_id)s, workflow, 'running',"
            " COALESCE(%(input)s, input), %(now)s, %(now)s, %(deadline)s, %(forked_from)s"
            " FROM {schema}.runs WHERE id = %(source)s AND EXISTS (SELECT 1 FROM src)"
            " RETURNING id),"
            " c AS (SELECT st.* FROM {schema}.steps st, src WHERE st.run_id = %(source)s"
            " AND st.position < src.position AND st.status IN ('succeeded', 'failed')),"
            " s AS (INSERT INTO {schema}.steps (run_id, step_key, position, name, kind, target,"
            " status, attempt, input, result, error, wake_at, max_attempts, retry_delay_ms,"
            " retry_policy, timeout_ms, created_at, updated_at)"
            " SELECT r.id, c.step_key, c.position, c.name, c.kind, c.target, c.status,"
            " c.attempt, CASE WHEN c.kind = 'callback' THEN jsonb_set(c.input::jsonb,"
            " ARRAY['callback_id'], to_jsonb(concat(c.input ->> 'callback_id', '.', r.id::text)))"
            "::json ELSE c.input END, c.result, c.error, NULL, c.max_attempts, c.retry_delay_ms,"
            " c.retry_policy, c.timeout_ms, %(now)s, %(now)s FROM c, r),"
            " a AS (INSERT INTO {schema}.step_attempts (run_id, step_key, attempt, step_name,"
            " kind, status, result, error, created_at, started_at, finished_at)"
            " SELECT r.id, sa.step_key, sa.attempt, sa.step_name, sa.kind, sa.status,"
            " sa.result, sa.error, sa.created_at, sa.started_at, sa.finished_at"
            " FROM {schema}.step_attempts sa, r WHERE sa.run_id = %(source)s"
            " AND sa.step_key IN (SELECT step_key FROM c) ORDER BY sa.id)"
            " SELECT id FROM r"
        ),
        "run_by_key": q(
            "SELECT id FROM {schema}.runs WHERE workflow = %s AND idempotency_key = %s"
        ),
        "get_run": q(f"SELECT {RUN_COLUMNS} FROM {{schema}}.runs WHERE id = %s"),
        "get_run_pending": q(
            # What the run waits on, from its waiting steps, in the same round trip; through
            # the steps' primary key (run_id first). list_runs does not pay for it.
            f"SELECT {RUN_COLUMNS}, (SELECT json_agg(json_build_array(s.kind, s.step_key,"
            " s.name, s.callback_id, s.wake_at) ORDER BY s.position) FROM {schema}.steps s"
            " WHERE s.run_id = runs.id AND s.status IN ('pending', 'scheduled')"
            " AND s.kind IN ('callback', 'sleep', 'suspend', 'condition', 'child'))"
            " FROM {schema}.runs WHERE id = %s"
        ),
        "history": q(
            "SELECT step_key, step_name, kind, status, attempt, result, error, created_at,"
            " started_at, finished_at FROM {schema}.step_attempts WHERE run_id = %s"
            " ORDER BY id"
        ),
        "acquire": q(
            # Joined with itself to read the lease as it was: still set means the pass
            # before took it and never finished (a finished pass clears it). The run's steps
            # come back in the same statement.
            "WITH r AS (UPDATE {schema}.runs ru SET lease_owner = %(owner)s,"
            " lease_expires_at = %(until)s, lease_token = ru.lease_token + 1"
            " FROM {schema}.runs old WHERE ru.id = %(run_id)s AND old.id = ru.id"
            " AND ru.status = 'running'"
            " AND (ru.lease_expires_at IS NULL OR ru.lease_expires_at <= %(now)s)"
            " RETURNING ru.id, ru.lease_token, ru.workflow, ru.input, ru.created_at, ru.version,"
            " old.lease_expires_at IS NOT NULL AS recovering, ru.deadline,"
            " ru.cancel_requested_at IS NOT NULL AS cancel_requested, ru.cancel_reason,"
            " ru.cleanup_deadline, ru.parent_id, old.version AS seen)"
            " SELECT r.lease_token, r.workflow, r.input, r.created_at, r.version, r.recovering,"
            " r.deadline, r.cancel_requested, r.cancel_reason, r.cleanup_deadline, r.parent_id, "
            + _STEPS_OF.format(run="r.id")
            # the version the steps were read at: a writer that committed while this statement
            # waited for the run's row moved the version past it (the steps then read again)
            + ", r.seen FROM r"
        ),
        "steps": q(
            # result and error as text: decoded together below, in one json.loads.
            "SELECT step_key, name, position, kind, target, status, attempt, result::text,"
            " error::text, wake_at, callback_id,"
            " CASE WHEN kind = 'child' THEN input ->> 'run_id' END"
            " FROM {schema}.steps WHERE run_id = %s"
            " ORDER BY position"
        ),
        "write_steps": q(
            "WITH r AS (UPDATE {schema}.runs SET version = version + 1,"
            " updated_at = %(now)s, lease_expires_at = %(until)s"
            " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running'"
            " RETURNING id, version)" + _STEP_WRITES
        ),
        "finish_pass": q(
            # A cancel request the pass did not see (made after its last write) keeps a run
            # that would rest suspended running: the pass that follows delivers it.
            "WITH r AS (UPDATE {schema}.runs SET status = CASE WHEN %(status)s = 'suspended'"
            " AND cancel_requested_at IS NOT NULL AND NOT %(cancel_seen)s THEN 'running'"
            " ELSE %(status)s END, output = %(output)s,"
            " error = %(error)s, wake_at = %(wake_at)s, lease_owner = NULL,"
            " lease_expires_at = NULL, lease_token = lease_token + 1,"
            " version = version + 1, updated_at = %(now)s,"
            # Settled when the pass saw every result: no other writer since its last write.
            " settled_version = CASE WHEN %(settled)s AND version = %(seen)s"
            " THEN version + 1 ELSE settled_version END, driven_at = NULL, redrives = 0"
            " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running'"
            " RETURNING id, version)"
            + _CANCEL_STEPS_OF_ENDED_RUN
            + _STEP_WRITES.replace(
                "SELECT version FROM r",
                # the token of the step this pass hands to its worker (a chained step)
                "SELECT version, (SELECT lease_token FROM s WHERE s.step_key = %(claim_key)s)"
                " FROM r",
            )
        ),
        "start_child": q(
            # The parent's child step and the child run in one statement, fenced on the
            # parent's lease. The child's id is derived from the parent's and the step's key:
            # a replay after a crash finds it and leaves it be.
            "WITH r AS (UPDATE {schema}.runs SET version = version + 1,"
            " updated_at = %(now)s, lease_expires_at = %(until)s"
            " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running'"
            " RETURNING id, version),"
            " ch AS (INSERT INTO {schema}.runs (id, workflow, status, input, created_at,"
            " updated_at, deadline, parent_id, parent_step) SELECT %(child_id)s,"
            " %(child_workflow)s, 'running', %(child_input)s, %(now)s, %(now)s,"
            " %(child_deadline)s, r.id, %(step_key)s FROM r ON CONFLICT (id) DO NOTHING)"
            + _STEP_WRITES
        ),
        "time_out_step": q(
            # Fenced on the callback (or child) still waiting past its deadline (a heartbeat
            # may have moved it, a completion may have come): FOR UPDATE re-reads a row
            # changed meanwhile, so a completion committed first is never overwritten. A
            # child that timed out is asked to cancel (and its waiting steps cancelled) here.
            "WITH due AS (SELECT 1 FROM {schema}.steps WHERE run_id = %(run_id)s"
            " AND step_key = %(step_key)s AND kind IN ('callback', 'child')"
            " AND status = 'scheduled' AND wake_at <= %(now)s FOR UPDATE),"
            " r AS (UPDATE {schema}.runs SET version = version + 1,"
            " updated_at = %(now)s, lease_expires_at = %(until)s"
            " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running'"
            " AND EXISTS (SELECT 1 FROM due) RETURNING id, version),"
            " ch AS (UPDATE {schema}.runs c SET status = 'running',"
            " cancel_requested_at = coalesce(c.cancel_requested_at, %(now)s),"
            " cancel_reason = CASE WHEN c.cancel_requested_at IS NULL THEN %(reason)s"
            " ELSE c.cancel_reason END, version = c.version + 1, updated_at = %(now)s"
            " FROM r WHERE c.parent_id = r.id AND c.parent_step = %(step_key)s"
            " AND c.status IN ('running', 'suspended') RETURNING c.id)"
            + _CANCEL_WAITING_STEPS.replace(
                "FROM r WHERE st.run_id = r.id", "FROM ch WHERE st.run_id = ch.id"
            )
            + _STEP_WRITES.replace(
                "SELECT version FROM r",
                "SELECT (SELECT version FROM r), EXISTS (SELECT 1 FROM {schema}.runs"
                " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running')",
            )
        ),
        "fail_overdue": q(
            # Suspended runs past their deadline (no timer wakes them): failed with
            # RunDeadlineExceeded, their waiting steps cancelled. Bounded, and claimed with
            # SKIP LOCKED so racing sweepers split the work (runs_overdue, migration 0007).
            "WITH c AS (SELECT id FROM {schema}.runs WHERE status = 'suspended'"
            " AND deadline <= %(now)s AND (%(only)s::uuid IS NULL OR id = %(only)s::uuid)"
            " ORDER BY deadline LIMIT %(limit)s FOR UPDATE SKIP LOCKED),"
            " r AS (UPDATE {schema}.runs SET status = 'failed', error = jsonb_build_object("
            "'type', 'RunDeadlineExceeded', 'message', 'run ' || runs.id || ' went past its"
            " deadline (' || to_char(runs.deadline AT TIME ZONE 'UTC',"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00)'),"
            " wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL,"
            " lease_token = runs.lease_token + 1, version = runs.version + 1,"
            " updated_at = %(now)s FROM c WHERE runs.id = c.id AND runs.status = 'suspended'"
            " RETURNING runs.id)" + _CANCEL_WAITING_STEPS + " SELECT id FROM r"
        ),
        "renew": q(
            "UPDATE {schema}.runs SET lease_expires_at = %(until)s"
            " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running'"
            " RETURNING version"
        ),
        "resume": q(
            "WITH r AS (UPDATE {schema}.runs SET status = 'running', updated_at = %(now)s,"
            " version = version + 1 WHERE id = %(run_id)s AND status = 'suspended'"
            " RETURNING id),"
            " s AS (UPDATE {schema}.steps st SET status = 'succeeded', updated_at = %(now)s,"
            " result = %(payload)s FROM r WHERE st.run_id = r.id AND st.kind = 'suspend'"
            " AND st.status = 'pending' RETURNING st.run_id, st.step_key, st.attempt),"
            " a AS (UPDATE {schema}.step_attempts sa SET status = 'succeeded',"
            " result = %(payload)s, finished_at = %(now)s FROM s WHERE sa.run_id = s.run_id"
            " AND sa.step_key = s.step_key AND sa.attempt = s.attempt)"
            " SELECT count(*) FROM r"
        ),
        "claim_step": q(
            # Joined with the step as it was: taking over an expired claim returns the
            # owner whose attempt never finished (the worker records it as interrupted).
            # A step with a timeout is claimed for at least that plus 30s (greatest() skips
            # the NULL of a step without one): its worker enforces the timeout meanwhile.
            "WITH s AS (UPDATE {schema}.steps st SET status = 'running',"
            " lease_owner = %(owner)s, lease_expires_at = greatest(%(until)s, %(now)s"
            " + st.timeout_ms * interval '1 millisecond' + interval '30 seconds'),"
            " lease_token = st.lease_token + 1, updated_at = %(now)s"
            " FROM {schema}.runs r, {schema}.steps old"
            " WHERE st.run_id = %(run_id)s AND st.step_key = %(step_key)s"
            " AND st.attempt = %(attempt)s AND st.kind = 'rpc'"
            " AND (st.status = 'scheduled'"
            " OR (st.status = 'running' AND st.lease_expires_at <= %(now)s))"
            " AND r.id = st.run_id AND r.status = 'running'"
            " AND old.run_id = st.run_id AND old.step_key = st.step_key"
            " RETURNING st.run_id, r.workflow, st.step_key, st.name, st.attempt, st.target,"
            " st.input, st.lease_token, st.max_attempts, st.retry_delay_ms,"
            " CASE WHEN old.status = 'running' THEN coalesce(old.lease_owner, '?') END,"
            " st.retry_policy, st.timeout_ms),"
            " a AS (UPDATE {schema}.step_attempts sa SET status = 'running',"
            " started_at = coalesce(sa.started_at, %(now)s) FROM s WHERE sa.run_id = s.run_id"
            " AND sa.step_key = s.step_key AND sa.attempt = s.attempt)"
            " SELECT * FROM s"
        ),
        "complete_step": q(
            "WITH s AS (UPDATE {schema}.steps SET status = %(status)s, result = %(result)s,"
            " error = %(error)s, wake_at = %(wake_at)s, lease_owner = NULL,"
            " lease_expires_at = NULL, updated_at = %(now)s"
            " WHERE run_id = %(run_id)s AND step_key = %(step_key)s"
            " AND attempt = %(attempt)s AND lease_token = %(token)s AND status = 'running'"
            " AND EXISTS (SELECT 1 FROM {schema}.runs WHERE id = %(run_id)s"
            " AND status = 'running') RETURNING run_id, step_key, attempt, batch_key),"
            " a AS (UPDATE {schema}.step_attempts sa SET status = %(attempt_status)s,"
            " result = %(result)s, error = %(error)s, finished_at = %(now)s FROM s"
            " WHERE sa.run_id = s.run_id AND sa.step_key = s.step_key"
            " AND sa.attempt = s.attempt),"
            # An item of a chained batch settled for good: count it and start the items the
            # policy and the limit allow, under the batch row's lock (migration 0011).
            " c AS (SELECT bt.run_id, bt.batch_key, bt.next_index AS first, bt.position_base,"
            " bt.target, bt.max_attempts, bt.retry_delay_ms, bt.retry_policy, bt.timeout_ms,"
            " bt.running - 1 AS still, CASE WHEN (bt.min_successful IS NOT NULL"
            " AND bt.succeeded + %(succ)s >= bt.min_successful)"
            " OR (bt.tolerated_failures IS NOT NULL"
            " AND bt.failed + %(fail)s > bt.tolerated_failures)"
            " OR (bt.tolerated_ratio IS NOT NULL"
            " AND (bt.failed + %(fail)s)::float8 / bt.total > bt.tolerated_ratio) THEN 0"
            " ELSE greatest(0, least(bt.concurrency - bt.running + 1,"
            " bt.total - bt.next_index)) END AS starts"
            " FROM {schema}.batches bt JOIN s ON bt.run_id = s.run_id"
            " AND bt.batch_key = s.batch_key WHERE %(final)s FOR UPDATE OF bt),"
            " b AS (UPDATE {schema}.batches bt SET succeeded = bt.succeeded + %(succ)s,"
            " failed = bt.failed + %(fail)s, next_index = bt.next_index + c.starts,"
            " running = c.still + c.starts FROM c WHERE bt.run_id = c.run_id"
            " AND bt.batch_key = c.batch_key),"
            " i AS (SELECT c.*, it.idx, it.name, it.input FROM c JOIN {schema}.batch_items it"
            " ON it.run_id = c.run_id AND it.batch_key = c.batch_key AND it.idx >= c.first"
            " AND it.idx < c.first + c.starts),"
            " ns AS (INSERT INTO {schema}.steps (run_id, step_key, position, name, kind, target,"
            " status, attempt, input, max_attempts, retry_delay_ms, retry_policy, timeout_ms,"
            " batch_key, created_at, updated_at) SELECT i.run_id, i.batch_key || '/' || i.name,"
            " i.position_base + i.idx, i.name, 'rpc', i.target, 'scheduled', 1, i.input,"
            " i.max_attempts, i.retry_delay_ms, i.retry_policy, i.timeout_ms, i.batch_key,"
            " %(now)s, %(now)s FROM i ORDER BY i.idx ON CONFLICT (run_id, step_key) DO NOTHING"
            " RETURNING run_id, step_key, name),"
            # Once the batch has ended its items' inputs are not needed any more.
            " d AS (DELETE FROM {schema}.batch_items it USING c WHERE it.run_id = c.run_id"
            " AND it.batch_key = c.batch_key AND c.still + c.starts = 0),"
            " na AS (INSERT INTO {schema}.step_attempts (run_id, step_key, attempt, step_name,"
            " kind, status, created_at) SELECT run_id, step_key, 1, name, 'rpc', 'scheduled',"
            " %(now)s FROM ns ON CONFLICT DO NOTHING),"
            # The run changes (a pass must follow) unless the batch goes on by itself; when
            # its lease is free the worker takes it here for that pass, which gets the run's
            # steps from this statement (as they were before it: the worker patches in the
            # result it just stored) instead of two more statements.
            " r AS (UPDATE {schema}.runs ru SET version = ru.version + 1, updated_at = %(now)s,"
            " lease_owner = CASE WHEN " + _TAKES + " THEN %(owner)s ELSE ru.lease_owner END,"
            " lease_expires_at = CASE WHEN " + _TAKES + " THEN %(until)s"
            " ELSE ru.lease_expires_at END,"
            " lease_token = CASE WHEN " + _TAKES + " THEN ru.lease_token + 1"
            " ELSE ru.lease_token END"
            " FROM s, {schema}.runs old WHERE ru.id = s.run_id AND old.id = ru.id"
            " AND NOT EXISTS (SELECT 1 FROM c WHERE c.still + c.starts > 0)"
            " RETURNING ru.id, ru.lease_owner IS NOT DISTINCT FROM %(owner)s AS leased,"
            " ru.lease_token, ru.workflow, ru.input, ru.created_at, ru.version,"
            # the snapshot's view: conservative (a lease released meanwhile reads as a pass
            # that died holding it), and the version the steps below were read at
            " old.lease_expires_at IS NOT NULL AS recovering, old.version AS seen,"
            " ru.deadline, ru.cancel_requested_at IS NOT NULL AS cancel_requested,"
            " ru.cancel_reason, ru.cleanup_deadline, ru.parent_id)"
            " SELECT (SELECT count(*) FROM s), ARRAY(SELECT step_key FROM ns),"
            " EXISTS (SELECT 1 FROM r), l.seen, EXISTS (SELECT 1 FROM c),"
            " l.lease_token, l.workflow, l.input, l.created_at,"
            " l.version, l.recovering, l.deadline, l.cancel_requested, l.cancel_reason,"
            " l.cleanup_deadline, l.parent_id, " + _STEPS_OF.format(run="l.id") + ""
            " FROM (SELECT 1) AS one LEFT JOIN (SELECT * FROM r WHERE r.leased) AS l ON true"
        ),
        "start_batch": q(
            # A chained batch's plan, its items, and the writes of its first items (and its
            # scope step) in one statement, fenced on the lease.
            "WITH r AS (UPDATE {schema}.runs SET version = version + 1,"
            " updated_at = %(now)s, lease_expires_at = %(until)s"
            " WHERE id = %(run_id)s AND lease_token = %(token)s AND status = 'running'"
            " RETURNING id, version),"
            " bt AS (INSERT INTO {schema}.batches (run_id, batch_key, target, total,"
            " concurrency, next_index, running, min_successful, tolerated_failures,"
            " tolerated_ratio, position_base, max_attempts, retry_delay_ms, retry_policy,"
            " timeout_ms, created_at) SELECT r.id, %(batch_key)s, %(target)s, %(total)s,"
            " %(concurrency)s, %(started)s, %(started)s, %(min_successful)s,"
            " %(tolerated_failures)s, %(tolerated_ratio)s, %(position_base)s,"
            " %(max_attempts)s, %(retry_delay_ms)s, %(retry_policy)s, %(timeout_ms)s, %(now)s"
            " FROM r RETURNING run_id),"
            " it AS (INSERT INTO {schema}.batch_items (run_id, batch_key, idx, name, input)"
            " SELECT bt.run_id, %(batch_key)s, e.ord - 1, n.name, e.value FROM bt,"
            " json_array_elements(%(items)s::json) WITH ORDINALITY AS e(value, ord)"
            " JOIN json_array_elements_text(%(names)s::json) WITH ORDINALITY AS n(name, ord)"
            " ON n.ord = e.ord)" + _STEP_WRITES
        ),
        "get_batch": q(
            "SELECT next_index, running, succeeded, failed FROM {schema}.batches"
            " WHERE run_id = %(run_id)s AND batch_key = %(batch_key)s"
        ),
        "fail_run": q(
            "WITH r AS (UPDATE {schema}.runs SET status = 'failed', error = %(error)s,"
            " wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL,"
            " lease_token = lease_token + 1, version = version + 1, updated_at = %(now)s"
            " WHERE id = %(run_id)s AND status IN ('running', 'suspended')"
            " RETURNING id)" + _CANCEL_WAITING_STEPS + " SELECT id FROM r"
        ),
        "needs_pass": q(
            "SELECT version > settled_version FROM {schema}.runs WHERE id = %(run_id)s"
            " AND status = 'running'"
            " AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)"
        ),
        "stuck_runs": q(
            # Claimed with SKIP LOCKED and stamped, so racing sweepers never re-drive the
            # same run, and a run is re-driven once per redrive_after (doubling each time
            # no pass finished since): a backlog is not multiplied.
            "WITH c AS (SELECT id FROM {schema}.runs r WHERE r.status = 'running'"
            " AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s)"
            " AND (r.driven_at IS NULL OR r.driven_at"
            " + %(redrive_after)s * power(2, least(r.redrives, 8))::integer <= %(now)s)"
            " AND (r.lease_expires_at IS NOT NULL"  # a pass died holding the run
            " OR (r.wake_at IS NOT NULL AND r.wake_at <= %(unsent_after)s)"  # lost timer
            " OR (r.version > r.settled_version"  # a result no pass has seen
            " AND r.updated_at <= %(result_after)s)"
            " OR (r.wake_at IS NULL AND r.updated_at <= %(unsent_after)s"  # nothing queued
            # Nothing outstanding: NOT EXISTS, written as a scalar subquery so it stays a probe
            # of the steps' primary key for the few runs that get this far (as NOT EXISTS the
            # planner may hash it: a scan of every step ever recorded, issue 14).
            " AND (SELECT 1 FROM {schema}.steps s WHERE s.run_id = r.id"
            " AND ((s.kind = 'rpc' AND s.status IN ('scheduled', 'running'))"
            # a callback without a timeout waits for its completion, which bumps the version;
            # a child's end bumps it too (migration 0010's trigger)
            " OR (s.kind IN ('callback', 'child') AND s.status = 'scheduled')) LIMIT 1) IS NULL))"
            " ORDER BY r.updated_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " UPDATE {schema}.runs SET driven_at = %(now)s, redrives = redrives + 1"
            " FROM c WHERE {schema}.runs.id = c.id RETURNING c.id"
        ),
        "stuck_steps": q(
            "UPDATE {schema}.steps st SET updated_at = %(now)s FROM {schema}.runs r"
            " WHERE (st.run_id, st.step_key) IN (SELECT s.run_id, s.step_key"
            " FROM {schema}.steps s WHERE s.kind = 'rpc'"
            " AND s.updated_at <= %(unsent_after)s AND (s.status = 'scheduled'"
            " OR (s.status = 'running' AND s.lease_expires_at <= %(now)s))"
            " ORDER BY s.updated_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " AND r.id = st.run_id AND r.status = 'running'"
            " RETURNING st.run_id, st.step_key, st.attempt"
        ),
        # A callback waiting (scheduled, its deadline not passed) in a run that has not ended
        # takes its completion: the step, its attempt row and the run's version in one
        # statement, found through the callback_id unique index (migration 0005).
        "complete_callback": q(
            "WITH s AS (UPDATE {schema}.steps st SET status = %(status)s, result = %(result)s,"
            " error = %(error)s, wake_at = NULL, updated_at = %(now)s FROM {schema}.runs r"
            " WHERE st.callback_id = %(callback_id)s AND st.status = 'scheduled'"
            " AND (st.wake_at IS NULL OR st.wake_at > %(now)s)"
            " AND r.id = st.run_id AND r.status IN ('running', 'suspended')"
            " RETURNING st.run_id, st.step_key, st.attempt, r.status AS run_status),"
            " a AS (UPDATE {schema}.step_attempts sa SET status = %(status)s,"
            " result = %(result)s, error = %(error)s, finished_at = %(now)s FROM s"
            " WHERE sa.run_id = s.run_id AND sa.step_key = s.step_key"
            " AND sa.attempt = s.attempt),"
            " v AS (UPDATE {schema}.runs SET version = version + 1, updated_at = %(now)s"
            " FROM s WHERE {schema}.runs.id = s.run_id)"
            " SELECT s.run_id, s.step_key, s.run_status FROM s"
        ),
        # The deadline moves to now + heartbeat timeout, never past the callback's own timeout
        # (both kept in the step's input by the pass that created it).
        "heartbeat_callback": q(
            "UPDATE {schema}.steps st SET updated_at = %(now)s, wake_at = CASE"
            " WHEN st.input ->> 'heartbeat_ms' IS NULL THEN st.wake_at"
            " ELSE least((st.input ->> 'timeout_at')::timestamptz, %(now)s"
            " + (st.input ->> 'heartbeat_ms')::bigint * interval '1 millisecond') END"
            " FROM {schema}.runs r WHERE st.callback_id = %(callback_id)s"
            " AND st.status = 'scheduled' AND (st.wake_at IS NULL OR st.wake_at > %(now)s)"
            " AND r.id = st.run_id AND r.status IN ('running', 'suspended')"
            " RETURNING st.run_id, st.step_key, r.status, st.wake_at"
        ),
        "callback_state": q(
            "SELECT st.run_id, st.step_key, st.status, r.status, st.result::text, st.error,"
            " st.wake_at FROM {schema}.steps st JOIN {schema}.runs r ON r.id = st.run_id"
            " WHERE st.callback_id = %s"
        ),
        "cancelling_children": q(
            "WITH RECURSIVE tree AS (SELECT id FROM {schema}.runs WHERE parent_id = %(run_id)s"
            " UNION ALL SELECT c.id FROM {schema}.runs c JOIN tree ON c.parent_id = tree.id)"
            " SELECT r.id FROM tree JOIN {schema}.runs r ON r.id = tree.id"
            " WHERE r.status = 'running' AND r.cancel_requested_at IS NOT NULL"
        ),
        "cancel_request": q(
            "SELECT cancel_reason, cleanup_deadline FROM {schema}.runs"
            " WHERE id = %(run_id)s AND cancel_requested_at IS NOT NULL"
        ),
        "cancel": q(
            # A request: the run goes on (running, so a pass follows) and that pass raises
            # WorkflowCancelled into the body. Asking again keeps the first request.
            "WITH prev AS (SELECT cancel_requested_at FROM {schema}.runs"
            " WHERE id = %(run_id)s),"
            " r AS (UPDATE {schema}.runs SET status = 'running',"
            " cancel_requested_at = coalesce(cancel_requested_at, %(now)s),"
            " cancel_reason = CASE WHEN cancel_requested_at IS NULL THEN %(reason)s"
            " ELSE cancel_reason END,"
            " cleanup_deadline = CASE WHEN cancel_requested_at IS NULL THEN %(cleanup)s"
            " ELSE cleanup_deadline END,"
            " version = version + 1, updated_at = %(now)s"
            " WHERE id = %(run_id)s AND status IN ('running', 'suspended')"
            f" RETURNING {RUN_COLUMNS})"
            + _CANCEL_STEPS_ON_REQUEST
            + f" SELECT {RUN_COLUMNS} FROM r"
        ),
        # Retention (issue 14): up to %(limit)s finished runs last changed before %(before)s,
        # oldest first, claimed with SKIP LOCKED (concurrent sweepers split the work; a row
        # someone else holds is left for the next batch) and deleted with their steps, attempts,
        # batches and batch items (ON DELETE CASCADE, migrations 0001 and 0011). Only the
        # statement's rows are locked, for the statement's short time. A terminal status never
        # changes back, and the DELETE checks it again. No index on updated_at: every step write
        # moves it, and indexing it would stop runs' updates from being HOT. created_at <=
        # updated_at, so "created_at < before" (redundant) range-scans runs_by_created or
        # runs_by_status, and only runs created before then are read, never the newer ones.
        # Children keep working when their parent goes: runs.parent_id has no foreign key and
        # migration 0010's triggers find no parent step to write.
        "delete_finished": q(
            "WITH v AS (SELECT id FROM {schema}.runs"
            " WHERE status = ANY(%(statuses)s::text[]) AND created_at < %(before)s"
            " AND updated_at < %(before)s ORDER BY created_at, id LIMIT %(limit)s"
            " FOR UPDATE SKIP LOCKED)"
            " DELETE FROM {schema}.runs r USING v WHERE r.id = v.id"
            " AND r.status IN ('completed', 'failed', 'cancelled') RETURNING r.id"
        ),
        "count_finished": q(
            "SELECT count(*) FROM {schema}.runs WHERE status = ANY(%(statuses)s::text[])"
            " AND created_at < %(before)s AND updated_at < %(before)s"
        ),
    }


def list_runs_query(
    schema: str,
    *,
    workflow: str | None = None,
    status: str | None = None,
    parent_id: object = None,
    before: tuple[object, str] | None = None,
    summary: bool = False,
    limit: int = 50,
    created_after: object = None,
    created_before: object = None,
    search: str | None = None,
) -> tuple[str, list[object]]:
    """``list_runs``' statement and its parameters, newest first (``before``: a page's cursor).

    ``parent_id`` is a UUID (the caller validates it); ``before`` is ``(created_at, run id)``.
    """
    # A summary leaves the JSON columns unread; the NULLs keep the row shape the store reads.
    columns = (
        "id, workflow, status, NULL, NULL, error, created_at, updated_at, wake_at,"
        " idempotency_key, forked_from, parent_id"
        if summary
        else RUN_COLUMNS
    )
    where: list[str] = []
    params: list[object] = []
    if workflow is not None:
        where.append("workflow = %s")
        params.append(workflow)
    order = "created_at DESC, id DESC"
    if status is not None:
        # = ANY of one element, and status first in the order: the planner cannot drop the
        # order's status (as it does for status = constant) so it reads (workflow,) status,
        # created_at DESC, id DESC's index (migration 0012) rather than the newest runs of any
        # status, filtering past every run in flight to the first one finished (issue 14).
        where.append("status = ANY(ARRAY[%s::text])")
        params.append(status)
        order = "status, " + order
    _run_filters(
        where,
        params,
        parent_id=parent_id,
        created_after=created_after,
        created_before=created_before,
        search=search,
    )
    if before is not None:
        where.append("(created_at, id) < (%s, %s)")
        params.extend([before[0], uuid.UUID(before[1])])
    text = (
        f"SELECT {columns} FROM {{schema}}.runs"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {order} LIMIT %s"
    )
    params.append(limit)
    return quoter(schema)(text), params


_UUID_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


def _id_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The run ids starting with ``prefix``, as a range of the primary key.

    None when no run id (hex digits in the 8-4-4-4-12 shape) can start so.
    """
    text = prefix.lower()
    if not text or len(text) > len(_UUID_SHAPE):
        return None
    for char, shape in zip(text, _UUID_SHAPE, strict=False):
        if (char == "-") != (shape == "-") or (shape == "x" and char not in "0123456789abcdef"):
            return None
    digits = text.replace("-", "")
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def _key_prefix(prefix: str) -> tuple[str, list[object]]:
    """Idempotency keys starting with ``prefix``: a range of ``runs_by_key_prefix`` (0013).

    Character by character (``~>=~``, ``~<~``): the keys from ``prefix`` up to ``prefix`` with
    its last character's code point plus one.
    """
    last = ord(prefix[-1])
    if last >= 0x10FFFF:  # no next character: the rest of the range
        return "idempotency_key ~>=~ %s", [prefix]
    after = last + 1 if last + 1 != 0xD800 else 0xE000  # past the surrogates, not text
    return "idempotency_key ~>=~ %s AND idempotency_key ~<~ %s", [
        prefix,
        prefix[:-1] + chr(after),
    ]


def _run_filters(
    where: list[str],
    params: list[object],
    *,
    parent_id: object = None,
    created_after: object = None,
    created_before: object = None,
    search: str | None = None,
) -> None:
    """The filters ``list_runs`` and ``count_runs`` share, added to ``where`` and ``params``.

    ``search`` matches a run id (whole, or its beginning: a range of the primary key) or an
    idempotency key (whole, or its beginning).
    """
    if parent_id is not None:
        where.append("parent_id = %s")
        params.append(parent_id)
    if created_after is not None:
        where.append("created_at >= %s")
        params.append(created_after)
    if created_before is not None:
        where.append("created_at < %s")
        params.append(created_before)
    if search:
        try:
            exact = uuid.UUID(search)
        except ValueError:
            exact = None
        if exact is not None:
            where.append("(id = %s OR idempotency_key = %s)")
            params.extend([exact, search])
            return
        keys, key_params = _key_prefix(search)
        ids = _id_range(search)
        if ids is None:
            where.append(keys)
            params.extend(key_params)
        else:
            where.append(f"(id BETWEEN %s AND %s OR {keys})")
            params.extend([*ids, *key_params])


def count_runs_query(
    schema: str,
    *,
    workflow: str | None = None,
    parent_id: object = None,
    created_after: object = None,
    created_before: object = None,
    search: str | None = None,
    statuses: list[str],
    cap: int,
) -> tuple[str, list[object]]:
    """How many runs of each status match, each count stopping at ``cap + 1`` rows.

    One bounded read per status (an index range of ``runs_by_status`` or, with a workflow,
    ``runs_by_workflow_status``), so a page showing counts costs the same at a million runs.
    """
    where = ["r.status = s.status"]
    params: list[object] = []
    if workflow is not None:
        where.append("r.workflow = %s")
        params.append(workflow)
    filters: list[str] = []
    _run_filters(
        filters,
        params,
        parent_id=parent_id,
        created_after=created_after,
        created_before=created_before,
        search=search,
    )
    where.extend(filters)  # unqualified: only runs (r) has those columns
    text = (
        "SELECT s.status, (SELECT count(*) FROM (SELECT 1 FROM {schema}.runs r WHERE "
        + " AND ".join(where)
        + " LIMIT %s) c) FROM unnest(%s::text[]) AS s(status)"
    )
    return quoter(schema)(text), [*params, cap + 1, statuses]
