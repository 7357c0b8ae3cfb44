"""What each scenario is measured by, how runs are audited, and the targets.

A run is audited against :func:`chaos.app.expected` and the execution log of its steps:

- **lost**: started (the API answered with its id) but not in the store, or ended ``failed`` or
  ``cancelled`` when it had to complete (its work was thrown away);
- **wrong output**: completed with an output other than the expected one, or completed when it
  had to fail;
- **committed steps re-run**: executions that began after the engine had committed that step
  (invariant 1);
- **uncommitted re-runs**: further executions of one attempt that the engine never committed
  (a crash between the side effect and the commit: at-least-once, allowed);
- **stuck**: still ``running`` (or ``suspended`` after being resumed) when recovery ended;
- **extra orchestrator messages per run**: orchestrator messages the sweeper sent, per run, in
  the scenarios measured under a backlog;
- **at-most-once re-runs**: further executions of one attempt of an ``at_most_once`` step
  (an interrupted attempt must be recorded ``StepInterrupted``, never run again);
- **cleanup not once**: cancelled runs whose cleanup step did not run and commit exactly once
  (or runs that were not cancelled and ran it);
- **bad callback answers**: completions over HTTP answered otherwise than the contract says (a
  repeat must answer as the first did, another payload or a completion after the run was
  cancelled 409);
- **children lost**: runs of :func:`chaos.app.compose` whose child run is missing, or did not
  complete with the expected output while its parent completed, or whose waiting step did not
  get the child's output (a child's end not handed to its parent);
- **children started twice**: child runs beyond one per parent step;
- **map items run twice**: executions of a map item that began after the engine had committed
  it, and map items of a completed run without exactly one succeeded attempt;
- **5xx**: API answers 500-599 (a 503 with ``Retry-After`` aside) and requests left without
  an answer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from chaos.app import CHILD_STEP, MAP_STEP, effects_schema, expected
from chaos.cluster import connect

TARGET_EXTRA_PER_RUN = 0.2


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run the harness started, and what it asked for."""

    run_id: str
    workflow: str
    input: dict[str, Any]


