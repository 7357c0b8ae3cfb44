"""The Postgres store (psycopg 3).

Every write a pass makes is one statement: data-modifying CTEs update the run (checking the
lease's fencing token), upsert the steps and their attempt rows together. In autocommit mode that
is one round trip and one commit per step.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg import adapters, errors, postgres
from psycopg.adapt import Dumper
from psycopg.types.json import Json, Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

# psycopg converts a query's text to the server's form on every call unless the text is at most
# psycopg._queries.MAX_CACHED_STATEMENT_LENGTH (4,096) bytes long. complete_step, finish_pass and
# a few more are longer, and converting them again each time was ~28% of a step worker's CPU
# (bench dev-throughput's profile). Our statements are a fixed, small set: cache them all.
with contextlib.suppress(ImportError, AttributeError):
    from psycopg import _queries

    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 16_384)
from pydantic_core import from_json

from ..core import (
    CallbackNotFound,
    ConfigurationError,
    Duration,
    ErrorInfo,
    InvalidRunState,
    LeaseLost,
    PendingItem,
    RawJson,
    Run,
    RunNotFound,
    RunStatus,
    StepAttempt,
    StepKind,
    StepStatus,
    StoreUnavailable,
    parse_duration,
)
from ._sql import count_runs_query, list_runs_query, quoter, statements
from .base import (
    BatchPlan,
    BatchProgress,
    CallbackOutcome,
    CallbackState,
    ChildStart,
    LeasedRun,
    RunLease,
    RunOutcome,
    StepClaim,
    StepCompletion,
    StepOutcome,
    StepRecord,
    StepWrite,
    Store,
    StoreStats,
    StuckWork,
    finished_statuses,
    positive_limit,
)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate_schema_name(schema: str) -> str:
    """Accept only plain lowercase identifiers; the name is quoted as one, never pasted."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"invalid schema name {schema!r}: use lowercase letters, digits and underscores, "
            "starting with a letter or underscore (at most 63 characters)"
        )
    return schema


