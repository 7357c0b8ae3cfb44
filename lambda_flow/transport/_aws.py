"""AWS clients from botocore, one session per process.

boto3 adds nothing lambda-flow uses (no resources, no S3 transfers) and costs a cold start
~100 ms more than botocore alone: importing it imports ``s3transfer`` and its default session
reads boto3's resource models. A botocore client is the very object ``boto3.client`` returns, so
clients passed in (boto3's, moto's, a recording wrapper) work the same. One session serves every
client of the process, so its event hooks, credential chain and loaded service models are built
once, and its data loader looks only at the services asked for (see :func:`_loader`).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

_lock = threading.Lock()
_session: Any = None
_services: set[str] = set()
"""The services clients were asked for: all the session's loader looks for."""


def _loader(session: Any) -> Any:
    """A data loader that finds a service by looking in that service's folder only.

    botocore's own (whose search path this keeps, ``AWS_DATA_PATH`` included) checks that a
    service exists by listing every service's folder in its data path, once per model type
    (~900 ``listdir`` and ~2,700 ``stat`` calls for one client: 15-40 ms of a cold start); the
    answer is the same for the services asked for. Its files are decoded into plain dicts
    (see ``PlainJSONFileLoader``).
    """
    from botocore.loaders import JSONFileLoader, Loader

    class PlainJSONFileLoader(JSONFileLoader):  # type: ignore[misc]
        """botocore's JSON loader less its ``OrderedDict`` hook (a dict keeps order too).

        The hook calls back into Python for every object: decoding ``endpoints.json`` (1.2 MB,
        read for every first client) takes 23 ms with it and 7 ms without.
        """

        def _load_file(self, full_path: str, open_method: Any) -> Any:
            if not os.path.isfile(full_path):
                return None
            with open_method(full_path, "rb") as fp:
                return json.loads(fp.read().decode("utf-8"))

    class ServicesLoader(Loader):  # type: ignore[misc]
        def list_available_services(self, type_name: str) -> list[str]:
            found = set()
            for location in self._potential_locations():
                for service in list(_services):
                    folder = os.path.join(location, service)
                    if os.path.isdir(folder) and any(
                        self.file_loader.exists(os.path.join(folder, version, type_name))
                        for version in os.listdir(folder)
                    ):
                        found.add(service)
            return sorted(found)

    data_path = session.get_config_variable("data_path")
    paths = [
        os.path.expanduser(os.path.expandvars(path))
        for path in (data_path.split(os.pathsep) if data_path else [])
    ]
    return ServicesLoader(extra_search_paths=paths, file_loader=PlainJSONFileLoader())


def aws_client(service: str) -> Any:
    """A botocore client for ``service``.

    Region, credentials and endpoint come from the environment, as ``boto3.client(service)``'s.
    """
    global _session  # noqa: PLW0603 - one session per process
    with _lock:
        _services.add(service)
        if _session is None:
            import botocore.session

            session = botocore.session.get_session()
            session.register_component("data_loader", _loader(session))
            _session = session
        session = _session
    return session.create_client(service)


def reset_aws_session() -> None:
    """Forget the process's session (tests that change credentials or endpoints between cases)."""
    global _session  # noqa: PLW0603
    with _lock:
        _session = None