@dataclass(slots=True)
class Figures:
    """One scenario's figures (or the total's)."""

    scenario: str
    trials: int = 0
    runs: int = 0
    lost: int = 0
    wrong: int = 0
    committed_reruns: int = 0
    uncommitted_reruns: int = 0
    stuck: int = 0
    once_reruns: int = 0
    cleanup_wrong: int = 0
    callback_wrong: int = 0
    children_lost: int = 0
    children_twice: int = 0
    map_reruns: int = 0
    extra_orchestrator: int = 0
    backlog_runs: int = 0
    """Runs of the backlog measurement (0: not measured in this scenario)."""
    server_errors: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def extra_per_run(self) -> float | None:
        """Extra orchestrator messages per run under a backlog, if measured."""
        return self.extra_orchestrator / self.backlog_runs if self.backlog_runs else None

    def misses(self) -> list[str]:
        """The targets this scenario missed, named."""
        missed = [
            name
            for name, value in (
                ("lost", self.lost),
                ("wrong output", self.wrong),
                ("committed steps re-run", self.committed_reruns),
                ("stuck", self.stuck),
                ("at-most-once re-runs", self.once_reruns),
                ("cleanup not once", self.cleanup_wrong),
                ("bad callback answers", self.callback_wrong),
                ("children lost", self.children_lost),
                ("children started twice", self.children_twice),
                ("map items run twice", self.map_reruns),
                ("5xx", self.server_errors),
            )
            if value
        ]
        extra = self.extra_per_run
        if extra is not None and extra > TARGET_EXTRA_PER_RUN:
            missed.append("extra orchestrator messages")
        return missed

    def add(self, other: Figures) -> None:
        """Add another scenario's figures to this total."""
        for name in (
            "trials",
            "runs",
            "lost",
            "wrong",
            "committed_reruns",
            "uncommitted_reruns",
            "stuck",
            "once_reruns",
            "cleanup_wrong",
            "callback_wrong",
            "children_lost",
            "children_twice",
            "map_reruns",
            "extra_orchestrator",
            "backlog_runs",
            "server_errors",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds


# -- auditing runs ---------------------------------------------------------------------------------
@dataclass(slots=True)
class RunState:
    """A run as the store has it."""

    status: str
    output: Any
    error: dict[str, Any] | None


def load_runs(database_url: str, schema: str, run_ids: Iterable[str]) -> dict[str, RunState]:
    """The stored state of each of ``run_ids`` that exists."""
    ids = list(run_ids)
    if not ids:
        return {}
    query = sql.SQL(
        "SELECT id::text, status, output, error FROM {}.runs WHERE id = ANY(%s::uuid[])"
    ).format(sql.Identifier(schema))
    with connect(database_url) as conn:
        rows = conn.execute(query, [ids]).fetchall()
    return {r[0]: RunState(status=r[1], output=r[2], error=r[3]) for r in rows}


def _judge(run: StartedRun, state: RunState | None) -> str | None:
    """``lost``, ``wrong``, ``stuck`` or None (as expected)."""
    if state is None:
        return "lost"
    want_status, want_output = expected(run.workflow, run.input)
    if state.status in ("running", "suspended"):
        return "stuck"
    if want_status == "completed":
        if state.status != "completed":
            return "lost"
        return None if _same(state.output, want_output) else "wrong"
    if state.status == want_status:
        return None
    # A run that had to be cancelled (or fail) but completed gave an output it must not have.
    return "wrong" if state.status == "completed" else "lost"


def _same(stored: Any, wanted: Any) -> bool:
    return bool(json.dumps(stored, sort_keys=True) == json.dumps(wanted, sort_keys=True))


def _reruns(database_url: str, schema: str) -> tuple[int, int, list[str]]:
    """Committed re-runs, uncommitted re-runs, and a few examples of the former."""
    fx = sql.Identifier(effects_schema(schema))
    with connect(database_url) as conn:
        committed = conn.execute(
            sql.SQL(
                "SELECT run_id::text, step_key, attempt FROM {}.executions WHERE committed_before"
            ).format(fx)
        ).fetchall()
        logged = conn.execute(sql.SQL("SELECT count(*) FROM {}.executions").format(fx)).fetchone()
        # A later execution of a step is a retry when the one before it raised (the step's own
        # failure); otherwise that one's result was lost (killed, stalled, fenced off). The
        # next check of a poll after one that returned is the poll going on, not a re-run.
        repeats = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM (SELECT kind, attempt, lag(outcome, 1, 'first') OVER w"
                " AS before, lag(attempt) OVER w AS before_attempt FROM {}.executions"
                " WINDOW w AS (PARTITION BY run_id, step_key ORDER BY id)) AS e"
                " WHERE before IS DISTINCT FROM 'raised' AND before IS DISTINCT FROM 'first'"
                " AND NOT (kind = 'poll' AND before = 'returned' AND attempt > before_attempt)"
            ).format(fx)
        ).fetchone()
    repeated = int(repeats[0]) if repeats else 0
    examples = [f"{r[1]!r} attempt {r[2]} of run {r[0]}" for r in committed[:3]]
    examples.insert(0, f"step executions logged: {int(logged[0]) if logged else 0}")
    return len(committed), max(repeated - len(committed), 0), examples


