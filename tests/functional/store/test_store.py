"""The Postgres store's schema handling and the embedded default database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lambda_flow import ConfigurationError, PostgresStore
from lambda_flow.store.embedded import resolve_database_url
from tests.conftest import private_data_dir


@pytest.mark.parametrize(
    "bad",
    ["Workflows", "1abc", "a-b", 'x"; DROP TABLE runs; --', "", "a" * 64, "wf schema"],
)
def test_schema_names_are_validated_before_anything_is_created(bad: str, database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid schema name"):
        PostgresStore(database_url, schema=bad)
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", [bad]
        ).fetchone()
    assert found == (0,)


def test_migrations_are_numbered_recorded_and_idempotent(
    database_url: str, schema: str, db: psycopg.Connection[Any]
) -> None:
    first = PostgresStore(database_url, schema=schema)
    second = PostgresStore(database_url, schema=schema)  # a second process on the same schema
    second.migrate()

    versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    tables = {
        r[0]
        for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        )
    }
    assert tables == {
        "runs", "steps", "step_attempts", "schema_migrations", "batches", "batch_items",
    }  # fmt: skip
    first.close()
    second.close()


def test_without_a_database_url_an_embedded_postgres_is_started() -> None:
    data_dir = private_data_dir()

    url = resolve_database_url(env={"LAMBDA_FLOW_DATA_DIR": str(data_dir)})

    assert (data_dir / "PG_VERSION").exists()
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW fsync").fetchone()
    assert row == ("on",)
    # The same folder gives the same server.
    assert resolve_database_url(env={"LAMBDA_FLOW_DATA_DIR": str(data_dir)}) == url


def test_an_explicit_url_wins_over_the_environment() -> None:
    url = "postgresql://u@db.example/app"
    assert resolve_database_url(url, env={"LAMBDA_FLOW_DATABASE_URL": "postgresql://x/y"}) == url
    assert resolve_database_url(env={"LAMBDA_FLOW_DATABASE_URL": url}) == url
