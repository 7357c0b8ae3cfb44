"""Each page's data, rendered by the Jinja2 templates in ``templates/`` (autoescaped)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..core import ErrorInfo, InvalidInput, Run, RunStatus, StepAttempt
from ._http import CSRF_FIELD, ConsoleError, ConsoleRequest, ConsoleResponse
from ._queries import COUNT_CAP, RunFilter, list_runs, status_counts
from ._timeline import build_timeline, human_duration
from ._views import (
    MAX_SHOWN_CHARS,
    elapsed,
    form_fields,
    input_schema,
    json_block,
    parse_when,
    pretty,
    when,
)

if TYPE_CHECKING:
    import jinja2

    from ._app import Console

__all__ = ["Pages"]

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZES = (20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
LIVE_EVERY_MS = 2000
"""How often a page with running runs fetches its live part again (console.js)."""


@cache
def _environment() -> jinja2.Environment:
    """The templates' environment, built on first use (the API's cold start never pays it)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: everything shown is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        when=when,
        human=human_duration,
        statuses=[s.value for s in RunStatus],
        count_cap=COUNT_CAP,
        csrf_field=CSRF_FIELD,
        live_every_ms=LIVE_EVERY_MS,
    )
    env.filters["usd"] = _usd
    env.filters["pathpart"] = lambda value: quote(str(value), safe="")
    env.filters["dict_without"] = lambda mapping, *names: {
        k: v for k, v in mapping.items() if k not in names
    }
    return env


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.8f}".rstrip("0")


def _status(value: str | None) -> RunStatus | None:
    if value is None:
        return None
    if value not in RunStatus._value2member_map_:
        raise ConsoleError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "Invalid filter",
            f"unknown status {value!r}; expected one of " + ", ".join(s.value for s in RunStatus),
        )
    return RunStatus(value)