def _once_reruns(database_url: str, schema: str) -> tuple[int, list[str]]:
    """Executions of an ``at_most_once`` attempt after its first, and a few examples."""
    fx = sql.Identifier(effects_schema(schema))
    with connect(database_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT run_id::text, step_key, attempt, count(*) FROM {}.executions"
                " WHERE once GROUP BY run_id, step_key, attempt HAVING count(*) > 1"
            ).format(fx)
        ).fetchall()
        total = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.executions WHERE once").format(fx)
        ).fetchone()
        kinds = dict(
            conn.execute(
                sql.SQL(
                    "SELECT error->>'type', count(*) FROM {}.step_attempts WHERE error->>'type'"
                    " IN ('StepInterrupted', 'StepTimedOut') GROUP BY 1"
                ).format(sql.Identifier(schema))
            ).fetchall()
        )
    notes = [
        f"at-most-once executions logged: {int(total[0]) if total else 0}; attempts recorded"
        f" StepInterrupted: {kinds.get('StepInterrupted', 0)},"
        f" StepTimedOut: {kinds.get('StepTimedOut', 0)}"
    ]
    notes += [f"{r[1]!r} attempt {r[2]} of run {r[0]} ran {r[3]} times" for r in rows[:3]]
    return sum(int(r[3]) - 1 for r in rows), notes


def _cleanup_wrong(
    database_url: str, schema: str, runs: Mapping[str, StartedRun], states: Mapping[str, RunState]
) -> tuple[int, list[str]]:
    """Runs whose cleanup did not run exactly once as it had to (once per cancelled run)."""
    fx, engine = sql.Identifier(effects_schema(schema)), sql.Identifier(schema)
    with connect(database_url) as conn:
        ran = dict(
            conn.execute(
                sql.SQL(
                    "SELECT run_id::text, count(*) FROM {}.executions"
                    " WHERE kind = 'cleanup' AND outcome = 'returned' GROUP BY run_id"
                ).format(fx)
            ).fetchall()
        )
        started = dict(
            conn.execute(
                sql.SQL(
                    "SELECT run_id::text, count(*) FROM {}.executions WHERE kind = 'cleanup'"
                    " GROUP BY run_id"
                ).format(fx)
            ).fetchall()
        )
        committed = {
            r[0]
            for r in conn.execute(
                sql.SQL(
                    "SELECT DISTINCT run_id::text FROM {}.steps"
                    " WHERE step_key = 'Refund' AND status = 'succeeded'"
                ).format(engine)
            ).fetchall()
        }
    wrong: list[str] = []
    cancelled = 0
    for run_id, run in runs.items():
        if run.workflow != "webhook":
            continue
        must = expected(run.workflow, run.input)[0] == "cancelled"
        state = states.get(run_id)
        if must and state is not None and state.status == "cancelled":
            cancelled += 1
            if ran.get(run_id, 0) != 1 or run_id not in committed:
                wrong.append(
                    f"run {run_id}: cleanup returned {ran.get(run_id, 0)} times"
                    f" ({started.get(run_id, 0)} started), committed {run_id in committed}"
                )
        elif not must and started.get(run_id, 0):
            wrong.append(f"run {run_id} (not cancelled) ran its cleanup")
    notes = [
        f"cancelled runs with cleanup: {cancelled}, cleanup executions:"
        f" {sum(started.get(r, 0) for r in runs)}"
    ]
    return len(wrong), notes + wrong[:3]


