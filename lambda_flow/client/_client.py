"""``Client``: the HTTP API with ``WorkflowService``'s methods, over the standard library."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ..core import (
    ANY_CODEC,
    MAX_INPUT_BYTES,
    ConfigurationError,
    Duration,
    InputTooLarge,
    Run,
    RunCancelled,
    RunFailed,
    RunNotFound,
    RunPage,
    RunStatus,
    RunSummary,
    RunSuspended,
    RunTimedOut,
    StepAttempt,
    WorkflowInfo,
    check_storable,
    json_size,
    parse_duration,
)
from ._auth import Auth
from ._errors import ApiConnectionError, RequestContext, error_from_answer

__all__ = ["Client"]

_JSON = "application/json"


class Client:
    """A typed client of the lambda-flow HTTP API (``lambda-flow dev`` or a deployed stack).

    The methods are ``WorkflowService``'s, answering the same models (``Run``,
    ``StepAttempt``) and raising the same exceptions (``WorkflowNotFound``, ``InvalidInput``,
    ``IdempotencyConflict``, ``RunNotFound``, ``InvalidRunState``, ...); an error answer with no
    such exception raises :class:`HttpApiError`, an unreachable API :class:`ApiConnectionError`.

    Example:
        client = Client("https://abc123.execute-api.eu-west-1.amazonaws.com", auth=SigV4Auth())
        run = client.start_and_wait("onboard_user", {"email": "a@b.c", "user_id": "u1"})

    Args:
        base_url: the API's URL (``http://127.0.0.1:8000`` for ``lambda-flow dev``).
        auth: :class:`SigV4Auth` (IAM), :class:`BearerToken` (JWT), or None (``lambda-flow
            dev``, which serves local callers as a local IAM user).
        timeout: seconds one HTTP request may take (``/run`` waits up to 25 s on the server).
        poll_interval: how often :meth:`start_and_wait` looks at a run once the server's own
            wait is over.
        headers: extra headers for every request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 35.0,
        poll_interval: Duration = "500ms",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.poll_interval = parse_duration(poll_interval)
        self.headers = dict(headers or {})

    # -- HTTP ------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        has_body: bool = False,
        headers: Mapping[str, str] | None = None,
        context: RequestContext | None = None,
    ) -> tuple[int, Any]:
        """Send one request; the status and decoded JSON body of a 2xx answer.

        Raises:
            LambdaFlowError: the exception for an error answer (see :func:`error_from_answer`).
            ApiConnectionError: the API could not be reached.
        """
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body, separators=(",", ":")).encode() if has_body else b""
        sent = {"Accept": _JSON, **self.headers, **(headers or {})}
        if has_body:
            sent["Content-Type"] = _JSON
        if self.auth is not None:
            sent = self.auth.sign(method, url, sent, data)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            url, data=data if has_body else None, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return answer.status, _decode(answer.read())
        except urllib.error.HTTPError as answer:
            with answer:
                payload = _decode(answer.read())
            known = context or RequestContext()
            raise error_from_answer(answer.code, payload, known) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiConnectionError(f"cannot reach {self.base_url}: {exc}") from exc

    @staticmethod
    def _body(name: str, input: Any) -> tuple[Any, int]:
        """``input`` as JSON data (models dumped), refused here as the API would refuse it.

        Returns:
            The data, and its size in bytes of compact JSON.

        Raises:
            UnstorableInput: text the database cannot store (checked before and after dumping,
                which turns NaN into null).
            InputTooLarge: more than ``MAX_INPUT_BYTES`` of JSON.
        """
        target = f"workflow {name!r}"
        check_storable(input, target)
        data = ANY_CODEC.dump(input)
        check_storable(data, target)
        size = json_size(data)
        if size > MAX_INPUT_BYTES:
            raise InputTooLarge(target, size, MAX_INPUT_BYTES)
        return data, size

    # -- workflows ---------------------------------------------------------------------------
    def list_workflows(self) -> list[WorkflowInfo]:
        """Every workflow the API serves, with its description, tags and JSON Schemas."""
        _, body = self._request("GET", "/workflows")
        return [WorkflowInfo.model_validate(w) for w in body["workflows"]]

    def start(
        self,
        name: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        run_timeout: Duration | None = None,
    ) -> str:
        """Start a run of workflow ``name`` and return its id (it runs on the API's workers).

        ``run_timeout`` bounds the whole run (default: the workflow's own timeout); it is sent
        as the ``run_timeout`` query parameter, which means the option whatever the input is.

        Raises:
            WorkflowNotFound: no workflow has that name (nothing is written).
            InvalidInput: ``input`` fails the workflow's annotation, holds text the database
                cannot store (:class:`UnstorableInput`) or is too large (:class:`InputTooLarge`).
            IdempotencyConflict: the key started a run with a different input.
        """
        data, size = self._body(name, input)
        context = RequestContext(workflow=name, idempotency_key=idempotency_key, body_size=size)
        _, body = self._request(
            "POST",
            f"/workflows/{_segment(name)}/start",
            query={"run_timeout": _duration_text(run_timeout)},
            body=data,
            has_body=input is not None,
            headers=_key_header(idempotency_key),
            context=context,
        )
        return str(body["run_id"])

    def start_and_wait(
        self,
        name: str,
        input: Any = None,
        *,
        timeout: Duration | None = None,
        idempotency_key: str | None = None,
        run_timeout: Duration | None = None,
    ) -> Run:
        """Start a run, wait up to ``timeout`` (None: no limit) for it to leave ``running``.

        The run comes back as it then is: completed, failed, cancelled, suspended, or still
        running. The server waits up to its cap (25 s); past that the client polls.
        ``run_timeout``: as :meth:`start`.

        Raises:
            WorkflowNotFound, InvalidInput, IdempotencyConflict: as :meth:`start`.
        """
        data, size = self._body(name, input)
        wait = None if timeout is None else parse_duration(timeout)
        deadline = None if wait is None else time.monotonic() + wait.total_seconds()
        context = RequestContext(workflow=name, idempotency_key=idempotency_key, body_size=size)
        _, body = self._request(
            "POST",
            f"/workflows/{_segment(name)}/run",
            query={
                "timeout": None if wait is None else f"{_milliseconds(wait)}ms",
                "run_timeout": _duration_text(run_timeout),
            },
            body=data,
            has_body=input is not None,
            headers=_key_header(idempotency_key),
            context=context,
        )
        run_id = str(body["run_id"])
        status = RunStatus(body["status"])
        while status is RunStatus.RUNNING:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            pause = self.poll_interval.total_seconds()
            time.sleep(pause if left is None else min(pause, left))
            status = self._require(run_id).status
        return self._require(run_id)

    def run_to_completion(
        self,
        name: str,
        input: Any = None,
        *,
        timeout: Duration | None = None,
        idempotency_key: str | None = None,
        run_timeout: Duration | None = None,
    ) -> Any:
        """Start a run and wait for its output (JSON data, as the API returns it).

        ``run_timeout``: as :meth:`start`.

        Raises:
            WorkflowNotFound, InvalidInput, IdempotencyConflict: as :meth:`start`.
            RunFailed, RunCancelled, RunSuspended: the run ended (or parked) without output.
            RunTimedOut: ``timeout`` passed first; the run itself goes on.
        """
        run = self.start_and_wait(
            name, input, timeout=timeout, idempotency_key=idempotency_key, run_timeout=run_timeout
        )
        if run.status is RunStatus.COMPLETED:
            return run.output
        if run.status is RunStatus.FAILED:
            raise RunFailed(run.id, str(run.error) if run.error else "")
        if run.status is RunStatus.CANCELLED:
            raise RunCancelled(run.id, run.error.message if run.error else None)
        if run.status is RunStatus.SUSPENDED:
            waiting = [a for a in self.get_run_history(run.id) if a.kind == "suspend"]
            raise RunSuspended(run.id, waiting[-1].step_name if waiting else None)
        raise RunTimedOut(run.id, run.status.value)

    # -- reading -----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run | None:
        """The run with its input and output, or None for an unknown id."""
        try:
            return self._require(run_id)
        except RunNotFound:
            return None

    def _require(self, run_id: str) -> Run:
        _, body = self._request(
            "GET", f"/runs/{_segment(run_id)}", context=RequestContext(run_id=run_id)
        )
        return Run.model_validate(body)

    def get_run_history(self, run_id: str) -> list[StepAttempt]:
        """Every attempt of every step, oldest first.

        Raises:
            RunNotFound: unknown run.
        """
        _, body = self._request(
            "GET", f"/runs/{_segment(run_id)}/history", context=RequestContext(run_id=run_id)
        )
        return [StepAttempt.model_validate(a) for a in body["history"]]

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
    ) -> RunPage:
        """One page of run summaries (no input or output), newest first.

        Pass ``cursor=page.next_cursor`` for the next page; a page may hold fewer than
        ``limit`` runs (runs the caller may not read, the API's 1 MiB page cap) while
        ``next_cursor`` goes on. :meth:`iter_runs` follows the cursors. ``created_after``
        (inclusive) and ``created_before`` (exclusive, both timezone-aware) bound the creation
        time; ``search`` keeps the runs whose id or idempotency key is, or starts with, it.

        Raises:
            InvalidInput: an unknown status, a limit outside 1..1000, a malformed cursor, a
                time without a timezone or a search over 200 characters.
        """
        query = {
            "parent_id": parent_id,
            "workflow": workflow,
            "status": None if status is None else str(status),
            "limit": limit,
            "cursor": cursor,
            "created_after": None if created_after is None else created_after.isoformat(),
            "created_before": None if created_before is None else created_before.isoformat(),
            "search": search,
        }
        _, body = self._request("GET", "/runs", query=query)
        return RunPage.model_validate(body)

    def iter_runs(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | str | None = None,
        page_size: int = 100,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
    ) -> Iterator[RunSummary]:
        """Every run summary, newest first, page after page (the filters of :meth:`list_runs`)."""
        cursor: str | None = None
        while True:
            page = self.list_runs(
                workflow=workflow, status=status, limit=page_size, cursor=cursor,
                parent_id=parent_id, created_after=created_after,
                created_before=created_before, search=search,
            )  # fmt: skip
            yield from page.runs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- operator actions --------------------------------------------------------------------
    def resume(self, run_id: str, payload: Any = None) -> Run:
        """Resume a suspended run (or drive a running one whose process stopped).

        ``payload`` is what the awaited ``wf.suspend`` returns.

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has already finished.
        """
        context = RequestContext(run_id=run_id, operation="resume")
        _, body = self._request(
            "POST",
            f"/runs/{_segment(run_id)}/resume",
            body=None if payload is None else {"payload": payload},
            has_body=payload is not None,
            context=context,
        )
        return Run.model_validate(body)

    def fork(self, run_id: str, *, from_step: str, input: Any = None) -> str:
        """Start a new run of ``run_id``'s workflow reusing its steps before ``from_step``.

        Args:
            run_id: the run to fork.
            from_step: the key of the first step to run again.
            input: the new run's input; None keeps the forked run's.

        Returns:
            The new run's id.

        Raises:
            RunNotFound: unknown run.
            InvalidOption: the run has no step ``from_step`` (nothing is written).
            InvalidInput: ``input`` fails the workflow's annotation.
        """
        context = RequestContext(run_id=run_id, operation="fork")
        body: dict[str, Any] = {"from_step": from_step}
        if input is not None:
            body["input"] = input
        _, answer = self._request(
            "POST",
            f"/runs/{_segment(run_id)}/fork",
            body=body,
            has_body=True,
            context=context,
        )
        return str(answer["run_id"])

    # -- callbacks ---------------------------------------------------------------------------
    def complete_callback(self, callback_id: str, payload: Any = None) -> None:
        """Complete a callback with ``payload`` (idempotent: the same payload again is fine).

        Raises:
            CallbackNotFound: no callback has this id.
            CallbackConflict: completed otherwise, timed out, or its run ended without it.
        """
        self._callback(callback_id, "succeed", payload)

    def fail_callback(self, callback_id: str, error: str, *, error_type: str | None = None) -> None:
        """Fail a callback: the awaiting code sees ``CallbackFailed``.

        Raises:
            CallbackNotFound, CallbackConflict: as :meth:`complete_callback`.
        """
        self._callback(callback_id, "fail", {"error": error, "type": error_type})

    def heartbeat_callback(self, callback_id: str) -> None:
        """Move a waiting callback's heartbeat deadline.

        Raises:
            CallbackNotFound, CallbackConflict: as :meth:`complete_callback`.
        """
        self._callback(callback_id, "heartbeat", None)

    def _callback(self, callback_id: str, action: str, body: Any) -> None:
        context = RequestContext(callback_id=callback_id, operation=action)
        self._request(
            "POST",
            f"/callbacks/{_segment(callback_id)}/{action}",
            body=body,
            has_body=body is not None,
            context=context,
        )

    def cancel(self, run_id: str, reason: str | None = None) -> Run:
        """Cancel a running or suspended run.

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has already finished.
            UnstorableInput: ``reason`` holds text the database cannot store.
        """
        context = RequestContext(run_id=run_id, operation="cancel")
        _, body = self._request(
            "POST",
            f"/runs/{_segment(run_id)}/cancel",
            body=None if reason is None else {"reason": reason},
            has_body=reason is not None,
            context=context,
        )
        return Run.model_validate(body)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _segment(value: str) -> str:
    return quote(value, safe="")


def _key_header(idempotency_key: str | None) -> dict[str, str]:
    return {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}


def _duration_text(value: Duration | None) -> str | None:
    """A duration as the API's query parameters take it; the server validates it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds() * 1000)}ms"
    return f"{value}s"


def _milliseconds(wait: timedelta) -> int:
    return max(0, int(wait.total_seconds() * 1000))
