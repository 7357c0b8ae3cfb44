"""What a workload cost the database server, read from the server itself; psycopg only.

Both engines are measured with this module: lambda-flow in the driver's process and DBOS in its
own virtual environment (``bench/dbos_workloads.py``), so nothing here imports lambda_flow.

A :class:`ServerMonitor` holds one autocommit connection to an administrative database (not the
one under test, so its own statements never count) and brackets a workload with two
:class:`Snapshot` readings. Everything it reads is live, with no statistics flush to wait for:

- statements: ``pg_stat_statements`` calls in the database under test (``BEGIN`` and ``COMMIT``
  included: each is a client-server exchange too), updated when each statement ends;
- WAL: the records between the two WAL positions, by type, from ``pg_walinspect``:
  ``Transaction/COMMIT`` records are the commits that wrote (each one a WAL flush under
  ``synchronous_commit = on``; read-only transactions write none), ``Heap`` insert, update and
  delete records the table rows written, ``Heap/LOCK`` the row locks taken;
- WAL bytes: the distance between the two positions.

WAL is the whole server's: the driver runs one engine at a time and the server runs nothing
else (autovacuum is off on the benchmark's server), so every record between the two readings
is the workload's, including what the engine's background threads wrote meanwhile.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

MONITOR_APP = "lambda-flow-bench-monitor"
DURABILITY = ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes")

_ROW_WRITES = {
    "inserted": (
        "Heap/INSERT",
        "Heap/INSERT+INIT",
        "Heap2/MULTI_INSERT",
        "Heap2/MULTI_INSERT+INIT",
    ),
    "updated": ("Heap/UPDATE", "Heap/UPDATE+INIT", "Heap/HOT_UPDATE", "Heap/HOT_UPDATE+INIT"),
    "deleted": ("Heap/DELETE",),
}


class WireCounter:
    """Counts psycopg's client-server exchanges and the time spent waiting for each reply.

    psycopg sends a statement, then runs its ``execute`` generator to flush it and read every
    result: one exchange, one round trip. Preparing a statement (psycopg does so once the same
    query has run 5 times on a connection) is one more. Exchanges on ``exclude`` (the
    monitor's connection) are not counted. This wraps psycopg internals; when they are not
    where expected the counter stays unavailable and the figures say n/a.
    """

    _TARGETS = ("psycopg._cursor_base", "psycopg.generators")

    def __init__(self) -> None:
        self.exclude: object = None
        self.exchanges = 0
        self.wait_s = 0.0
        self.available = False
        self._saved: list[tuple[Any, Any]] = []

    def _wrap(self, original: Callable[[Any], Generator[Any, Any, Any]]) -> Callable[..., Any]:
        def execute(pgconn: Any, *args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            if pgconn is self.exclude:
                return (yield from original(pgconn, *args, **kwargs))
            start = time.perf_counter()
            try:
                return (yield from original(pgconn, *args, **kwargs))
            finally:
                self.exchanges += 1
                self.wait_s += time.perf_counter() - start

        return execute

    @contextlib.contextmanager
    def installed(self) -> Iterator[WireCounter]:
        for name in self._TARGETS:
            module = importlib.import_module(name)
            original = getattr(module, "execute", None)
            if callable(original):
                self._saved.append((module, original))
                module.execute = self._wrap(original)  # type: ignore[attr-defined]
        self.available = len(self._saved) == len(self._TARGETS)
        try:
            yield self
        finally:
            for module, original in reversed(self._saved):
                module.execute = original
            self._saved.clear()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Live server counters at one instant."""

    lsn: str
    """The WAL flush position (every synchronous commit before it is durable)."""
    statements: int | None
    """Statements run so far in the database under test (None: no pg_stat_statements)."""


@dataclass(frozen=True, slots=True)
class ServerCost:
    """What the server did between two snapshots."""

    statements: int | None
    commits: int | None
    """Commit records in the WAL: transactions that wrote, each one WAL flush."""
    rows_inserted: int | None
    rows_updated: int | None
    rows_deleted: int | None
    row_locks: int | None
    wal_records: int | None
    wal_bytes: int

    @property
    def rows_written(self) -> int | None:
        parts = (self.rows_inserted, self.rows_updated, self.rows_deleted)
        return None if any(p is None for p in parts) else sum(p or 0 for p in parts)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_written": self.rows_written}


class ServerMonitor:
    """Reads settings and live counters on a separate connection (see the module doc)."""

    def __init__(self, admin_dsn: str) -> None:
        self.conn = psycopg.connect(admin_dsn, application_name=MONITOR_APP, autocommit=True)
        self.conn.prepare_threshold = None  # no Parse exchanges of its own
        self.has_statements = self._works("SELECT 1 FROM pg_stat_statements LIMIT 1")
        self.has_walinspect = bool(
            self._rows("SELECT 1 FROM pg_extension WHERE extname = 'pg_walinspect'")
        )

    def close(self) -> None:
        self.conn.close()

    def _works(self, query: str) -> bool:
        try:
            self.conn.execute(query).fetchall()
        except psycopg.Error:
            return False
        return True

    def _rows(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def settings(self, names: Sequence[str] = DURABILITY) -> dict[str, str]:
        rows = self._rows(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)]
        )
        return {str(name): str(value) for name, value in rows}

    def version(self) -> str:
        return str(self._rows("SELECT version()")[0][0])

    def database_oid(self, name: str) -> int:
        rows = self._rows("SELECT oid FROM pg_database WHERE datname = %s", [name])
        if not rows:
            raise LookupError(f"no database {name!r}")
        return int(rows[0][0])

    def snapshot(self, dbid: int) -> Snapshot:
        lsn = str(self._rows("SELECT pg_current_wal_flush_lsn()")[0][0])
        statements = None
        if self.has_statements:
            rows = self._rows(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = %s", [dbid]
            )
            statements = int(rows[0][0])
        return Snapshot(lsn=lsn, statements=statements)

    def cost(self, before: Snapshot, after: Snapshot) -> ServerCost:
        wal_bytes = int(self._rows("SELECT pg_wal_lsn_diff(%s, %s)", [after.lsn, before.lsn])[0][0])
        statements = (
            None
            if before.statements is None or after.statements is None
            else after.statements - before.statements
        )
        if not self.has_walinspect:
            return ServerCost(statements, None, None, None, None, None, None, wal_bytes)
        records = {
            str(kind): int(count)
            for kind, count in self._rows(
                'SELECT "resource_manager/record_type", count'
                " FROM pg_get_wal_stats(%s, %s, true) WHERE count > 0",
                [before.lsn, after.lsn],
            )
        }

        def total(kinds: Sequence[str]) -> int:
            return sum(records.get(k, 0) for k in kinds)

        return ServerCost(
            statements=statements,
            commits=total(("Transaction/COMMIT",)),
            rows_inserted=total(_ROW_WRITES["inserted"]),
            rows_updated=total(_ROW_WRITES["updated"]),
            rows_deleted=total(_ROW_WRITES["deleted"]),
            row_locks=total(("Heap/LOCK",)),
            wal_records=sum(records.values()),
            wal_bytes=wal_bytes,
        )


