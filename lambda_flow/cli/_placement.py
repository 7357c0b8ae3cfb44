"""Where ``start``, ``run`` and ``resume`` have a run driven: never here when workers share the db.

One :class:`Placement` per place, chosen once by :func:`choose_placement`:

- :class:`QueuePlacement`: ``LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL`` (and the step queue's) is set,
  so the run's first job goes on SQS and the deployed workers drive it.
- :class:`DevPlacement`: a ``lambda-flow dev`` serves this database and schema (it says so in
  ``LAMBDA_FLOW_HOME/dev.json``, see :mod:`lambda_flow.local.dev_endpoint`), so the run is
  started or resumed through dev's HTTP API and dev's workers drive it.
- :class:`HerePlacement`: nobody else drives runs of this database: the command stores the run,
  prints its id, then drives it in this process (unless ``--no-wait``).
"""

from __future__ import annotations

import abc
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from ..aws.config import ENV_ORCHESTRATOR_QUEUE_URL, ENV_STEP_QUEUE_URL
from ..core import setting
from ..worker import InlineDriver, RemoteDriver
from ._session import CommandError

if TYPE_CHECKING:
    from ..engine import Driver, Engine
    from ..local.dev_endpoint import DevEndpoint
    from ..service import WorkflowService
    from ..transport.base import JobQueue
    from ._session import Session


class StoredOnlyDriver(InlineDriver):
    """Inline mode that does not drive on ``start``/``resume``: the command drives afterwards.

    The run is stored (and its id printed) before any of its code runs here; the command then
    drives it with :func:`lambda_flow.cli._watch.drive`, or leaves it for a later ``resume``.
    """

    def dispatch(self, engine: Engine, run_id: str) -> None:
        """Nothing: the command drives the run itself, after printing its id."""


class Placement(abc.ABC):
    """Where runs started or resumed by a command are driven."""

    drives_here: bool = False
    """Whether the command itself drives the run (no worker shares the database)."""

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """Who drives the run, for messages (``lambda-flow dev at http://...``)."""

    def driver(self) -> Driver:
        """The service's driver: a start or resume never drives anything by itself."""
        return StoredOnlyDriver()

    def start(
        self,
        service: WorkflowService,
        workflow: str,
        data: Any,
        idempotency_key: str | None,
        run_timeout: str | None = None,
    ) -> str:
        """Store a run of ``workflow`` (queueing its first job if workers drive it); its id."""
        return service.start(
            workflow, data, idempotency_key=idempotency_key, run_timeout=run_timeout
        )

    def resume(self, service: WorkflowService, run_id: str, payload: Any = None) -> None:
        """Mark a suspended run running again (queueing a pass if workers drive it).

        ``payload`` is what the awaited ``wf.suspend`` returns.
        """
        service.resume(run_id, payload)

    def fork(self, service: WorkflowService, run_id: str, from_step: str, data: Any) -> str:
        """Store a fork of ``run_id`` from ``from_step`` (queueing a pass if workers drive it)."""
        return service.fork(run_id, from_step=from_step, input=data)


class HerePlacement(Placement):
    """No workers: the command drives the run in its own process."""

    drives_here = True

    @property
    def where(self) -> str:
        return "this process"


class QueuePlacement(Placement):
    """Workers fed by the orchestrator queue drive the run (AWS, or SQS emulated locally)."""

    def __init__(self, queue: JobQueue, orchestrator_queue_url: str) -> None:
        self.queue = queue
        self.url = orchestrator_queue_url

    @property
    def where(self) -> str:
        return f"the workers of {self.url}"

    def driver(self) -> Driver:
        return RemoteDriver(self.queue)


class DevPlacement(Placement):
    """A running ``lambda-flow dev`` drives the run; the command asks its HTTP API."""

    def __init__(self, endpoint: DevEndpoint, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"lambda-flow dev at {self.endpoint.url} (pid {self.endpoint.pid})"

    def start(
        self,
        service: WorkflowService,
        workflow: str,
        data: Any,
        idempotency_key: str | None,
        run_timeout: str | None = None,
    ) -> str:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        query = f"?{urllib.parse.urlencode({'run_timeout': run_timeout})}" if run_timeout else ""
        answer = self._post(f"/workflows/{workflow}/start{query}", data, headers)
        return str(answer["run_id"])

    def resume(self, service: WorkflowService, run_id: str, payload: Any = None) -> None:
        self._post(f"/runs/{run_id}/resume", None if payload is None else {"payload": payload}, {})

    def fork(self, service: WorkflowService, run_id: str, from_step: str, data: Any) -> str:
        body: dict[str, Any] = {"from_step": from_step}
        if data is not None:
            body["input"] = data
        return str(self._post(f"/runs/{run_id}/fork", body, {})["run_id"])

    def post(self, path: str, body: Any) -> Any:
        """POST ``body`` (JSON) to dev's API at ``path``; its answer, decoded.

        Raises:
            CommandError: dev answered an error (named) or could not be reached.
        """
        return self._post(path, body, {})

    def _post(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - dev's own loopback http:// URL
            self.endpoint.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{self.where}: {_api_error(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CommandError(f"{self.where} did not answer: {reason}") from None


def _api_error(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code} {exc.reason}"


def choose_placement(session: Session) -> Placement:
    """Where runs of this session's database are driven (see the module's docstring).

    Raises:
        CommandError: the orchestrator queue is set without the step queue.
    """
    orchestrator = setting(None, ENV_ORCHESTRATOR_QUEUE_URL)
    if orchestrator:
        step = setting(None, ENV_STEP_QUEUE_URL)
        if not step:
            raise CommandError(
                f"{ENV_ORCHESTRATOR_QUEUE_URL} is set without {ENV_STEP_QUEUE_URL}: set both"
            )
        from ..transport.sqs import SqsJobQueue

        return QueuePlacement(SqsJobQueue(orchestrator, step), orchestrator)
    from ..local.dev_endpoint import find_dev

    endpoint = find_dev(session.database_url(), session.schema())
    if endpoint is not None:
        return DevPlacement(endpoint)
    return HerePlacement()