def _run_id(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ConsoleError(
            HTTPStatus.UNPROCESSABLE_ENTITY, "Invalid filter", f"{name} must be a run id (a UUID)"
        ) from None


def _q(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    return value or None


class Pages:
    """The pages of one :class:`Console`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.service = console.service
        self.flow = console.flow

    def render(self, template: str, status: int = HTTPStatus.OK, **context: Any) -> ConsoleResponse:
        """A page from ``template`` (autoescaped)."""
        context.setdefault("read_only", self.console.read_only)
        body = _environment().get_template(template).render(**context)
        return ConsoleResponse(status=int(status), body=body)

    def hooks(self) -> bool:
        """Whether any workflow has an ``authorize`` hook (counts would then leak)."""
        return any(d.authorize is not None for d in self.flow)

    # -- runs ------------------------------------------------------------------------------
    def runs(self, request: ConsoleRequest, caller: Any, token: str) -> ConsoleResponse:
        """The runs page (or, with ``fragment=1``, its live part)."""
        query = request.query
        flt = RunFilter(
            workflow=_q(query, "workflow"),
            status=_status(_q(query, "status")),
            parent_id=_run_id(_q(query, "parent"), "parent"),
            created_from=parse_when(query.get("from", ""), "from"),
            created_to=parse_when(query.get("to", ""), "to"),
            text=_q(query, "q"),
        )
        limit = int(query["limit"]) if query.get("limit", "") in map(str, PAGE_SIZES) else 50
        cursor = _q(query, "cursor")
        page = list_runs(self.service, flt, limit=limit, cursor=cursor)
        runs = [r for r in page if self.console.allowed(caller, "read", r.workflow, run_id=r.id)]
        next_cursor = self.service.cursor_after(page[-1]) if len(page) == limit else None
        counts = None if self.hooks() else status_counts(self.service, flt)
        filters = {
            k: v
            for k, v in query.items()
            if k in ("workflow", "status", "parent", "from", "to", "q", "limit") and v
        }
        context: dict[str, Any] = {
            "runs": runs,
            "counts": counts,
            "filters": filters,
            "next_query": None if next_cursor is None else {**filters, "cursor": next_cursor},
            "first_query": filters if cursor is not None else None,
            "live_query": {**filters, **({"cursor": cursor} if cursor else {}), "fragment": "1"},
            "active": any(r.status is RunStatus.RUNNING for r in runs)
            or bool(counts and counts[RunStatus.RUNNING]),
            "workflows": sorted(d.name for d in self.flow),
            "page_sizes": PAGE_SIZES,
            "limit": limit,
            "now": self.service.clock.now(),
        }
        if query.get("fragment") == "1":
            return self.render("_runs_live.html", **context)
        return self.render("runs.html", token=token, title="Runs", section="runs", **context)

    # -- one run ---------------------------------------------------------------------------
    def run(self, request: ConsoleRequest, caller: Any, token: str, run_id: str) -> ConsoleResponse:
        """A run's page (or, with ``fragment=1``, its live part)."""
        run = self.console.visible_run(caller, run_id)
        history = self.service.get_run_history(run.id)
        context = self._run_context(run, history, caller)
        if request.query.get("fragment") == "1":
            return self.render("_run_live.html", **context)
        from ._app import notice

        steps = sorted({a.step_key for a in history if a.created_at >= run.created_at})
        return self.render(
            "run.html",
            token=token,
            title=f"Run {run.id}",
            section="runs",
            notice=notice(request.query.get("done")),
            fork_steps=[a.step_key for a in _first_attempts(history)] or steps,
            can_resume=run.status is RunStatus.SUSPENDED,
            can_cancel=not run.status.is_terminal,
            **context,
        )

    def _run_context(self, run: Run, history: list[StepAttempt], caller: Any) -> dict[str, Any]:
        now = self.service.clock.now()
        end = run.updated_at if run.status.is_terminal else now
        children = [
            c
            for c in self.service.list_runs(parent_id=run.id, summary=True, limit=200)
            if self.console.allowed(caller, "read", c.workflow, run_id=c.id)
        ]
        child_steps = {
            s.key: s.child_run_id for s in self.service.store.get_steps(run.id) if s.child_run_id
        }
        graph = None
        if run.workflow in getattr(self.flow, "graphs", {}):
            from ._graph import draw_graph

            states = {a.step_name: a.status.value for a in history}
            graph = draw_graph(self.flow.graphs[run.workflow], states)  # type: ignore[attr-defined]
        return {
            "run": run,
            "history": history,
            "attempts": [_attempt_view(run, a) for a in history],
            "timeline": build_timeline(run, history, now),
            "graph": graph,
            "children": children,
            "child_steps": child_steps,
            "duration": human_duration(elapsed(run.created_at, end)),
            "input": json_block(run.input),
            "output": json_block(run.output),
            "error": None if run.error is None else _error_view(run.error),
            "cost": self.console.cost_of(run, history),
            "active": run.status is RunStatus.RUNNING,
            "now": now,
        }

    def run_part(
        self, request: ConsoleRequest, caller: Any, run_id: str, part: str
    ) -> ConsoleResponse:
        """``value``: a whole JSON value of the run (input, output, error, an attempt's)."""
        if part != "value":
            raise ConsoleError(HTTPStatus.NOT_FOUND, "Not found", f"no page {request.path}")
        run = self.console.visible_run(caller, run_id)
        field = request.query.get("field", "")
        value: Any
        if field in ("input", "output"):
            value = getattr(run, field)
        elif field == "error":
            value = None if run.error is None else run.error.model_dump()
        elif field in ("result", "attempt_error"):
            key, number = request.query.get("step", ""), request.query.get("attempt", "")
            found = [
                a
                for a in self.service.get_run_history(run.id)
                if a.step_key == key and str(a.attempt) == number
            ]
            if not found:
                raise ConsoleError(
                    HTTPStatus.NOT_FOUND, "Not found", f"run {run.id} has no such attempt"
                )
            attempt = found[0]
            value = (
                attempt.result
                if field == "result"
                else (None if attempt.error is None else attempt.error.model_dump())
            )
        else:
            raise ConsoleError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "Invalid request",
                "field must be input, output, error, result or attempt_error",
            )
        return ConsoleResponse(
            status=HTTPStatus.OK, body=pretty(value), content_type="text/plain; charset=utf-8"
        )

    # -- workflows -------------------------------------------------------------------------
    def workflows(self, request: ConsoleRequest, caller: Any, token: str) -> ConsoleResponse:
        """Every registered workflow with its description, schemas and runs."""
        items = [self._workflow_summary(d.name, caller, recent=5) for d in self.flow]
        items.sort(key=lambda w: w["name"])
        return self.render(
            "workflows.html", token=token, title="Workflows", section="workflows", items=items
        )

    def _workflow_summary(self, name: str, caller: Any, *, recent: int) -> dict[str, Any]:
        definition = self.flow.get_workflow(name)
        counts = None if self.hooks() else status_counts(self.service, RunFilter(workflow=name))
        finished = 0 if counts is None else sum(counts[s] for s in RunStatus if s.is_terminal)
        rate = None
        if counts is not None and finished:
            rate = counts[RunStatus.COMPLETED] / finished
        runs = [
            r
            for r in self.service.list_runs(workflow=name, summary=True, limit=recent)
            if self.console.allowed(caller, "read", r.workflow, run_id=r.id)
        ]
        return {
            "name": name,
            "description": definition.description,
            "tags": list(definition.tags),
            "counts": counts,
            "finished": finished,
            "rate": rate,
            "recent": runs,
            "graph": name in getattr(self.flow, "graphs", {}),
        }

    def workflow(
        self,
        request: ConsoleRequest,
        caller: Any,
        token: str,
        name: str,
        *,
        form: Mapping[str, str] | None = None,
        problem: InvalidInput | None = None,
    ) -> ConsoleResponse:
        """One workflow: its schemas, its graph, its recent runs and a form to start one."""
        definition = self.flow.get_workflow(name)
        schema = input_schema(definition.input)
        output = input_schema(definition.output) if not definition.output.is_any else {}
        graph = None
        graphs = getattr(self.flow, "graphs", {})
        if name in graphs:
            from ._graph import draw_graph

            graph = draw_graph(graphs[name])
        return self.render(
            "workflow.html",
            status=HTTPStatus.UNPROCESSABLE_ENTITY if problem is not None else HTTPStatus.OK,
            token=token,
            title=f"Workflow {name}",
            section="workflows",
            summary=self._workflow_summary(name, caller, recent=10),
            input_schema=pretty(schema),
            output_schema=pretty(output),
            fields=form_fields(schema),
            graph=graph,
            form=dict(form or {}),
            problem=problem,
            now=self.service.clock.now(),
        )

    # -- confirmation and errors -----------------------------------------------------------
    def confirm(
        self,
        request: ConsoleRequest,
        form: Mapping[str, str],
        *,
        action: str,
        run: Run | None = None,
        workflow: str | None = None,
        callback_id: str | None = None,
    ) -> ConsoleResponse:
        """The page that asks to confirm an action (nothing changed yet)."""
        shown = {k: v for k, v in form.items() if k not in (CSRF_FIELD, "confirm")}
        return self.render(
            "confirm.html",
            token=form.get(CSRF_FIELD, ""),
            title="Confirm",
            section="runs" if run is not None else "workflows",
            action=action,
            run=run,
            workflow=workflow,
            callback_id=callback_id,
            fields=shown,
            target=request.path,
        )

    def error(self, status: int, title: str, message: str, token: str) -> ConsoleResponse:
        """An error page with ``status``."""
        return self.render(
            "error.html",
            status=status,
            token=token,
            title=title,
            section="",
            message=message,
            code=int(status),
        )


def _first_attempts(history: list[StepAttempt]) -> list[StepAttempt]:
    seen: set[str] = set()
    firsts = []
    for attempt in history:
        if attempt.step_key not in seen:
            seen.add(attempt.step_key)
            firsts.append(attempt)
    return firsts


def _error_view(error: ErrorInfo) -> dict[str, Any]:
    return {
        "type": error.type,
        "message": error.message,
        "step_key": error.step_key,
        "traceback": error.traceback,
    }


def _attempt_view(run: Run, attempt: StepAttempt) -> dict[str, Any]:
    result = json_block(attempt.result)
    return {
        "a": attempt,
        "result": result,
        "error": None if attempt.error is None else _error_view(attempt.error),
        "duration": (
            human_duration(attempt.finished_at - attempt.started_at)
            if attempt.finished_at is not None and attempt.started_at is not None
            else None
        ),
        "copied": attempt.created_at < run.created_at,
        "limit": MAX_SHOWN_CHARS,
    }
