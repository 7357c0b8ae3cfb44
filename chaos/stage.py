"""One scenario's stage: a deployment, its workers, an API client, the runs started, recovery."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from chaos.app import callback_payload, effects_schema
from chaos.cluster import (
    Cluster,
    Deployment,
    Fleet,
    Timing,
    connect,
    deploy,
    fleet_of,
    read_stats,
)
from chaos.figures import Figures, StartedRun, audit, load_runs, unfinished

MIX = (
    "chain",
    "chain",
    "chain",
    "fanout",
    "fanout",
    "race",
    "approval",
    "opener",
    "opener",
    "webhook",
    "webhook",
    "compose",
)
"""Workflows the load draws from (chain most often)."""


@dataclass(slots=True)
class Answer:
    """An HTTP answer (status 0: none came)."""

    status: int
    body: Any
    retry_after: bool = False


def is_server_error(answer: Answer) -> bool:
    """A 5xx other than a 503 with ``Retry-After``, or no answer at all."""
    if answer.status == 0:
        return True
    return answer.status >= 500 and not (answer.status == 503 and answer.retry_after)


class ApiClient:
    """Talks to the ``api`` worker (``lambda_flow.handlers.api``); counts server errors."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.server_errors = 0
        self.examples: list[str] = []
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Answer:
        """One request; the answer (status 0 when the connection failed)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our loopback worker
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer = Answer(response.status, json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as error:
            raw = error.read()
            answer = Answer(
                error.code,
                raw.decode(errors="replace")[:200],
                retry_after=error.headers.get("Retry-After") is not None,
            )
        except OSError as exc:
            answer = Answer(0, str(exc))
        if is_server_error(answer):
            with self._lock:
                self.server_errors += 1
                if len(self.examples) < 3:
                    self.examples.append(f"{method} {path} -> {answer.status} {answer.body}")
        return answer

    def start(self, workflow: str, data: dict[str, Any], *, attempts: int = 40) -> str | None:
        """Start a run (idempotently, retried through outages); its id, or None if refused."""
        key = uuid.uuid4().hex
        for _ in range(attempts):
            answer = self.call(
                "POST", f"/workflows/{workflow}/start", data, **{"Idempotency-Key": key}
            )
            if answer.status == 202 and isinstance(answer.body, dict):
                return str(answer.body["run_id"])
            if answer.status and answer.status < 500:
                raise RuntimeError(f"start {workflow} refused: {answer.status} {answer.body}")
            time.sleep(0.5)
        return None

    def resume(self, run_id: str) -> None:
        """Resume a suspended run (a failure is retried on the next tick)."""
        self.call("POST", f"/runs/{run_id}/resume")


def _unavailable(answer: Answer) -> bool:
    """No answer, or a 503 with ``Retry-After`` (the database is down): ask again later."""
    return answer.status == 0 or (answer.status == 503 and answer.retry_after)


@dataclass(slots=True)
class HandedCallback:
    """A callback a run handed to the harness, and what the harness did with it."""

    callback_id: str
    run_id: str
    name: str
    first: Answer | None = None
    late_checked: bool = False


@dataclass(slots=True)
class Callbacks:
    """The harness as the provider: completes callbacks over HTTP (some twice, some with
    another payload, some again after the run ended), cancels the runs that ask for it, then
    completes their callbacks late; counts answers off the contract."""

    client: ApiClient
    rng: random.Random
    handed: dict[str, HandedCallback] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    wrong: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def _bad(self, what: str, answer: Answer) -> None:
        self.wrong += 1
        if len(self.examples) < 4:
            self.examples.append(f"{what}: {answer.status} {str(answer.body)[:160]}")

    def _succeed(self, handed: HandedCallback, payload: Any) -> Answer:
        return self.client.call("POST", f"/callbacks/{handed.callback_id}/succeed", payload)

    def _complete(self, handed: HandedCallback, seed: int) -> None:
        payload = callback_payload(seed, handed.name)
        answer = self._succeed(handed, payload)
        if _unavailable(answer):
            return
        self.sent["completed"] += 1
        handed.first = answer
        if answer.status != 200:
            self._bad(f"first completion of {handed.callback_id}", answer)
            return
        if self.rng.random() < 0.4:
            self.sent["duplicate"] += 1
            self._same(handed, self._succeed(handed, payload), "duplicate")
        if self.rng.random() < 0.25:
            self.sent["conflicting"] += 1
            other = self._succeed(handed, {**payload, "amount": -1})
            if not _unavailable(other) and other.status != 409:
                self._bad(f"other payload for {handed.callback_id}", other)

    def _same(self, handed: HandedCallback, answer: Answer, what: str) -> None:
        first = handed.first
        if _unavailable(answer) or first is None:
            return
        if (answer.status, answer.body) != (first.status, first.body):
            self._bad(f"{what} of {handed.callback_id} (first {first.status})", answer)

    def tick(self, stage: Stage) -> None:
        """Pick up newly handed callbacks; complete, cancel and re-send as due."""
        webhooks = {r: run for r, run in stage.runs.items() if run.workflow == "webhook"}
        if not webhooks:
            return
        fx = sql.Identifier(effects_schema(stage.deployment.schema))
        with connect(stage.deployment.database_url) as conn:
            rows = conn.execute(
                sql.SQL("SELECT callback_id, run_id::text, name FROM {}.callbacks").format(fx)
            ).fetchall()
        for callback_id, run_id, name in rows:
            if callback_id not in self.handed and run_id in webhooks:
                self.handed[callback_id] = HandedCallback(callback_id, run_id, name)
        open_runs = {h.run_id for h in self.handed.values() if not h.late_checked}
        states = load_runs(stage.deployment.database_url, stage.deployment.schema, open_runs)
        for handed in self.handed.values():
            state = states.get(handed.run_id)
            if not handed.late_checked and state is not None:
                self._drive(handed, webhooks[handed.run_id], state.status)

    def _drive(self, handed: HandedCallback, run: StartedRun, status: str) -> None:
        """One callback's next move: complete it (and repeat it once the run completed), or
        cancel its run (then complete it once the run is cancelled)."""
        seed = int(run.input["seed"])
        if not run.input.get("cancel"):
            if handed.first is None:
                self._complete(handed, seed)
            elif status == "completed":
                self.sent["late"] += 1
                answer = self._succeed(handed, callback_payload(seed, handed.name))
                self._same(handed, answer, "late repeat")
                handed.late_checked = True
            elif status not in ("running", "suspended"):
                handed.late_checked = True
            return
        if handed.run_id not in self.cancelled and handed.name == "Payment":
            answer = self.client.call(
                "POST", f"/runs/{handed.run_id}/cancel", {"reason": "chaos: cancelled"}
            )
            if not _unavailable(answer):
                self.cancelled.add(handed.run_id)
                self.sent["cancel"] += 1
                if answer.status != 200:
                    self._bad(f"cancel of {handed.run_id}", answer)
        elif status == "cancelled":
            answer = self._succeed(handed, callback_payload(seed, handed.name))
            if not _unavailable(answer):
                self.sent["after cancel"] += 1
                handed.late_checked = True
                if answer.status != 409:
                    self._bad(f"completion of {handed.callback_id} after cancel", answer)

    def notes(self) -> list[str]:
        """What was sent, and examples of answers off the contract."""
        if not self.sent:
            return []
        sent = ", ".join(f"{k} {v}" for k, v in sorted(self.sent.items()))
        return [f"callbacks handed {len(self.handed)}; sent: {sent}"] + [
            f"bad callback answer: {e}" for e in self.examples
        ]


@dataclass(slots=True)
class Stage:
    """A deployment with its workers; the runs it started; the scenario's figures."""

    deployment: Deployment
    fleet: Fleet
    client: ApiClient
    timing: Timing
    rng: random.Random
    figures: Figures
    runs: dict[str, StartedRun] = field(default_factory=dict)
    unstarted: int = 0
    callbacks: Callbacks | None = None
    _resumed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- load ----------------------------------------------------------------------------------
    def inputs(self, workflow: str, *, pause_ms: int = 0) -> dict[str, Any]:
        """A random input for ``workflow``."""
        seed = self.rng.randrange(1, 10_000)
        if workflow == "chain":
            return {"seed": seed, "nap": f"{self.rng.choice((1, 2))}s", "pause_ms": pause_ms}
        if workflow == "fanout":
            return {"seed": seed, "width": self.rng.randrange(2, 7), "pause_ms": pause_ms}
        if workflow == "race":
            return {"seed": seed, "nap": "2s"}
        if workflow == "compose":
            return {"seed": seed, "items": self.rng.randrange(3, 8), "pause_ms": pause_ms}
        if workflow == "webhook":
            return {
                "seed": seed,
                "cancel": self.rng.random() < 0.3,
                "crash": self.rng.random() < 0.3,
            }
        return {"seed": seed}

    def start(self, workflow: str, data: dict[str, Any]) -> str | None:
        """Start one run through the API and remember it."""
        run_id = self.client.start(workflow, data)
        with self._lock:
            if run_id is None:
                self.unstarted += 1
            else:
                self.runs[run_id] = StartedRun(run_id, workflow, data)
        return run_id

    def start_many(self, workflow: str, count: int, *, pause_ms: int = 0) -> None:
        """Start ``count`` runs of ``workflow``."""
        for _ in range(count):
            self.start(workflow, self.inputs(workflow, pause_ms=pause_ms))

    def start_mixed_one(self, *, pause_ms: int = 0) -> str | None:
        """Start one run drawn from :data:`MIX`; its id."""
        workflow = self.rng.choice(MIX)
        return self.start(workflow, self.inputs(workflow, pause_ms=pause_ms))

    def start_mixed(self, count: int, *, pause_ms: int = 0) -> None:
        """Start ``count`` runs drawn from :data:`MIX`."""
        for _ in range(count):
            workflow = self.rng.choice(MIX)
            self.start(workflow, self.inputs(workflow, pause_ms=pause_ms))

    # -- time passing ------------------------------------------------------------------------
    def tick(self) -> None:
        """Restart dead workers; resume approval runs that reached their suspension; complete
        callbacks handed off, cancel the runs that ask for it."""
        self.fleet.supervise()
        if self.callbacks is None:
            self.callbacks = Callbacks(self.client, random.Random(self.rng.random()))
        with contextlib.suppress(OSError, psycopg.Error):
            self.callbacks.tick(self)
        approvals = [r for r, run in self.runs.items() if run.workflow == "approval"]
        pending = [r for r in approvals if r not in self._resumed]
        if not pending:
            return
        with contextlib.suppress(OSError):
            waiting = unfinished(self.deployment.database_url, self.deployment.schema, pending)
            for run_id, status in waiting.items():
                if status == "suspended":
                    self.client.resume(run_id)
                    self._resumed.add(run_id)

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass, ticking."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.tick()
            time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))

    def recover(self, bound: float) -> float:
        """Healthy workers and the sweeper run until every run ended (or ``bound`` seconds
        passed); return the seconds it took."""
        if not any(w.keep_alive for w in self.fleet.workers if w.role == "runtime"):
            self.fleet.spawn("runtime")
        if not self.fleet.of_role("sweeper"):
            self.fleet.spawn("sweeper")
        for worker in self.fleet.workers:
            if worker.stopped:
                self.fleet.signal(worker, signal.SIGCONT)
        began = time.monotonic()
        while time.monotonic() - began < bound:
            self.tick()
            left = unfinished(self.deployment.database_url, self.deployment.schema, self.runs)
            if not left:
                break
            time.sleep(0.5)
        return time.monotonic() - began

    # -- figures ------------------------------------------------------------------------------
    def conclude(self, *, trials: int) -> Figures:
        """Audit the runs, add the counters and notes; the scenario's figures."""
        figures = self.figures
        figures.trials += trials
        if self.callbacks is not None:
            with contextlib.suppress(OSError, psycopg.Error):
                self.callbacks.tick(self)  # the late repeats of runs that just ended
            figures.callback_wrong += self.callbacks.wrong
            figures.notes.extend(self.callbacks.notes())
        audit(figures, self.deployment.database_url, self.deployment.schema, self.runs)
        figures.server_errors += self.client.server_errors
        figures.notes.extend(f"5xx: {e}" for e in self.client.examples)
        if self.unstarted:
            figures.notes.append(f"{self.unstarted} starts never accepted (counted lost)")
            figures.lost += self.unstarted
        with contextlib.suppress(Exception):
            depths = self.deployment.queue_depths()
            dead = {k: v for k, v in depths.items() if k.endswith("-dlq") and v}
            if dead:
                figures.notes.append(f"dead-lettered messages: {dead}")
        return figures

    def counters(self) -> dict[str, int]:
        """The workers' counters, summed."""
        return read_stats(self.deployment)[0]

    def kills(self) -> list[str]:
        """The points at which workers killed themselves."""
        return read_stats(self.deployment)[1]


@contextlib.contextmanager
def staged(cluster: Cluster, name: str, timing: Timing, rng: random.Random) -> Iterator[Stage]:
    """Deploy ``name``, start its API worker; stop every worker when the block ends."""
    began = time.monotonic()
    deployment = deploy(cluster, name, timing)
    with fleet_of(deployment) as fleet:
        fleet.spawn("api")
        fleet.wait_api()
        stage = Stage(
            deployment=deployment,
            fleet=fleet,
            client=ApiClient(deployment.api_url),
            timing=timing,
            rng=rng,
            figures=Figures(scenario=name),
        )
        try:
            yield stage
        finally:
            stage.figures.seconds = time.monotonic() - began