@dataclass
class Measured:
    """Filled in when a :func:`measured` block ends."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    exchanges: int | None = None
    """Client-server exchanges psycopg made (round trips seen by the client)."""
    server: ServerCost | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "exchanges": self.exchanges,
            "server": None if self.server is None else self.server.as_dict(),
        }


@contextlib.contextmanager
def measured(
    monitor: ServerMonitor, dbid: int, wire: WireCounter | None = None
) -> Iterator[Measured]:
    """Measure the block: wall and CPU time, psycopg exchanges, and the server's cost."""
    result = Measured()
    before = monitor.snapshot(dbid)
    exchanges = wire.exchanges if wire is not None else 0
    cpu = time.process_time()
    started = time.perf_counter()
    yield result
    result.wall_s = time.perf_counter() - started
    result.cpu_s = time.process_time() - cpu
    if wire is not None and wire.available:
        result.exchanges = wire.exchanges - exchanges
    result.server = monitor.cost(before, monitor.snapshot(dbid))


def database_url(admin_dsn: str, dbname: str) -> str:
    """``admin_dsn`` pointing at another database, as a URL (SQLAlchemy wants one)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(admin_dsn).items() if v is not None}
    user = quote(params.get("user") or "postgres", safe="")
    password = quote(params.get("password") or "", safe="")
    host = params.get("host") or ""
    port = params.get("port")
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):  # a unix socket folder goes in the query string
        query = f"?host={host}" + (f"&port={port}" if port else "")
        return f"postgresql://{auth}/{dbname}{query}"
    return f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{dbname}"