def _migrations() -> list[tuple[int, str, str]]:
    """The numbered SQL migrations shipped with the package, in order."""
    found = []
    for entry in resources.files("lambda_flow.store.migrations").iterdir():
        match = re.match(r"^(\d+)_(\w+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return sorted(found)


def _unavailable(exc: psycopg.OperationalError) -> StoreUnavailable:
    return StoreUnavailable(f"the database is unavailable: {exc}")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json(value: Any) -> Json:
    """A user's value (input, output, result) as a ``json`` parameter: its keys keep their order.

    ``jsonb`` would sort them (migration 0004); errors, whose order means nothing, stay jsonb.
    """
    return Json(value, dumps=_dump)


class _RawJsonDumper(Dumper):
    """A :class:`RawJson` goes to the server as the bytes it holds (no copy, no re-encoding)."""

    oid = postgres.types["json"].oid

    def dump(self, obj: Any) -> bytes:
        data: bytes = obj.data
        return data


adapters.register_dumper(RawJson, _RawJsonDumper)


def _result(value: Any) -> Any:
    """A step result as a ``json`` parameter: a worker's serialized bytes as they are."""
    if value is None or isinstance(value, RawJson):
        return value
    return _json(value)


def _error(value: Any) -> ErrorInfo | None:
    return None if value is None else ErrorInfo.model_validate(value)


_STEP_KINDS = {kind.value: kind for kind in StepKind}
_STEP_STATUSES = {status.value: status for status in StepStatus}


def _loads_all(texts: list[str | None]) -> list[Any]:
    """Parse JSON documents (None for SQL NULL) with a single ``json.loads`` call."""
    if not texts:
        return []
    return list(json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _write_rows(writes: Sequence[StepWrite]) -> str:
    """The writes as ``_STEP_WRITES``'s JSON records.

    A value that is None is left out: ``json_to_recordset`` reads a missing key as NULL, and
    most of an inline step's columns are NULL (a shorter text to send and to parse).
    """
    rows = []
    for w in writes:
        row: dict[str, Any] = {
            "step_key": w.key,
            "name": w.name,
            "position": w.position,
            "kind": w.kind.value,
            "status": w.status.value,
            "attempt": w.attempt,
            "attempt_status": w.attempt_status.value,
        }
        optional = (
            ("target", w.target),
            ("started_at", _iso(w.started_at)),
            ("finished_at", _iso(w.finished_at)),
            ("input", w.input),
            ("result", w.result),
            ("error", None if w.error is None else w.error.model_dump()),
            ("wake_at", _iso(w.wake_at)),
            ("max_attempts", w.max_attempts),
            ("retry_delay_ms", w.retry_delay_ms),
            ("retry_policy", w.retry_policy),
            ("timeout_ms", w.timeout_ms),
            ("batch_key", w.batch_key),
            ("lease_owner", w.lease_owner),
            ("lease_expires_at", _iso(w.lease_expires_at)),
        )
        for name, value in optional:
            if value is not None:
                row[name] = value
        rows.append(row)
    return _dump(rows)


def _leased(run_id: str, owner: str, row: Sequence[Any]) -> LeasedRun:
    """The leased run of an ``acquire`` row (its steps as JSON in the last column)."""
    leased = LeasedRun(
        lease=RunLease(run_id=run_id, owner=owner, token=row[0]),
        workflow=row[1],
        input=row[2],
        created_at=row[3],
        version=row[4],
        recovering=row[5],
        deadline=row[6],
        cancel_requested=row[7],
        cancel_reason=row[8],
        cleanup_deadline=row[9],
        parent_id=None if row[10] is None else str(row[10]),
    )
    text = row[11]
    if text is None:
        leased.steps = {}
    elif len(text) < _LARGE_LOAD or not gc.isenabled():
        leased.steps = _steps_of(_parse_json(text))
    else:
        # Tens of thousands of new objects and none of them garbage: collections triggered
        # mid-way (full ones among them, scanning the whole heap) would only cost time.
        gc.disable()
        try:
            leased.steps = _steps_of(_parse_json(text))
        finally:
            gc.enable()
    return leased


_LARGE_LOAD = 100_000
"""Steps text (characters) from which a load runs without the cyclic garbage collector:
about 1,000 steps."""


def _parse_json(text: str) -> Any:
    """JSON text parsed by pydantic-core's parser (about 1.5x json's), json's as a fallback.

    The fallback takes what only json.loads takes: a lone surrogate escape, a document nested
    deeper than pydantic-core's limit. Anything both parse comes out the same.
    """
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


def _steps_of(rows: Sequence[Sequence[Any]]) -> dict[str, StepRecord]:
    """Step records by key from ``_STEPS_OF``'s JSON arrays (parsed by :func:`_parse_json`).

    A replay of 10,000 steps builds 10,000 records here: one comprehension, the enums looked
    up, and an error or a wake-up time parsed only where there is one.
    """
    kinds, statuses, parse, record = _STEP_KINDS, _STEP_STATUSES, datetime.fromisoformat, StepRecord
    error = ErrorInfo.model_validate
    # fmt: off
    return {
        key: record(
            key, name, position, kinds[kind], target, statuses[status], attempt, result,
            None if failure is None else error(failure), None if wake is None else parse(wake),
            callback_id, child,
        )
        for key, name, position, kind, target, status, attempt, result, failure, wake,
        callback_id, child in rows
    }
    # fmt: on


class PostgresStore(Store):
    """Runs and steps in Postgres, in their own schema (``workflows`` unless told otherwise).

    Args:
        dsn: a libpq connection string or URL.
        schema: the schema holding the tables; validated, created and migrated on first use.
        min_connections: connections the pool keeps open.
        max_connections: the most connections the pool opens.
        migrate: create or upgrade the schema when the store is built.
        pool_timeout: how long an operation waits for a connection (all busy, or the database
            unreachable) before it fails with :class:`StoreUnavailable`.
    """

    def __init__(
        self,
        dsn: str,
        schema: str = "workflows",
        *,
        min_connections: int = 1,
        max_connections: int = 4,
        migrate: bool = True,
        pool_timeout: Duration = "10s",
    ) -> None:
        self.schema = validate_schema_name(schema)
        wait = parse_duration(pool_timeout).total_seconds()
        if wait <= 0:
            raise ConfigurationError(f"pool_timeout must be positive, got {pool_timeout!r}")
        self.stats = StoreStats()
        # The connection a pass holds (see pinned()); per thread and task, never shared.
        self._pinned: ContextVar[psycopg.Connection[Any] | None] = ContextVar(
            f"lambda_flow_pinned_{id(self)}", default=None
        )
        self._pool: ConnectionPool = ConnectionPool(
            dsn,
            min_size=min_connections,
            max_size=max_connections,
            kwargs={"autocommit": True},
            # A restarted database leaves dead connections in the pool: test each on checkout.
            check=self._check_on_checkout,
            timeout=wait,
            open=True,
            name="lambda-flow",
        )
        self._q = quoter(self.schema)
        self._sql = statements(self.schema)
        if migrate:
            self.migrate()

    # -- plumbing --------------------------------------------------------------------------
    def _fetchall(
        self, query: str, params: Any = None, *, prepare: bool | None = None
    ) -> list[tuple[Any, ...]]:
        self.stats.round_trips += 1
        self.stats.commits += 1  # autocommit: each statement is its own transaction
        conn = self._pinned.get()
        try:
            if conn is not None:
                return conn.execute(query, params, prepare=prepare).fetchall()
            with self._connection() as conn:
                return conn.execute(query, params, prepare=prepare).fetchall()
        except psycopg.OperationalError as exc:  # the connection died, or the server refused
            raise _unavailable(exc) from exc

    def _read(
        self, query: str, params: Any = None, *, prepare: bool | None = None
    ) -> list[tuple[Any, ...]]:
        """``_fetchall`` for an idempotent read, asked once more when its connection failed.

        A failed connection means the database restarted under it. Not asked again on a pinned
        connection (the pass fails instead), nor after the pool's whole timeout went by without
        a connection.
        """
        try:
            return self._fetchall(query, params, prepare=prepare)
        except StoreUnavailable as exc:
            if self._pinned.get() is not None or isinstance(exc.__cause__, PoolTimeout):
                raise
        return self._fetchall(query, params, prepare=prepare)

    def _check_on_checkout(self, conn: psycopg.Connection[Any]) -> None:
        """psycopg_pool's check; a dead connection gets the other idle ones tested at once.

        A dead connection means the server went away: the idle ones are tested together, not one
        checkout (and back-off) at a time.
        """
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            self._pool.check()
            raise

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, checked on checkout; none to be had is StoreUnavailable."""
        try:
            conn = self._pool.getconn()
        except psycopg.OperationalError as exc:  # PoolTimeout included
            raise _unavailable(exc) from exc
        try:
            with conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        if self._pinned.get() is not None:
            yield
            return
        # Autocommit: should the connection die mid-pass, every statement before is committed
        # and none after it ran; the error (StoreUnavailable) ends the pass.
        with self._connection() as conn:
            token = self._pinned.set(conn)
            try:
                yield
            finally:
                self._pinned.reset(token)

    def _fetchone(self, query: str, params: Any = None) -> tuple[Any, ...] | None:
        rows = self._fetchall(query, params)
        return rows[0] if rows else None

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------
    def migrate(self) -> None:
        migrations = _migrations()
        latest = migrations[-1][0]
        with self._connection() as conn:
            try:
                row = conn.execute(
                    self._q("SELECT max(version) FROM {schema}.schema_migrations")
                ).fetchone()
                if row is not None and row[0] == latest:
                    return
            except errors.UndefinedTable:
                pass
            with conn.transaction():
                # One migrator at a time per schema, across processes.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"lambda_flow:{self.schema}"]
                )
                conn.execute(self._q("CREATE SCHEMA IF NOT EXISTS {schema}"))
                conn.execute(
                    self._q(
                        "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                        "version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                )
                applied = {
                    r[0]
                    for r in conn.execute(
                        self._q("SELECT version FROM {schema}.schema_migrations")
                    ).fetchall()
                }
                for version, name, text in migrations:
                    if version in applied:
                        continue
                    conn.execute(self._q(text))
                    conn.execute(
                        self._q(
                            "INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, %s)"
                        ),
                        [version, name],
                    )

    # -- runs ------------------------------------------------------------------------------
    def create_run(
        self,
        workflow: str,
        input: Any,
        idempotency_key: str | None,
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> tuple[str, bool]:
        run_id = uuid.uuid4()
        row = self._fetchone(
            self._sql["create_run"],
            [run_id, workflow, _json(input), idempotency_key, now, now, deadline],
        )
        if row is not None:
            return str(row[0]), True
        existing = self._fetchone(self._sql["run_by_key"], [workflow, idempotency_key])
        if existing is None:  # pragma: no cover - the conflicting row cannot vanish
            raise RuntimeError("idempotency conflict without a matching run")
        return str(existing[0]), False

    def fork_run(
        self,
        run_id: str,
        step_key: str,
        input: Any,
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> str | None:
        source = self._uuid(run_id)
        if source is None:
            return None
        new_id = uuid.uuid4()
        row = self._fetchone(
            self._sql["fork_run"],
            {
                "source": source, "step_key": step_key, "run_id": new_id,
                "input": None if input is None else _json(input), "now": now,
                "deadline": deadline,
                "forked_from": _json({"run_id": str(source), "step_key": step_key}),
            },
        )  # fmt: skip
        return None if row is None else str(row[0])

    @staticmethod
    def _run(row: tuple[Any, ...]) -> Run:
        return Run(
            id=str(row[0]),
            workflow=row[1],
            status=RunStatus(row[2]),
            input=row[3],
            output=row[4],
            error=_error(row[5]),
            created_at=row[6],
            updated_at=row[7],
            wake_at=row[8],
            idempotency_key=row[9],
            forked_from=row[10],
            parent_id=None if row[11] is None else str(row[11]),
        )

    @staticmethod
    def _uuid(run_id: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(str(run_id))
        except ValueError:
            return None

    def get_run(self, run_id: str) -> Run | None:
        key = self._uuid(run_id)
        if key is None:
            return None
        rows = self._read(self._sql["get_run_pending"], [key])
        if not rows:
            return None
        run = self._run(rows[0])
        pending = rows[0][12]
        if not pending:
            return run
        items = [
            PendingItem(kind=k, step_key=sk, name=n, callback_id=cb, deadline=d)
            for k, sk, n, cb, d in pending
        ]
        return run.model_copy(update={"pending": items})

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
        summary: bool = False,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
    ) -> list[Run]:
        parent = None
        if parent_id is not None:
            parent = self._uuid(parent_id)
            if parent is None:
                return []
        query, params = list_runs_query(
            self.schema,
            workflow=workflow,
            status=None if status is None else RunStatus(status).value,
            parent_id=parent,
            before=before,
            summary=summary,
            limit=limit,
            created_after=created_after,
            created_before=created_before,
            search=search,
        )
        # A search is planned for its text each time (never prepared): a generic plan cannot
        # see that a prefix is a narrow range and reads the runs newest first instead.
        rows = self._read(query, params, prepare=False if search else None)
        return [self._run(r) for r in rows]

    def count_runs(
        self,
        *,
        workflow: str | None = None,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        cap: int = 10_000,
    ) -> dict[RunStatus, int]:
        parent = None
        if parent_id is not None:
            parent = self._uuid(parent_id)
            if parent is None:
                return dict.fromkeys(RunStatus, 0)
        query, params = count_runs_query(
            self.schema,
            workflow=workflow,
            parent_id=parent,
            created_after=created_after,
            created_before=created_before,
            search=search,
            statuses=[s.value for s in RunStatus],
            cap=max(cap, 0),
        )
        rows = self._read(query, params, prepare=False if search else None)  # as list_runs
        return {RunStatus(status): int(count) for status, count in rows}

    def get_history(self, run_id: str) -> list[StepAttempt]:
        key = self._uuid(run_id)
        if key is None:
            return []
        return [
            StepAttempt(
                step_key=r[0],
                step_name=r[1],
                kind=StepKind(r[2]),
                status=StepStatus(r[3]),
                attempt=r[4],
                result=r[5],
                error=_error(r[6]),
                created_at=r[7],
                started_at=r[8],
                finished_at=r[9],
            )
            for r in self._read(self._sql["history"], [key])
        ]

    # -- passes ----------------------------------------------------------------------------
    def acquire(
        self, run_id: str, owner: str, now: datetime, lease_until: datetime
    ) -> LeasedRun | None:
        key = self._uuid(run_id)
        if key is None:
            return None
        row = self._fetchone(
            self._sql["acquire"], {"owner": owner, "until": lease_until, "run_id": key, "now": now}
        )
        if row is None:
            return None
        leased = _leased(str(key), owner, row)
        if row[12] != leased.version:
            # Someone wrote to the run (a child's end, a worker's result) after this statement
            # read the steps and before it could take the run's row: read them again (rare).
            leased.steps = {step.key: step for step in self._load_steps(key)}
        return leased

    def _load_steps(self, key: uuid.UUID) -> list[StepRecord]:
        rows = self._read(self._sql["steps"], [key])
        # A pass loads every step of its run; replaying 10,000 of them must stay cheap, so the
        # results are parsed in one call rather than one per row, and the enums are looked up.
        results = _loads_all([s[7] for s in rows])
        kinds, statuses = _STEP_KINDS, _STEP_STATUSES
        return [
            StepRecord(
                s[0],
                s[1],
                s[2],
                kinds[s[3]],
                s[4],
                statuses[s[5]],
                s[6],
                result,
                None if s[8] is None else _error(json.loads(s[8])),
                s[9],
                s[10],
                s[11],
            )
            for s, result in zip(rows, results, strict=True)
        ]

    def get_steps(self, run_id: str) -> list[StepRecord]:
        key = self._uuid(run_id)
        return [] if key is None else self._load_steps(key)

    def _fenced(self, query: str, params: dict[str, Any], lease: RunLease) -> int:
        row = self._fetchone(query, params)
        if row is None:
            raise LeaseLost(lease.run_id)
        return int(row[0])

    def write_steps(
        self, lease: RunLease, writes: Sequence[StepWrite], now: datetime, lease_until: datetime
    ) -> int:
        return self._fenced(
            self._sql["write_steps"],
            {
                "run_id": lease.run_id,
                "token": lease.token,
                "now": now,
                "until": lease_until,
                "writes": _write_rows(writes),
            },
            lease,
        )

    def finish_pass(
        self,
        lease: RunLease,
        outcome: RunOutcome,
        writes: Sequence[StepWrite],
        now: datetime,
        *,
        seen_version: int | None = None,
        cancel_seen: bool = False,
    ) -> int:
        row = self._finish(lease, outcome, writes, now, seen_version, cancel_seen, None)
        return int(row[0])

    def finish_pass_claiming(
        self,
        lease: RunLease,
        outcome: RunOutcome,
        writes: Sequence[StepWrite],
        now: datetime,
        *,
        claim_key: str,
        seen_version: int | None = None,
        cancel_seen: bool = False,
    ) -> tuple[int, int]:
        row = self._finish(lease, outcome, writes, now, seen_version, cancel_seen, claim_key)
        if row[1] is None:  # pragma: no cover - the claimed write is in this statement
            raise RuntimeError(f"step {claim_key!r} was not claimed by its pass")
        return int(row[0]), int(row[1])

    def _finish(  # noqa: PLR0917 - the two public forms above name them
        self,
        lease: RunLease,
        outcome: RunOutcome,
        writes: Sequence[StepWrite],
        now: datetime,
        seen_version: int | None,
        cancel_seen: bool,
        claim_key: str | None,
    ) -> tuple[Any, ...]:
        row = self._fetchone(
            self._sql["finish_pass"],
            {
                "run_id": lease.run_id,
                "token": lease.token,
                "now": now,
                "settled": seen_version is not None,
                "seen": seen_version,
                "cancel_seen": cancel_seen,
                "status": outcome.status.value,
                "output": None if outcome.output is None else _json(outcome.output),
                "error": None if outcome.error is None else Jsonb(outcome.error.model_dump()),
                "wake_at": outcome.wake_at,
                "ended": outcome.status.is_terminal,
                "writes": _write_rows(writes),
                "claim_key": claim_key,
            },
        )
        if row is None:
            raise LeaseLost(lease.run_id)
        return row

    def start_child(
        self,
        lease: RunLease,
        write: StepWrite,
        child: ChildStart,
        now: datetime,
        lease_until: datetime,
    ) -> int:
        return self._fenced(
            self._sql["start_child"],
            {
                "run_id": lease.run_id, "token": lease.token, "now": now, "until": lease_until,
                "writes": _write_rows([write]), "step_key": child.parent_step,
                "child_id": uuid.UUID(child.run_id), "child_workflow": child.workflow,
                "child_input": _json(child.input), "child_deadline": child.deadline,
            },
            lease,
        )  # fmt: skip

    def time_out_step(
        self, lease: RunLease, write: StepWrite, now: datetime, lease_until: datetime
    ) -> int | None:
        error = write.error
        row = self._fetchone(
            self._sql["time_out_step"],
            {
                "run_id": lease.run_id,
                "token": lease.token,
                "step_key": write.key,
                "now": now,
                "until": lease_until,
                "writes": _write_rows([write]),
                "reason": None if error is None else error.message,
            },
        )
        if row is None or not row[1]:
            raise LeaseLost(lease.run_id)
        return None if row[0] is None else int(row[0])

    def renew(self, lease: RunLease, now: datetime, lease_until: datetime) -> None:
        self._fenced(
            self._sql["renew"],
            {"run_id": lease.run_id, "token": lease.token, "until": lease_until},
            lease,
        )

    # -- step workers and the sweeper --------------------------------------------------------
    def claim_step(
        self,
        run_id: str,
        step_key: str,
        attempt: int,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> StepClaim | None:
        key = self._uuid(run_id)
        if key is None:
            return None
        row = self._fetchone(
            self._sql["claim_step"],
            {
                "run_id": key,
                "step_key": step_key,
                "attempt": attempt,
                "owner": owner,
                "now": now,
                "until": lease_until,
            },
        )
        if row is None:
            return None
        return StepClaim(
            run_id=str(row[0]),
            workflow=row[1],
            step_key=row[2],
            name=row[3],
            attempt=row[4],
            target=row[5],
            input=row[6],
            token=row[7],
            max_attempts=row[8],
            retry_delay_ms=row[9],
            started_at=now,
            interrupted_by=row[10],
            retry_policy=row[11],
            timeout_ms=row[12],
        )

    def complete_step(
        self,
        claim: StepClaim,
        outcome: StepOutcome,
        now: datetime,
        *,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> StepCompletion | None:
        write = outcome
        if owner is not None:  # unique to this call: the returned row says whether it took it
            owner = f"{owner}#{uuid.uuid4().hex[:8]}"
        row = self._fetchone(
            self._sql["complete_step"],
            {
                "run_id": uuid.UUID(claim.run_id),
                "step_key": claim.step_key,
                "attempt": claim.attempt,
                "token": claim.token,
                "status": write.status.value,
                "attempt_status": write.attempt_status.value,
                "result": _result(write.result),
                "error": None if write.error is None else Jsonb(write.error.model_dump()),
                "wake_at": write.wake_at,
                "now": now,
                "final": write.status is not StepStatus.PENDING,
                "succ": int(write.status is StepStatus.SUCCEEDED),
                "fail": int(write.status is StepStatus.FAILED),
                "owner": owner,
                "until": lease_until,
            },
        )
        if not row or not row[0]:
            return None
        leased = None
        if row[5] is not None and owner is not None:
            leased = _leased(claim.run_id, owner, row[5:])
            if leased.version != row[3] + 1 or row[4]:
                # Someone committed between this statement's snapshot and its update of the
                # run (or a batch ended: its last items' commits need not move the version):
                # the steps it read may miss theirs. Read them again (rare).
                leased.steps = {s.key: s for s in self._load_steps(uuid.UUID(claim.run_id))}
            else:
                # The statement read the steps as they were before it: patch in what it stored.
                stored = leased.steps.get(claim.step_key)
                if stored is not None:
                    stored.status = write.status
                    stored.attempt = claim.attempt
                    stored.result = write.result
                    stored.error = write.error
                    stored.wake_at = write.wake_at
        return StepCompletion(next_steps=tuple(row[1]), run_changed=bool(row[2]), leased=leased)

    def start_batch(
        self,
        lease: RunLease,
        plan: BatchPlan,
        writes: Sequence[StepWrite],
        now: datetime,
        lease_until: datetime,
    ) -> int:
        return self._fenced(
            self._sql["start_batch"],
            {
                "run_id": lease.run_id, "token": lease.token, "now": now, "until": lease_until,
                "writes": _write_rows(writes), "batch_key": plan.batch_key,
                "target": plan.target, "total": len(plan.items),
                "concurrency": plan.concurrency, "started": plan.started,
                "min_successful": plan.min_successful,
                "tolerated_failures": plan.tolerated_failures,
                "tolerated_ratio": plan.tolerated_ratio, "position_base": plan.position_base,
                "max_attempts": plan.max_attempts, "retry_delay_ms": plan.retry_delay_ms,
                "retry_policy": None if plan.retry_policy is None else Jsonb(plan.retry_policy),
                "timeout_ms": plan.timeout_ms, "items": _dump(plan.items),
                "names": _dump(plan.names),
            },
            lease,
        )  # fmt: skip

    def get_batch(self, run_id: str, batch_key: str) -> BatchProgress | None:
        key = self._uuid(run_id)
        row = (
            None
            if key is None
            else self._fetchone(self._sql["get_batch"], {"run_id": key, "batch_key": batch_key})
        )
        return None if row is None else BatchProgress(*row)

    def fail_run(self, run_id: str, error: ErrorInfo, now: datetime) -> bool:
        key = self._uuid(run_id)
        if key is None:
            return False
        row = self._fetchone(
            self._sql["fail_run"], {"run_id": key, "error": Jsonb(error.model_dump()), "now": now}
        )
        return row is not None

    def fail_overdue(
        self, now: datetime, *, run_id: str | None = None, limit: int = 100
    ) -> list[str]:
        only = None
        if run_id is not None:
            only = self._uuid(run_id)
            if only is None:
                return []
        rows = self._fetchall(self._sql["fail_overdue"], {"now": now, "only": only, "limit": limit})
        return [str(r[0]) for r in rows]

    def needs_pass(self, run_id: str, now: datetime) -> bool:
        key = self._uuid(run_id)
        row = (
            None
            if key is None
            else self._fetchone(self._sql["needs_pass"], {"run_id": key, "now": now})
        )
        return bool(row and row[0])

    def find_stuck(
        self,
        now: datetime,
        *,
        unsent_after: datetime,
        result_after: datetime,
        redrive_after: timedelta,
        limit: int,
    ) -> StuckWork:
        params = {
            "now": now,
            "unsent_after": unsent_after,
            "result_after": result_after,
            "redrive_after": redrive_after,
            "limit": limit,
        }
        runs = [str(r[0]) for r in self._fetchall(self._sql["stuck_runs"], params)]
        steps = [
            (str(r[0]), str(r[1]), int(r[2]))
            for r in self._fetchall(self._sql["stuck_steps"], params)
        ]
        return StuckWork(run_ids=runs, step_jobs=steps)

    # -- retention -------------------------------------------------------------------------
    def delete_finished(
        self,
        before: datetime,
        *,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 500,
    ) -> int:
        params = {
            "before": before,
            "statuses": [s.value for s in finished_statuses(statuses)],
            "limit": positive_limit(limit, "limit"),
        }
        return len(self._fetchall(self._sql["delete_finished"], params))

    def count_finished(
        self, before: datetime, *, statuses: Sequence[RunStatus] | None = None
    ) -> int:
        params = {"before": before, "statuses": [s.value for s in finished_statuses(statuses)]}
        row = self._read(self._sql["count_finished"], params)
        return int(row[0][0])

    # -- operator actions ------------------------------------------------------------------
    def _require(self, run_id: str) -> Run:
        run = self.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def resume(self, run_id: str, now: datetime, payload: Any = None) -> Run:
        key = self._uuid(run_id)
        if key is None:
            raise RunNotFound(run_id)
        stored = None if payload is None else _json(payload)
        self._fetchall(self._sql["resume"], {"run_id": key, "now": now, "payload": stored})
        run = self._require(run_id)
        if run.status.is_terminal:
            raise InvalidRunState(run_id, run.status.value, "resume")
        return run

    # -- callbacks -------------------------------------------------------------------------
    def complete_callback(
        self, callback_id: str, outcome: CallbackOutcome, now: datetime
    ) -> CallbackState:
        row = self._fetchone(
            self._sql["complete_callback"],
            {
                "callback_id": callback_id,
                "status": outcome.status.value,
                "result": None if outcome.result is None else _json(outcome.result),
                "error": None if outcome.error is None else Jsonb(outcome.error.model_dump()),
                "now": now,
            },
        )
        if row is None:
            return self.find_callback(callback_id)
        return CallbackState(
            run_id=str(row[0]), step_key=row[1], status=outcome.status,
            run_status=RunStatus(row[2]), changed=True, result=outcome.result,
            error=outcome.error,
        )  # fmt: skip

    def heartbeat_callback(self, callback_id: str, now: datetime) -> CallbackState:
        row = self._fetchone(
            self._sql["heartbeat_callback"], {"callback_id": callback_id, "now": now}
        )
        if row is None:
            return self.find_callback(callback_id)
        return CallbackState(
            run_id=str(row[0]), step_key=row[1], status=StepStatus.SCHEDULED,
            run_status=RunStatus(row[2]), changed=True, deadline=row[3],
        )  # fmt: skip

    def find_callback(self, callback_id: str) -> CallbackState:
        row = self._fetchone(self._sql["callback_state"], [callback_id])
        if row is None:
            raise CallbackNotFound(callback_id)
        return CallbackState(
            run_id=str(row[0]), step_key=row[1], status=StepStatus(row[2]),
            run_status=RunStatus(row[3]), changed=False,
            result=None if row[4] is None else json.loads(row[4]), error=_error(row[5]),
            deadline=row[6],
        )  # fmt: skip

    def cancelling_children(self, run_id: str) -> list[str]:
        key = self._uuid(run_id)
        if key is None:
            return []
        return [str(r[0]) for r in self._read(self._sql["cancelling_children"], {"run_id": key})]

    def cancel_request(self, run_id: str) -> tuple[str | None, datetime | None] | None:
        key = self._uuid(run_id)
        row = None if key is None else self._fetchone(self._sql["cancel_request"], {"run_id": key})
        return None if row is None else (row[0], row[1])

    def cancel(
        self,
        run_id: str,
        reason: str | None,
        now: datetime,
        *,
        cleanup_deadline: datetime | None = None,
    ) -> Run:
        key = self._uuid(run_id)
        if key is None:
            raise RunNotFound(run_id)
        row = self._fetchone(
            self._sql["cancel"],
            {"run_id": key, "now": now, "reason": reason, "cleanup": cleanup_deadline},
        )
        if row is not None:
            return self._run(row)
        run = self._require(run_id)
        raise InvalidRunState(run_id, run.status.value, "cancel")
