"""Every hot-path statement against a growing history: buffers and time at 10k and 1M runs.

``python -m bench history-scale`` (issue 14, item 3) creates a fresh schema per size with
:class:`~lambda_flow.store.postgres.PostgresStore`'s own migrations, bulk-loads it with SQL
(``INSERT ... SELECT`` over ``generate_series``, not the engine) and ``VACUUM ANALYZE``\\ s it:

  history     N finished runs (completed, failed, cancelled; 10 workflows; 3% children of
              another run; a quarter with an idempotency key), 5 steps and 5 attempt rows each
  in flight   10,000 newer runs, the same at every size: 40% running with a timer (a sleep step,
              1% of the timers due and lost), 30% running without a timer (an RPC step scheduled
              or claimed; 1% never sent), 30% suspended (a callback or a ``suspend`` step; 1% past
              their deadline); a few leased, a few with a result no pass has seen

Then every statement of ``lambda_flow/store/_sql.py`` the hot paths run (``statements(schema)``
and ``list_runs_query``, the texts the store sends) is run with ``EXPLAIN (ANALYZE, BUFFERS)``
and realistic parameters, each in its own transaction rolled back afterwards (so every size
measures the same state); a fenced write first takes a real lease (``acquire``, or
``claim_step`` for ``complete_step``) in that transaction. Each is run ``--repeat`` (3) times:
buffers (shared hit + read, execution) of the last run, the median execution time; and once
more prepared, on its generic plan (``plan_cache_mode = force_generic_plan``: psycopg prepares
a statement run 5 times, and the server may then keep the generic plan). The target: no
statement reads more than 2x the buffers at the largest size than at the smallest, on either
plan.

Last, HOT updates: a workload of real, committed writes on the in-flight runs (acquire,
write_steps, finish_pass, claim_step, complete_step) and ``pg_stat_user_tables``' ``n_tup_upd``
and ``n_tup_hot_upd`` for ``runs`` and ``steps`` around each statement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from lambda_flow.core import RunStatus
from lambda_flow.store._sql import count_runs_query, list_runs_query, statements
from lambda_flow.store.postgres import PostgresStore

SUMMARY = "every hot-path statement at 10k and 1M finished runs: buffers, time, HOT updates"
DEFAULT_SIZES = (10_000, 1_000_000)
IN_FLIGHT = 10_000
TARGET_RATIO = 2.0
WORKFLOWS = 10
# The data's clock: the history ends at T0, the in-flight runs start after it, "now" is NOW.
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
UNSENT_AFTER = NOW - timedelta(minutes=2)
RESULT_AFTER = NOW - timedelta(seconds=5)
OWNER = "bench-worker"


# -- loading ---------------------------------------------------------------------------------
# Finished run i (1..N): id md5('f' || i), created one second apart, ending at T0. In-flight
# run j (1..IN_FLIGHT): id md5('i' || j), created 100 ms apart after T0; its kind is j % 10.
_LOAD = [
    """
    INSERT INTO {schema}.runs (id, workflow, status, input, output, error, idempotency_key,
        lease_token, version, settled_version, created_at, updated_at, parent_id, parent_step)
    SELECT md5('f' || i)::uuid, 'wf' || (i % %(workflows)s),
        CASE WHEN i % 20 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'cancelled' ELSE 'completed' END,
        json_build_object('n', i), CASE WHEN i % 20 = 0 OR i % 50 = 1 THEN NULL
            ELSE json_build_object('ok', true, 'n', i) END,
        CASE WHEN i % 20 = 0 THEN '{"type": "Boom", "message": "boom"}'::jsonb END,
        CASE WHEN i % 4 = 0 THEN 'key-' || i END, 6, 12, 12,
        %(t0)s - (%(n)s - i) * interval '1 second',
        %(t0)s - (%(n)s - i) * interval '1 second' + interval '2 seconds',
        CASE WHEN i % 100 BETWEEN 1 AND 3 AND i > 100 THEN md5('f' || (i - i % 100))::uuid END,
        CASE WHEN i % 100 BETWEEN 1 AND 3 AND i > 100 THEN 'child' || (i % 100) END
    FROM generate_series(1, %(n)s) AS i
    """,
    """
    INSERT INTO {schema}.steps (run_id, step_key, position, name, kind, target, status, attempt,
        input, result, error, max_attempts, created_at, updated_at)
    SELECT r.id, 'step-' || k, k, 'step-' || k, CASE WHEN k IN (2, 4) THEN 'rpc' ELSE 'inline' END,
        CASE WHEN k IN (2, 4) THEN 'fn' END,
        CASE WHEN r.status = 'failed' AND k = 5 THEN 'failed' ELSE 'succeeded' END, 1,
        CASE WHEN k IN (2, 4) THEN json_build_object('x', k) END,
        CASE WHEN r.status = 'failed' AND k = 5 THEN NULL ELSE json_build_object('v', k) END,
        CASE WHEN r.status = 'failed' AND k = 5 THEN r.error END, 3,
        r.created_at + k * interval '100 ms', r.created_at + k * interval '100 ms'
    FROM {schema}.runs r CROSS JOIN generate_series(1, 5) AS k
    ORDER BY r.id, k
    """,
    """
    INSERT INTO {schema}.runs (id, workflow, status, input, lease_owner, lease_expires_at,
        lease_token, version, settled_version, wake_at, deadline, created_at, updated_at)
    SELECT md5('i' || j)::uuid, 'wf' || (j % %(workflows)s),
        CASE WHEN j % 10 >= 7 THEN 'suspended' ELSE 'running' END, json_build_object('n', j),
        CASE WHEN j % 200 = 2 THEN %(owner)s END,
        CASE WHEN j % 200 = 2 THEN %(now)s + interval '1 minute' END, 3,
        CASE WHEN j % 500 = 3 THEN 4 ELSE 3 END, 3,
        CASE WHEN j % 10 < 4 THEN CASE WHEN j % 100 = 0 THEN %(now)s - interval '10 minutes'
            ELSE %(now)s + (j % 97 + 1) * interval '1 hour' END END,
        CASE WHEN j % 10 >= 7 THEN CASE WHEN j % 100 = 7 THEN %(now)s - interval '1 minute'
            ELSE %(now)s + interval '7 days' END END,
        %(t0)s + j * interval '100 ms',
        CASE WHEN j % 100 IN (4, 5, 8, 9, 10) THEN %(now)s - interval '30 minutes'
            ELSE %(now)s - (j % 60) * interval '1 second' END
    FROM generate_series(1, %(f)s) AS j
    """,
    """
    INSERT INTO {schema}.steps (run_id, step_key, position, name, kind, target, status, attempt,
        input, result, wake_at, lease_owner, lease_expires_at, lease_token, max_attempts,
        created_at, updated_at)
    SELECT r.id, 'step-' || k, k, 'step-' || k,
        CASE WHEN k < 3 THEN 'inline' WHEN j % 10 < 4 THEN 'sleep' WHEN j % 10 < 7 THEN 'rpc'
            WHEN j % 2 = 0 THEN 'callback' ELSE 'suspend' END,
        CASE WHEN k = 3 AND j % 10 BETWEEN 4 AND 6 THEN 'fn' END,
        CASE WHEN k < 3 THEN 'succeeded' WHEN j % 10 < 4 THEN 'scheduled'
            WHEN j % 10 < 7 THEN CASE WHEN j % 2 = 0 THEN 'scheduled' ELSE 'running' END
            WHEN j % 2 = 0 THEN 'scheduled' ELSE 'pending' END,
        CASE WHEN k = 3 AND j % 10 BETWEEN 7 AND 9 AND j % 2 = 1 THEN 0 ELSE 1 END,
        CASE WHEN k = 3 AND j % 10 >= 7 AND j % 2 = 0
            THEN json_build_object('callback_id', 'cb-' || j)
            WHEN k = 3 AND j % 10 BETWEEN 4 AND 6 THEN json_build_object('x', j) END,
        CASE WHEN k < 3 THEN json_build_object('v', k) END,
        CASE WHEN k = 3 AND j % 10 < 4 THEN r.wake_at END,
        CASE WHEN k = 3 AND j % 10 BETWEEN 4 AND 6 AND j % 2 = 1 THEN %(owner)s END,
        CASE WHEN k = 3 AND j % 10 BETWEEN 4 AND 6 AND j % 2 = 1
            THEN %(now)s + interval '1 minute' END, 1, 3,
        r.created_at + k * interval '10 ms', r.updated_at
    FROM generate_series(1, %(f)s) AS j JOIN {schema}.runs r ON r.id = md5('i' || j)::uuid
        CROSS JOIN generate_series(1, 3) AS k
    ORDER BY r.id, k
    """,
    """
    INSERT INTO {schema}.step_attempts (run_id, step_key, attempt, step_name, kind, status,
        result, error, created_at, started_at, finished_at)
    SELECT run_id, step_key, attempt, name, kind, status, result, error, created_at,
        created_at, CASE WHEN status IN ('succeeded', 'failed') THEN updated_at END
    FROM {schema}.steps WHERE attempt > 0 ORDER BY run_id, created_at, step_key
    """,
]


def _load(conn: psycopg.Connection[Any], schema: str, n: int, in_flight: int) -> float:
    """Fill the schema; the indexes that back no constraint are dropped and built again after.

    Foreign-key triggers are skipped (``session_replication_role``: the rows are consistent by
    construction) and the secondary indexes built once at the end: this keeps 1M runs (11M
    rows in all) to 70-90 s here. The indexes are rebuilt from their own definitions, so the
    schema measured is the migrations' exactly.
    """
    began = time.perf_counter()
    params = {
        "n": n,
        "f": in_flight,
        "t0": T0,
        "now": NOW,
        "owner": OWNER,
        "workflows": WORKFLOWS,
    }
    ident = sql.Identifier(schema)
    quoted = ident.as_string(conn)
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s"
        " AND i.tablename IN ('runs', 'steps', 'step_attempts') AND NOT EXISTS (SELECT 1"
        " FROM pg_constraint c WHERE c.conindid = format('%%I.%%I', i.schemaname,"
        " i.indexname)::regclass)",
        [schema],
    ).fetchall()
    conn.execute("SET maintenance_work_mem = '512MB'")
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for name, _definition in indexes:
            conn.execute(sql.SQL("DROP INDEX {}.{}").format(ident, sql.Identifier(name)))
        for text in _LOAD:
            # psycopg's placeholders are %(name)s: the modulo operator is written %%.
            conn.execute(text.replace("{schema}", quoted).replace(" % ", " %% "), params)
        for _name, definition in indexes:
            conn.execute(definition)
    for table in ("runs", "steps", "step_attempts"):
        conn.execute(sql.SQL("VACUUM ANALYZE {}.{}").format(ident, sql.Identifier(table)))
    return time.perf_counter() - began


# -- the statements ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Case:
    """One statement measured: its name, text, parameters, and what runs before it."""

    name: str
    query: str
    params: Any
    setup: Callable[[psycopg.Connection[Any], dict[str, Any]], None] | None = None
    prepared: bool = True
    """Whether the store lets psycopg prepare it (a search never is: no generic plan)."""


def _fin(i: int) -> uuid.UUID:
    return uuid.UUID(_md5("f" + str(i)))


def _fly(j: int) -> uuid.UUID:
    return uuid.UUID(_md5("i" + str(j)))


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _writes(step_key: str, position: int, kind: str, status: str) -> str:
    return json.dumps(
        [
            {
                "step_key": step_key,
                "name": step_key,
                "position": position,
                "kind": kind,
                "target": "fn" if kind == "rpc" else None,
                "status": status,
                "attempt": 1,
                "attempt_status": status,
                "started_at": NOW.isoformat(),
                "finished_at": NOW.isoformat() if status == "succeeded" else None,
                "input": {"x": 1} if kind == "rpc" else None,
                "result": {"v": 1} if status == "succeeded" else None,
                "error": None,
                "wake_at": None,
                "max_attempts": 3,
                "retry_delay_ms": 0,
                "retry_policy": None,
                "timeout_ms": None,
                "batch_key": None,
                "lease_owner": None,
                "lease_expires_at": None,
            }
        ]
    )


def _acquire(run_id: uuid.UUID) -> Callable[[psycopg.Connection[Any], dict[str, Any]], None]:
    def setup(conn: psycopg.Connection[Any], params: dict[str, Any]) -> None:
        text = _current_sql(conn)["acquire"]
        row = conn.execute(
            text,
            {
                "owner": OWNER,
                "until": NOW + timedelta(minutes=5),
                "run_id": run_id,
                "now": NOW,
            },
        ).fetchone()
        if row is None:
            raise RuntimeError(f"acquire found no run {run_id}")
        params["token"] = row[0]
        params["seen"] = row[4]

    return setup


def _claim(
    run_id: uuid.UUID, step_key: str
) -> Callable[[psycopg.Connection[Any], dict[str, Any]], None]:
    def setup(conn: psycopg.Connection[Any], params: dict[str, Any]) -> None:
        row = conn.execute(
            _current_sql(conn)["claim_step"], _claim_params(run_id, step_key)
        ).fetchone()
        if row is None:
            raise RuntimeError(f"claim_step found no step {run_id}/{step_key}")
        params["token"] = row[7]

    return setup


def _claim_params(run_id: uuid.UUID, step_key: str) -> dict[str, Any]:
    return {
        "owner": OWNER,
        "until": NOW + timedelta(minutes=5),
        "now": NOW,
        "run_id": run_id,
        "step_key": step_key,
        "attempt": 1,
    }


_SQL_BY_CONN: dict[int, dict[str, str]] = {}


def _current_sql(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return _SQL_BY_CONN[id(conn)]


def _cases(schema: str, n: int) -> list[Case]:
    s = statements(schema)
    # In flight, by j % 10: < 4 sleeping (j % 100 == 0: the timer is due), 4..6 an RPC step
    # (even j: scheduled, odd: claimed), 7..9 suspended (even: a callback, odd: suspend()).
    sleeping, rpc_scheduled, callback = _fly(1001), _fly(1004), _fly(1008)
    mid = n // 2
    finished = _fin(mid)
    parent = _fin(mid - mid % 100)
    cases = [
        Case(
            "create_run",
            s["create_run"],
            [uuid.uuid4(), "wf3", Json({"n": 1}), None, NOW, NOW, None],
        ),
        Case(
            "acquire",
            s["acquire"],
            {"owner": OWNER, "until": NOW + timedelta(minutes=5), "run_id": sleeping, "now": NOW},
        ),
        Case("steps (load)", s["steps"], [sleeping]),
        Case(
            "write_steps",
            s["write_steps"],
            {
                "run_id": sleeping,
                "now": NOW,
                "until": NOW + timedelta(minutes=5),
                "writes": _writes("step-4", 4, "inline", "succeeded"),
            },
            _acquire(sleeping),
        ),
        Case(
            "finish_pass",
            s["finish_pass"],
            {
                "run_id": sleeping,
                "now": NOW,
                "settled": True,
                "cancel_seen": False,
                "status": "completed",
                "output": Json({"ok": True}),
                "error": None,
                "wake_at": None,
                "ended": True,
                "writes": _writes("step-4", 4, "inline", "succeeded"),
                "claim_key": None,
            },
            _acquire(sleeping),
        ),
        Case("claim_step", s["claim_step"], _claim_params(rpc_scheduled, "step-3")),
        Case(
            "complete_step",
            s["complete_step"],
            {
                "status": "succeeded",
                "result": Json({"v": 1}),
                "error": None,
                "wake_at": None,
                "now": NOW,
                "run_id": rpc_scheduled,
                "step_key": "step-3",
                "attempt": 1,
                "attempt_status": "succeeded",
                "succ": 1,
                "fail": 0,
                "final": True,
                "owner": OWNER,
                "until": NOW + timedelta(minutes=5),
            },
            _claim(rpc_scheduled, "step-3"),
        ),
    ]
    for label, filters in _LIST_FILTERS:
        kw = dict(filters)
        if kw.pop("parent", False):
            kw["parent_id"] = parent
        query, params = list_runs_query(schema, **kw, limit=50)
        prepared = "search" not in kw
        cases.append(Case(f"list_runs {label}", query, params, prepared=prepared))
        # The second page: the cursor of the first page's last run (found when measured).
        cases.append(Case(f"list_runs {label} +cursor", "", ("page2", kw), prepared=prepared))
    statuses = [status.value for status in RunStatus]
    # Each status's count stops past the cap (10,000 in the store): bounded, not flat, below it.
    # Measured with a cap both sizes reach; the default's figures are in docs/performance.md.
    for label, kw in (("(no filter)", {}), ("workflow", {"workflow": "wf3"})):
        query, params = count_runs_query(schema, **kw, statuses=statuses, cap=1_000)
        cases.append(Case(f"count_runs {label}", query, params))
    cases += [
        Case("get_run", s["get_run"], [finished]),
        Case("get_run_pending", s["get_run_pending"], [callback]),
        Case("history", s["history"], [finished]),
        Case("needs_pass", s["needs_pass"], {"run_id": sleeping, "now": NOW}),
        Case("stuck_runs", s["stuck_runs"], _sweep_params()),
        Case("stuck_steps", s["stuck_steps"], _sweep_params()),
        Case("fail_overdue", s["fail_overdue"], {"now": NOW, "only": None, "limit": 100}),
        Case(
            "complete_callback",
            s["complete_callback"],
            {
                "status": "succeeded",
                "result": Json({"ok": 1}),
                "error": None,
                "now": NOW,
                "callback_id": "cb-1008",
            },
        ),
        Case(
            "cancel",
            s["cancel"],
            {
                "run_id": sleeping,
                "now": NOW,
                "reason": "bench",
                "cleanup": None,
            },
        ),
    ]
    return cases


_LIST_FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("(no filter)", {}),
    ("summary", {"summary": True}),
    ("workflow", {"workflow": "wf3"}),
    ("status=completed", {"status": "completed"}),
    ("status=failed", {"status": "failed"}),
    ("status=running", {"status": "running"}),
    ("status=suspended", {"status": "suspended"}),
    ("workflow+completed", {"workflow": "wf3", "status": "completed"}),
    ("workflow+cancelled", {"workflow": "wf1", "status": "cancelled"}),
    # No run of wf3 ever failed (failed runs are i % 20 == 0: wf0): the whole range is read.
    ("workflow+failed (none)", {"workflow": "wf3", "status": "failed"}),
    ("workflow+running", {"workflow": "wf3", "status": "running"}),
    ("parent_id", {"parent": True}),
    # The console's search box: a run id's first block (a primary-key range) or a key's
    # beginning; a shorter prefix matches a share of the history, read in full and sorted.
    ("search=7f3a9c01", {"search": "7f3a9c01"}),
]


def _sweep_params() -> dict[str, Any]:
    return {
        "now": NOW,
        "unsent_after": UNSENT_AFTER,
        "result_after": RESULT_AFTER,
        "redrive_after": timedelta(minutes=2),
        "limit": 100,
    }


@dataclass
class Figure:
    buffers: int | None = None
    ms: float | None = None
    rows: int | None = None
    generic_buffers: int | None = None
    """The same statement prepared, on its generic plan (psycopg prepares a statement run 5
    times; the server may then keep the generic plan)."""
    error: str | None = None


def _explain(
    conn: psycopg.Connection[Any], case: Case, repeat: int, schema: str, *, plans: bool = False
) -> Figure:
    times: list[float] = []
    figure = Figure()
    for i in range(repeat + 1 + (1 if plans else 0)):
        try:
            with conn.transaction(force_rollback=True):
                query, params = case.query, case.params
                if isinstance(params, tuple) and params and params[0] == "page2":
                    first, first_params = list_runs_query(schema, **params[1], limit=50)
                    rows = conn.execute(first, first_params).fetchall()
                    # No first page: a cursor from a page of the newest runs.
                    last = rows[-1] if rows else (uuid.UUID(int=0), *[None] * 5, NOW)
                    before = (last[6], str(last[0]))
                    query, params = list_runs_query(schema, **params[1], limit=50, before=before)
                elif case.setup is not None:
                    params = dict(params)
                    case.setup(conn, params)
                if i == repeat and not case.prepared:
                    continue
                if i == repeat:  # the generic plan, once
                    figure.generic_buffers = _buffers(_generic(conn, query, params)["Plan"])
                    continue
                if i > repeat:  # --plans: the plan as text, once more
                    text = conn.execute(
                        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query, params
                    ).fetchall()
                    print(f"--- {case.name}\n" + "\n".join("    " + r[0] for r in text))
                    continue
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params
                ).fetchone()
        except psycopg.Error as exc:
            return Figure(error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        finally:
            if i == repeat:
                conn.execute("DEALLOCATE ALL")
        assert plan is not None
        top = plan[0][0]
        figure.buffers = _buffers(top["Plan"])
        figure.rows = int(top["Plan"].get("Actual Rows", 0))
        times.append(float(top["Execution Time"]))
    figure.ms = statistics.median(times)
    return figure


def _buffers(node: dict[str, Any]) -> int:
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


def _generic(conn: psycopg.Connection[Any], query: str, params: Any) -> dict[str, Any]:
    """EXPLAIN ANALYZE of ``query`` prepared and run on its generic plan."""
    from psycopg._queries import PostgresQuery
    from psycopg.adapt import Transformer

    pq = PostgresQuery(Transformer(conn))
    pq.convert(query, params)
    if isinstance(params, dict):
        values = [params[name] for name in pq._order or []]
    else:
        values = list(params)
    types = [
        "unknown"
        if not oid
        else str(conn.execute("SELECT %s::oid::regtype::text", [oid]).fetchone()[0])  # type: ignore[index]
        for oid in pq.types
    ]
    conn.execute(f"PREPARE lf_bench_generic ({', '.join(types)}) AS {pq.query.decode()}")
    conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    args = ", ".join(sql.Literal(v).as_string(conn) for v in values)
    row = conn.execute(
        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE lf_bench_generic ({args})"
    ).fetchone()
    assert row is not None
    return dict(row[0][0])


# -- HOT updates -------------------------------------------------------------------------------
def _table_counts(conn: psycopg.Connection[Any], schema: str) -> dict[str, tuple[int, int]]:
    conn.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(0.05)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = conn.execute(
        "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND relname IN ('runs', 'steps')",
        [schema],
    ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}


def _hot(  # noqa: C901 - a closure per statement
    conn: psycopg.Connection[Any], schema: str, count: int
) -> list[tuple[str, str, int, int]]:
    """Committed writes on in-flight runs, statement by statement: (statement, table, upd, hot)."""
    s = statements(schema)
    rpc = [j for j in range(1, IN_FLIGHT + 1) if j % 10 == 4 and j % 100 not in (4, 5)][:count]
    sleeping = [j for j in range(1, IN_FLIGHT + 1) if j % 10 == 1][:count]
    until = NOW + timedelta(minutes=5)
    tokens: dict[int, int] = {}
    step_tokens: dict[int, int] = {}

    def acquire() -> None:
        for j in sleeping:
            row = conn.execute(
                s["acquire"], {"owner": OWNER, "until": until, "run_id": _fly(j), "now": NOW}
            ).fetchone()
            if row is not None:
                tokens[j] = row[0]

    def write() -> None:
        for j, token in tokens.items():
            conn.execute(
                s["write_steps"],
                {
                    "run_id": _fly(j),
                    "token": token,
                    "now": NOW,
                    "until": until,
                    "writes": _writes("step-3", 3, "sleep", "succeeded"),
                },
            )

    def finish() -> None:
        for j, token in tokens.items():
            conn.execute(
                s["finish_pass"],
                {
                    "run_id": _fly(j),
                    "token": token,
                    "now": NOW,
                    "settled": False,
                    "seen": None,
                    "cancel_seen": False,
                    "status": "running",
                    "output": None,
                    "error": None,
                    "wake_at": None,
                    "ended": False,
                    "writes": _writes("step-4", 4, "rpc", "scheduled"),
                    "claim_key": None,
                },
            )

    def claim() -> None:
        for j in rpc:
            row = conn.execute(s["claim_step"], _claim_params(_fly(j), "step-3")).fetchone()
            if row is not None:
                step_tokens[j] = row[7]

    def complete() -> None:
        for j, token in step_tokens.items():
            conn.execute(
                s["complete_step"],
                {
                    "status": "succeeded",
                    "result": Json({"v": 1}),
                    "error": None,
                    "wake_at": None,
                    "now": NOW,
                    "run_id": _fly(j),
                    "step_key": "step-3",
                    "attempt": 1,
                    "token": token,
                    "attempt_status": "succeeded",
                    "succ": 1,
                    "fail": 0,
                    "final": True,
                    "owner": OWNER,
                    "until": until,
                },
            )

    out: list[tuple[str, str, int, int]] = []
    for name, phase in (
        ("acquire", acquire),
        ("write_steps", write),
        ("finish_pass", finish),
        ("claim_step", claim),
        ("complete_step", complete),
    ):
        before = _table_counts(conn, schema)
        try:
            phase()
        except psycopg.Error as exc:
            print(f"  HOT workload: {name} failed: {str(exc).splitlines()[0]}", file=sys.stderr)
            continue
        after = _table_counts(conn, schema)
        for table in ("runs", "steps"):
            upd = after[table][0] - before[table][0]
            hot = after[table][1] - before[table][1]
            if upd:
                out.append((name, table, upd, hot))
    return out


# -- the command -------------------------------------------------------------------------------
@dataclass
class Size:
    n: int
    load_s: float
    figures: dict[str, Figure] = field(default_factory=dict)
    hot: list[tuple[str, str, int, int]] = field(default_factory=list)
    sizes_mb: dict[str, float] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="finished runs in the history (default: 10000 1000000)",
    )
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="runs in flight (10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each statement (3)")
    parser.add_argument("--hot-runs", type=int, default=500, help="runs in the HOT workload")
    parser.add_argument("--plans", action="store_true", help="print each statement's plan")
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres (default: a private embedded one in a temp folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the schemas (bench_hist_N)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )


def _loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def run(args: argparse.Namespace) -> int:
    global IN_FLIGHT  # noqa: PLW0603 - one process, one setting
    IN_FLIGHT = args.in_flight
    sizes = sorted(set(args.sizes))
    if args.database_url:
        dsn, where = args.database_url, "--database-url"
    else:
        from ._server import embedded_server

        server = embedded_server()
        dsn, where = server.url("postgres"), server.where
        with psycopg.connect(dsn, autocommit=True) as conn:  # fewer checkpoints while loading
            conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
            conn.execute("SELECT pg_reload_conf()")
    load_before = _loadavg()
    print(f"lambda-flow bench: history-scale ({SUMMARY})")
    print(f"database    : {where}")
    print(f"machine     : {os.cpu_count()} CPUs, load average {load_before} (1, 5, 15 min)")
    print(f"date        : {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"history     : {', '.join(f'{n:,}' for n in sizes)} finished runs (5 steps each)"
        f" + {IN_FLIGHT:,} in flight"
    )
    sys.stdout.flush()
    results: list[Size] = []
    began = time.perf_counter()
    for n in sizes:
        results.append(_measure_size(dsn, n, args))
    load_after = _loadavg()
    print()
    print(_table(results))
    print()
    print(_hot_table(results))
    missed = _missed(results)
    print()
    if len(results) >= 2:
        verdict = "MET" if not missed else "MISSED: " + ", ".join(missed)
        print(
            f"target: buffers at {results[-1].n:,} <= {TARGET_RATIO:g}x buffers at "
            f"{results[0].n:,} for every statement: {verdict}"
        )
    print(
        f"machine load: {load_before} before, {load_after} after; "
        f"{time.perf_counter() - began:.0f}s in all"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "history-scale",
                    "load_before": load_before,
                    "load_after": load_after,
                    "sizes": [
                        {
                            "n": r.n,
                            "load_s": r.load_s,
                            "sizes_mb": r.sizes_mb,
                            "figures": {k: vars(v) for k, v in r.figures.items()},
                            "hot": r.hot,
                        }
                        for r in results
                    ],
                    "missed": missed,
                }
            )
        )
    return 1 if args.check and missed else 0


def _measure_size(dsn: str, n: int, args: argparse.Namespace) -> Size:
    schema = f"bench_hist_{n}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    PostgresStore(dsn, schema=schema).close()  # the schema, by the store's migrations
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.prepare_threshold = None  # its own PREPAREs only (the generic plans)
        _SQL_BY_CONN[id(conn)] = statements(schema)
        load_s = _load(conn, schema, n, IN_FLIGHT)
        size = Size(n, load_s)
        for table in ("runs", "steps", "step_attempts"):
            row = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", [f"{schema}.{table}"]
            ).fetchone()
            size.sizes_mb[table] = round(int(row[0]) / 2**20, 1) if row else 0.0
        print(
            f"  loaded {n:>9,} runs in {load_s:5.1f}s (VACUUM ANALYZE included); "
            + ", ".join(f"{t} {mb:,.0f} MB" for t, mb in size.sizes_mb.items()),
            flush=True,
        )
        for case in _cases(schema, n):
            size.figures[case.name] = _explain(conn, case, args.repeat, schema, plans=args.plans)
        size.hot = _hot(conn, schema, args.hot_runs)
        if not args.keep:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        del _SQL_BY_CONN[id(conn)]
    return size


def _table(results: Sequence[Size]) -> str:
    first, last = results[0], results[-1]
    head = ["statement"]
    for r in results:
        head += [f"buffers @{r.n:,}", f"generic @{r.n:,}", f"ms @{r.n:,}"]
    if len(results) >= 2:
        head += ["buffers ratio", "generic ratio", "ms ratio", f"<= {TARGET_RATIO:g}x"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in first.figures:
        cells = [name]
        for r in results:
            f = r.figures.get(name, Figure(error="-"))
            if f.error:
                cells += [f"error: {f.error}"[:60], "", ""]
            else:
                generic_cell = "-" if f.generic_buffers is None else f"{f.generic_buffers:,}"
                cells += [f"{f.buffers:,}", generic_cell, f"{f.ms:.3f}"]
        if len(results) >= 2:
            a, b = first.figures[name], last.figures.get(name, Figure(error="-"))
            if a.buffers and not a.error and not b.error:
                ratio = (b.buffers or 0) / a.buffers
                generic = (b.generic_buffers or 0) / a.generic_buffers if a.generic_buffers else 0.0
                ms_ratio = (b.ms or 0) / a.ms if a.ms else float("nan")
                met = max(ratio, generic) <= TARGET_RATIO
                cells += [f"{ratio:.2f}", f"{generic:.2f}", f"{ms_ratio:.2f}"]
                cells.append("met" if met else "MISSED")
            else:
                cells += ["", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _hot_table(results: Sequence[Size]) -> str:
    lines = [
        "HOT updates (committed writes on in-flight runs; pg_stat_user_tables deltas):",
        "| history | statement | table | updates | HOT | HOT % |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for name, table, upd, hot in r.hot:
            lines.append(f"| {r.n:,} | {name} | {table} | {upd} | {hot} | {100 * hot / upd:.0f}% |")
    return "\n".join(lines)


def _missed(results: Sequence[Size]) -> list[str]:
    if len(results) < 2:
        return []
    first, last = results[0], results[-1]
    out = []
    for name, a in first.figures.items():
        b = last.figures.get(name)
        if b is None or a.error or b.error or a.buffers is None or b.buffers is None:
            out.append(f"{name} (not measured)")
        elif b.buffers > TARGET_RATIO * max(a.buffers, 1):
            out.append(name)
        elif (b.generic_buffers or 0) > TARGET_RATIO * max(a.generic_buffers or 0, 1):
            out.append(f"{name} (generic plan)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench history-scale", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