def _children(
    database_url: str, schema: str, runs: Mapping[str, StartedRun], states: Mapping[str, RunState]
) -> tuple[int, int, list[str]]:
    """Children lost and children started twice, over the runs of ``compose``."""
    parents = [r for r, run in runs.items() if run.workflow == "compose"]
    if not parents:
        return 0, 0, []
    engine = sql.Identifier(schema)
    with connect(database_url) as conn:
        children = conn.execute(
            sql.SQL(
                "SELECT parent_id::text, parent_step, status, output, input FROM {}.runs"
                " WHERE parent_id = ANY(%s::uuid[])"
            ).format(engine),
            [parents],
        ).fetchall()
        handed = dict(
            conn.execute(
                sql.SQL(
                    "SELECT run_id::text, result FROM {}.steps WHERE run_id = ANY(%s::uuid[])"
                    " AND step_key = %s AND kind = 'child' AND status = 'succeeded'"
                ).format(engine),
                [parents, CHILD_STEP],
            ).fetchall()
        )
    by_parent: dict[str, list[tuple[Any, ...]]] = {}
    for row in children:
        by_parent.setdefault(row[0], []).append(tuple(row))
    lost: list[str] = []
    twice: list[str] = []
    for parent in parents:
        mine = by_parent.get(parent, [])
        state = states.get(parent)
        if len(mine) > 1:
            twice.append(f"run {parent}: {len(mine)} child runs")
        if not mine:
            if state is not None and state.status == "completed":
                lost.append(f"run {parent}: completed without a child run")
            continue
        _, step, status, output, data = mine[0]
        want = expected("provision", data)[1]
        if state is None or state.status != "completed":
            continue  # the parent's own verdict (lost, stuck) says it
        if step != CHILD_STEP or status != "completed" or not _same(output, want):
            lost.append(f"run {parent}: child {step} {status} output {output}, want {want}")
        elif parent not in handed or not _same(handed[parent], want):
            lost.append(f"run {parent}: its child's output never reached its step")
    notes = [f"compose runs: {len(parents)}, child runs: {len(children)}"]
    return (
        len(lost),
        sum(len(by_parent[p]) - 1 for p in by_parent if len(by_parent[p]) > 1),
        (notes + lost[:3] + twice[:3]),
    )


def _map_reruns(
    database_url: str, schema: str, runs: Mapping[str, StartedRun], states: Mapping[str, RunState]
) -> tuple[int, list[str]]:
    """Map items re-run after their commit, or not succeeded exactly once in a completed run."""
    parents = [
        r
        for r, run in runs.items()
        if run.workflow == "compose"
        and (s := states.get(r)) is not None
        and s.status == "completed"
    ]
    if not any(run.workflow == "compose" for run in runs.values()):
        return 0, []
    fx, engine = sql.Identifier(effects_schema(schema)), sql.Identifier(schema)
    pattern = f"{MAP_STEP}/%"
    with connect(database_url) as conn:
        rerun = conn.execute(
            sql.SQL(
                "SELECT run_id::text, step_key, attempt FROM {}.executions"
                " WHERE committed_before AND step_key LIKE %s"
            ).format(fx),
            [pattern],
        ).fetchall()
        succeeded = conn.execute(
            sql.SQL(
                "SELECT run_id::text, step_key, count(*) FILTER (WHERE status = 'succeeded')"
                " FROM {}.step_attempts WHERE run_id = ANY(%s::uuid[]) AND step_key LIKE %s"
                " GROUP BY 1, 2"
            ).format(engine),
            [parents, pattern],
        ).fetchall()
        executed = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.executions WHERE step_key LIKE %s").format(fx),
            [pattern],
        ).fetchone()
    items = {r: int(runs[r].input.get("items", 5)) for r in parents}
    per_run: Counter[str] = Counter()
    wrong = [f"{r[1]!r} of run {r[0]}: {r[2]} succeeded attempts" for r in succeeded if r[2] != 1]
    for run_id, _, count in succeeded:
        per_run[run_id] += count == 1
    missing = [f"run {r}: {per_run[r]} of {n} items succeeded" for r, n in items.items()
               if per_run[r] != n]  # fmt: skip
    notes = [
        f"map item executions logged: {int(executed[0]) if executed else 0} over"
        f" {sum(items.values())} items of {len(items)} completed runs"
    ]
    notes += [f"map item {r[1]!r} attempt {r[2]} of run {r[0]} re-run" for r in rerun[:3]]
    return len(rerun) + len(wrong) + len(missing), notes + wrong[:3] + missing[:3]


