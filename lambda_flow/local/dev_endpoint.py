"""How other commands find a running ``lambda-flow dev``: a small file in ``LAMBDA_FLOW_HOME``.

While it serves, ``lambda-flow dev`` keeps ``dev.json`` there with its API's URL, its process id
and the database and schema it works on. ``lambda-flow start`` and ``resume`` read it: when dev
serves the database they use, they ask dev's API to start or resume the run (its workers drive
it) instead of running the workflow in their own process. A file whose process is gone is stale
and ignored (and removed).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store.embedded import lambda_flow_home

FILE_NAME = "dev.json"


@dataclass(frozen=True, slots=True)
class DevEndpoint:
    """A running ``lambda-flow dev``: where its API is and what it serves."""

    url: str
    """The API's base URL (``http://127.0.0.1:8000``)."""
    pid: int
    """The dev process."""
    database_url: str
    schema: str


def endpoint_file(env: Mapping[str, str] | None = None) -> Path:
    """The file a running ``lambda-flow dev`` describes itself in."""
    return lambda_flow_home(env) / FILE_NAME


@contextlib.contextmanager
def published(endpoint: DevEndpoint, env: Mapping[str, str] | None = None) -> Iterator[DevEndpoint]:
    """Keep ``endpoint`` in :func:`endpoint_file` while the block runs.

    The file is removed afterwards, unless another dev process has replaced it meanwhile.
    """
    path = endpoint_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{FILE_NAME}.{endpoint.pid}")
    temporary.write_text(json.dumps(asdict(endpoint)))
    os.replace(temporary, path)  # readers never see half a file
    try:
        yield endpoint
    finally:
        if _read(path) == endpoint:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _read(path: Path) -> DevEndpoint | None:
    try:
        data = json.loads(path.read_text())
        return DevEndpoint(
            url=str(data["url"]),
            pid=int(data["pid"]),
            database_url=str(data["database_url"]),
            schema=str(data["schema"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_dev(
    database_url: str, schema: str, env: Mapping[str, str] | None = None
) -> DevEndpoint | None:
    """The running ``lambda-flow dev`` serving ``database_url`` and ``schema``, if there is one.

    Args:
        database_url: the database a command works on.
        schema: the schema of lambda-flow's tables there.
        env: the environment to read ``LAMBDA_FLOW_HOME`` from (``os.environ`` when None).

    Returns:
        The endpoint, or None when no dev runs or it serves another database or schema.
    """
    path = endpoint_file(env)
    endpoint = _read(path)
    if endpoint is None:
        return None
    if not _alive(endpoint.pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: its process is gone
        return None
    if endpoint.database_url != database_url or endpoint.schema != schema:
        return None
    return endpoint