def audit(figures: Figures, database_url: str, schema: str, runs: Mapping[str, StartedRun]) -> None:
    """Fill ``figures`` from the store and the execution log (runs, lost, wrong, re-runs)."""
    states = load_runs(database_url, schema, runs)
    verdicts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for run_id, run in runs.items():
        state = states.get(run_id)
        verdict = _judge(run, state)
        if verdict is None:
            continue
        verdicts[verdict] += 1
        described = f"{run.workflow} {run_id}: " + (
            "not in the store"
            if state is None
            else f"{state.status} {json.dumps(state.error)[:160] if state.error else ''}".strip()
        )
        examples.setdefault(verdict, []).append(described)
    figures.runs += len(runs)
    figures.lost += verdicts["lost"]
    figures.wrong += verdicts["wrong"]
    figures.stuck += verdicts["stuck"]
    committed, uncommitted, rerun_examples = _reruns(database_url, schema)
    figures.committed_reruns += committed
    figures.uncommitted_reruns += uncommitted
    once, once_notes = _once_reruns(database_url, schema)
    figures.once_reruns += once
    cleanup, cleanup_notes = _cleanup_wrong(database_url, schema, runs, states)
    figures.cleanup_wrong += cleanup
    lost_children, twice, child_notes = _children(database_url, schema, runs, states)
    figures.children_lost += lost_children
    figures.children_twice += twice
    map_reruns, map_notes = _map_reruns(database_url, schema, runs, states)
    figures.map_reruns += map_reruns
    figures.notes += once_notes + cleanup_notes + child_notes + map_notes
    for verdict, runs_described in sorted(examples.items()):
        figures.notes.append(
            f"{verdict}: {len(runs_described)} e.g. " + "; ".join(runs_described[:2])
        )
    figures.notes.append(rerun_examples[0])
    if committed:
        figures.notes.append("committed steps re-run, e.g. " + "; ".join(rerun_examples[1:]))


def unfinished(database_url: str, schema: str, run_ids: Iterable[str]) -> dict[str, str]:
    """Runs still ``running`` or ``suspended``, with that status."""
    states = load_runs(database_url, schema, run_ids)
    return {
        run_id: state.status
        for run_id, state in states.items()
        if state.status in ("running", "suspended")
    }


# -- printing --------------------------------------------------------------------------------------
COLUMNS = (
    ("scenario", "scenario", ""),
    ("trials", "trials", ""),
    ("runs", "runs", ""),
    ("lost", "lost", "0"),
    ("wrong", "wrong output", "0"),
    ("committed_reruns", "committed re-run", "0"),
    ("uncommitted_reruns", "uncommitted re-runs", "-"),
    ("stuck", "stuck", "0"),
    ("once_reruns", "at-most-once re-runs", "0"),
    ("cleanup_wrong", "cleanup not once", "0"),
    ("callback_wrong", "bad callback answers", "0"),
    ("children_lost", "children lost", "0"),
    ("children_twice", "children started twice", "0"),
    ("map_reruns", "map items run twice", "0"),
    ("extra", "extra orch. msgs/run", "<= 0.2"),
    ("server_errors", "5xx", "0"),
    ("seconds", "seconds", ""),
)


def _cell(figures: Figures, key: str) -> str:
    if key == "extra":
        extra = figures.extra_per_run
        return "-" if extra is None else f"{extra:.2f}"
    if key == "seconds":
        return f"{figures.seconds:.0f}"
    return str(getattr(figures, key))


def table(rows: list[Figures]) -> list[list[str]]:
    """Header, targets, then one row per scenario (the total last)."""
    header = [title for _, title, _ in COLUMNS]
    targets = ["target", *[target for _, _, target in COLUMNS[1:]]]
    return [header, targets, *[[_cell(r, key) for key, _, _ in COLUMNS] for r in rows]]


def render_text(rows: list[Figures]) -> str:
    """The table as aligned plain text."""
    cells = table(rows)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    )


def render_markdown(rows: list[Figures]) -> str:
    """The table as Markdown."""
    cells = table(rows)
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)
