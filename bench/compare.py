"""lambda-flow side by side with DBOS Transact on one durable Postgres, and its own figures.

``make bench`` (or ``.venv/bin/python -m bench compare``) starts one private embedded Postgres
with ``fsync`` and ``synchronous_commit`` on (checked and printed), ``pg_stat_statements``
preloaded and ``pg_walinspect`` installed, then runs every workload. lambda-flow runs in this
process (``bench/lf_workloads.py``); DBOS runs in its own virtual environment
(``.venv-bench-dbos``, from ``bench/requirements-dbos.txt``) as ``python -m bench.dbos_workloads``,
one process per run. Each run gets a fresh database on the same server; the engines alternate,
the order swapping every repetition; figures are medians of ``--reps`` (at least 3) runs.

Workloads (see docs/performance.md for the method):
  a  inline      one workflow of 1000 sequential trivial steps
  b  concurrent  500 workflows of 10 trivial steps, started and awaited, 20 connections each
  c  fan-out     one workflow gathering 100 RPC steps: remote mode through the local queue
                 (passes counted), and in one process against DBOS's asyncio.gather
  d  replay      CPU time of one pass replaying 10,000 recorded steps
  e  onboarding  the example workflow through the Lambda handlers on moto (bench/remote_steps.py)
  f  cold start  ``python -X importtime`` of each lambda_flow.handlers module; peak memory
                 of one pass
  g  callbacks   a wait_for_callback through the Lambda handlers on moto, completed from
                 outside: statements and messages per callback (bench/callbacks.py)

Writes ``bench/results.json`` (every run and the medians) and ``bench/results.md`` (the table),
and prints the table with the lambda-flow / DBOS ratios and each target's verdict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from . import callbacks
from . import lf_workloads as lf
from ._pgstats import ServerMonitor, WireCounter
from ._server import BenchServer, embedded_server, existing_server

SUMMARY = "lambda-flow vs DBOS on one durable Postgres: every workload, results.json/.md"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DBOS_PYTHON = ROOT / ".venv-bench-dbos" / "bin" / "python"
SHARED = ("inline", "concurrent", "fanout_inline")
"""Workloads both engines run (``fanout_inline`` is DBOS's ``fanout``)."""
DBOS_NAME = {"inline": "inline", "concurrent": "concurrent", "fanout_inline": "fanout"}

TARGET_INLINE_RATIO = 4.0
TARGET_CONCURRENT_RATIO = 3.0
TARGET_STATEMENTS_PER_STEP = 2.0
TARGET_COMMITS_PER_STEP = 1.0
TARGET_REPLAY_MS = 50.0
TARGET_IMPORT_MS = 300.0
"""Issue 14: a handler module imports in under this untraced..."""
TARGET_IMPORT_TRACED_MS = 450.0
"""... and under this with tracing on (``python -m bench cold-start`` measures both apart)."""
_EPSILON = 1e-9


class BenchError(Exception):
    """The comparison cannot go on."""


# -- running ------------------------------------------------------------------------------------
@dataclass
class Runner:
    server: BenchServer
    monitor: ServerMonitor
    wire: WireCounter
    args: argparse.Namespace
    counter: int = 0

    def _database(self, workload: str, engine: str) -> tuple[str, str, int]:
        self.counter += 1
        name = f"bench_{self.counter:02d}_{workload}_{engine}"
        url = self.server.create_database(name)
        return name, url, self.monitor.database_oid(name)

    def lambda_flow(self, workload: str) -> dict[str, Any]:
        name, url, dbid = self._database(workload, "lf")
        a = self.args
        try:
            if workload == "inline":
                return lf.inline(url, self.monitor, dbid, self.wire, a.steps)
            if workload == "concurrent":
                return lf.concurrent(
                    url, self.monitor, dbid, self.wire,
                    workflows=a.workflows, steps=a.workflow_steps, connections=a.connections,
                )  # fmt: skip
            if workload == "fanout_inline":
                return lf.fanout_inline(url, self.monitor, dbid, self.wire, a.fanout)
            if workload == "fanout_remote":
                return lf.fanout_remote(url, self.monitor, dbid, self.wire, a.fanout)
            raise ValueError(workload)
        finally:
            self.server.drop_database(name)

    def dbos(self, workload: str) -> dict[str, Any]:
        name, _, _ = self._database(workload, "dbos")
        a = self.args
        steps = {"inline": a.steps, "concurrent": a.workflow_steps, "fanout_inline": a.fanout}
        command = [
            str(a.dbos_python), "-m", "bench.dbos_workloads",
            "--admin-url", self.server.admin_url, "--database", name,
            "--workload", DBOS_NAME[workload], "--steps", str(steps[workload]),
            "--workflows", str(a.workflows), "--connections", str(a.connections),
        ]  # fmt: skip
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and script
                command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
            )
        finally:
            self.server.drop_database(name)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise BenchError(
                f"DBOS {workload} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
            )
        result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
        result["workload"] = workload
        return result

    def lambda_flow_only(self, what: str, call: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        name, url, _ = self._database(what, "lf")
        try:
            return call(url)
        finally:
            self.server.drop_database(name)


def _progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


def _brief(result: dict[str, Any]) -> str:
    if "wall_s" in result:
        return f"{result['wall_s'] * 1e3:.0f} ms, {result['steps'] / result['wall_s']:,.0f} steps/s"
    return ""


def collect(runner: Runner) -> dict[str, Any]:
    """Every run of every workload, keyed by workload then engine."""
    a = runner.args
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    engines = ["lambda_flow"] + ([] if a.no_dbos else ["dbos"])
    for _ in range(a.warmup):  # a fresh server and process: the first runs are slower
        for engine in engines:
            _ = runner.lambda_flow("inline") if engine == "lambda_flow" else runner.dbos("inline")
        _progress("warm-up round done (not reported)")
    for rep in range(a.reps):
        order = engines if rep % 2 == 0 else list(reversed(engines))
        for workload in SHARED:
            for engine in order:
                if engine == "lambda_flow":
                    result = runner.lambda_flow(workload)
                else:
                    result = runner.dbos(workload)
                runs.setdefault(workload, {}).setdefault(engine, []).append(result)
                _progress(f"rep {rep + 1} {workload:<14} {engine:<12} {_brief(result)}")
        result = runner.lambda_flow("fanout_remote")
        runs.setdefault("fanout_remote", {}).setdefault("lambda_flow", []).append(result)
        _progress(f"rep {rep + 1} fanout_remote  lambda_flow  {result['wall_s'] * 1e3:.0f} ms")
    own: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        ("replay", lambda url: lf.replay(url, steps=a.replay_steps, passes=max(a.reps, 3))),
        ("pass_memory", lambda url: lf.pass_memory(url, steps=1000)),
        ("onboarding", lf.onboarding),
        ("cold_start", lambda url: lf.cold_start(url, repeats=max(a.reps, 3))),
        ("callbacks", callbacks.result),
    ]
    for what, call in own:
        runs[what] = {"lambda_flow": [runner.lambda_flow_only(what, call)]}
        _progress(f"{what} done")
    return runs


# -- summarising --------------------------------------------------------------------------------
def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present and len(present) == len(values) else None


def _per(value: float | None, units: float) -> float | None:
    return None if value is None or not units else value / units


def _server(result: dict[str, Any], key: str) -> float | None:
    server: dict[str, Any] = result.get("server") or {}
    value = server.get(key)
    return None if value is None else float(value)


def _marginal(result: dict[str, Any], key: str) -> float | None:
    """Per step beyond the baseline run: (run - baseline) / (steps - baseline steps)."""
    base = result.get("baseline")
    full, first = _server(result, key), _server(base, key) if base else None
    if full is None or first is None or base is None:
        return None
    return float((full - first) / (result["steps"] - base["steps"]))


@dataclass(frozen=True, slots=True)
class Figure:
    workload: str
    label: str
    unit: str
    lambda_flow: float | None
    dbos: float | None = None
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None
    digits: int = 0
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.lambda_flow is None or self.dbos is None or not self.lambda_flow or not self.dbos:
            return None
        if self.higher_is_better:
            return self.lambda_flow / self.dbos
        return self.dbos / self.lambda_flow

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "figure": self.label,
            "unit": self.unit,
            "lambda_flow": self.lambda_flow,
            "dbos": self.dbos,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def _med(
    runs: dict[str, list[dict[str, Any]]],
    engine: str,
    get: Callable[[dict[str, Any]], float | None],
) -> float | None:
    if engine not in runs:
        return None
    return _median([get(r) for r in runs[engine]])


def _shared_figures(
    runs: dict[str, dict[str, list[dict[str, Any]]]], sizes: dict[str, int]
) -> list[Figure]:
    figures: list[Figure] = []

    def both(
        workload: str, get: Callable[[dict[str, Any]], float | None]
    ) -> tuple[float | None, float | None]:
        return _med(runs[workload], "lambda_flow", get), _med(runs[workload], "dbos", get)

    def steps_per_s(r: dict[str, Any]) -> float:
        return float(r["steps"] / r["wall_s"])

    def per_rep(workload: str) -> str:
        """Each repetition's own ratio (the two engines ran back to back)."""
        lf_runs, dbos_runs = runs[workload].get("lambda_flow", []), runs[workload].get("dbos", [])
        pairs = zip(lf_runs, dbos_runs, strict=False)  # no DBOS runs with --no-dbos
        ratios = [f"{steps_per_s(a) / steps_per_s(b):.1f}x" for a, b in pairs]
        return "per repetition: " + ", ".join(ratios) if ratios else ""

    w = f"a. 1 workflow x {sizes['inline_steps']} inline steps"
    lf_v, db_v = both("inline", steps_per_s)
    ratio = None if lf_v is None or db_v is None else lf_v / db_v
    figures.append(Figure(
        w, "throughput", "steps/s", lf_v, db_v, target=f">= {TARGET_INLINE_RATIO:g}x DBOS",
        met=None if ratio is None else ratio >= TARGET_INLINE_RATIO, note=per_rep("inline"),
    ))  # fmt: skip
    lf_v, db_v = both("inline", lambda r: _marginal(r, "statements"))
    figures.append(Figure(
        w, "SQL statements per step (server, marginal)", "stmts", lf_v, db_v, False,
        f"<= {TARGET_STATEMENTS_PER_STEP:g}",
        None if lf_v is None else lf_v <= TARGET_STATEMENTS_PER_STEP + _EPSILON, 2,
        "pg_stat_statements calls, BEGIN/COMMIT included; a statement is one round trip",
    ))  # fmt: skip
    lf_v, db_v = both("inline", lambda r: _per(r.get("exchanges"), r["steps"]))
    figures.append(Figure(
        w, "client round trips per step (psycopg)", "RT", lf_v, db_v, False, digits=2,
        note="psycopg exchanges incl. prepares and the run's fixed cost",
    ))  # fmt: skip
    lf_v, db_v = both("inline", lambda r: _marginal(r, "commits"))
    figures.append(Figure(
        w, "commits per step (WAL commit records, marginal)", "commits", lf_v, db_v, False,
        f"<= {TARGET_COMMITS_PER_STEP:g}",
        None if lf_v is None else lf_v <= TARGET_COMMITS_PER_STEP + _EPSILON, 3,
        "transactions that wrote: one WAL flush each",
    ))  # fmt: skip
    lf_v, db_v = both("inline", lambda r: _per(_server(r, "commits"), r["steps"]))
    figures.append(
        Figure(w, "commits per step, run overhead included", "commits", lf_v, db_v, False, digits=3)
    )
    lf_v, db_v = both("inline", lambda r: _marginal(r, "rows_written"))
    figures.append(Figure(
        w, "rows written per step (heap inserts+updates)", "rows", lf_v, db_v, False, digits=2,
        note="lambda-flow: the step, its history row, the run's version",
    ))  # fmt: skip
    lf_v, db_v = both("inline", lambda r: _marginal(r, "row_locks"))
    figures.append(Figure(w, "row locks per step", "locks", lf_v, db_v, False, digits=2))
    lf_v, db_v = both("inline", lambda r: _marginal(r, "wal_bytes"))
    figures.append(Figure(w, "WAL bytes per step", "B", lf_v, db_v, False))

    w = (
        f"b. {sizes['workflows']} workflows x {sizes['workflow_steps']} steps, "
        f"{sizes['connections']} connections"
    )
    lf_v, db_v = both("concurrent", lambda r: float(r["workflows"] / r["wall_s"]))
    ratio = None if lf_v is None or db_v is None else lf_v / db_v
    figures.append(Figure(
        w, "workflows/s", "wf/s", lf_v, db_v, target=f">= {TARGET_CONCURRENT_RATIO:g}x DBOS",
        met=None if ratio is None else ratio >= TARGET_CONCURRENT_RATIO, digits=1,
        note=per_rep("concurrent"),
    ))  # fmt: skip
    lf_v, db_v = both("concurrent", steps_per_s)
    figures.append(Figure(w, "steps/s", "steps/s", lf_v, db_v))
    lf_v, db_v = both("concurrent", lambda r: _per(_server(r, "statements"), r["steps"]))
    figures.append(
        Figure(w, "SQL statements per step (server)", "stmts", lf_v, db_v, False, digits=2)
    )
    lf_v, db_v = both("concurrent", lambda r: _per(_server(r, "commits"), r["steps"]))
    figures.append(Figure(w, "commits per step (WAL)", "commits", lf_v, db_v, False, digits=3))

    w = f"c. fan-out: 1 workflow gathering {sizes['fanout']} steps"
    lf_v, db_v = both("fanout_inline", lambda r: float(r["wall_s"] * 1e3))
    figures.append(Figure(
        w, "time to completion, in one process (gather)", "ms", lf_v, db_v, False, digits=1,
        note="lambda-flow inline mode (RPC steps run in the pass) vs DBOS async steps",
    ))  # fmt: skip
    return figures


def _own_figures(
    runs: dict[str, dict[str, list[dict[str, Any]]]], sizes: dict[str, int]
) -> list[Figure]:
    figures: list[Figure] = []
    remote = runs["fanout_remote"]["lambda_flow"]
    w = f"c. fan-out: 1 workflow gathering {sizes['fanout']} steps"

    def med(get: Callable[[dict[str, Any]], float | None]) -> float | None:
        return _median([get(r) for r in remote])

    figures.append(Figure(
        w, "remote (LocalQueue + Dispatcher): time to completion", "ms",
        med(lambda r: r["wall_s"] * 1e3), higher_is_better=False, digits=1,
        note="one consumer, one message at a time",
    ))  # fmt: skip
    queued = med(lambda r: r["queued_in_first_pass"])
    steps = remote[0]["steps"]
    figures.append(Figure(
        w, "siblings queued by the first pass", "jobs", queued,
        target=f"all {steps} in one pass", met=None if queued is None else queued == steps,
    ))  # fmt: skip
    figures.append(Figure(
        w, "passes that queued step jobs", "passes", med(lambda r: r["passes_that_queued"]),
        higher_is_better=False,
    ))  # fmt: skip
    figures.append(Figure(
        w, "orchestration passes in all", "passes", med(lambda r: r["passes"]),
        higher_is_better=False,
        note="1 + one per finished step: each step worker carries the run on",
    ))  # fmt: skip
    figures.append(Figure(
        w, "SQS send calls (batches of 10)", "calls", med(lambda r: r["send_batches"]),
        higher_is_better=False,
    ))  # fmt: skip

    replay = runs["replay"]["lambda_flow"][0]
    w = f"d. replay {replay['steps']:,} recorded steps"
    cpu = replay["cpu_ms_median"]
    figures.append(Figure(
        w, "CPU time of one pass (process_time)", "ms", cpu, higher_is_better=False,
        target=f"< {TARGET_REPLAY_MS:g} ms", met=cpu < TARGET_REPLAY_MS, digits=1,
        note=f"median of {replay['passes']} passes",
    ))  # fmt: skip
    figures.append(Figure(
        w, "of which acquire + loading the steps", "ms", replay["acquire_cpu_ms_median"],
        higher_is_better=False, digits=1,
    ))  # fmt: skip
    figures.append(
        Figure(
            w,
            "wall time of the pass",
            "ms",
            replay["wall_ms_median"],
            higher_is_better=False,
            digits=1,
        )
    )

    onboarding = runs["onboarding"]["lambda_flow"][0]
    w = "e. onboarding via the Lambda handlers (moto)"
    attempts = onboarding["rpc_attempts"]
    worker = onboarding["by_function"].get("step_worker", {})
    job_messages = worker.get("invocations", 0)  # batch size 1: one step message each
    per_msg, per_inv = job_messages / attempts, worker.get("invocations", 0) / attempts
    budget = 1 + attempts + onboarding["timers"]
    figures.append(Figure(
        w, "SQS messages per RPC step attempt (its job)", "msgs", per_msg,
        higher_is_better=False, target="<= 1", met=per_msg <= 1 + _EPSILON, digits=2,
    ))  # fmt: skip
    figures.append(Figure(
        w, "Lambda invocations per RPC step attempt", "inv", per_inv, higher_is_better=False,
        target="<= 1", met=per_inv <= 1 + _EPSILON, digits=2,
    ))  # fmt: skip
    figures.append(Figure(
        w, "messages / invocations for the whole run", "msgs", onboarding["sqs_messages"],
        higher_is_better=False, target=f"<= {budget} (start + {attempts} attempts + "
        f"{onboarding['timers']} timers)",
        met=onboarding["sqs_messages"] <= budget and onboarding["invocations"] <= budget,
        note=f"{onboarding['invocations']} invocations",
    ))  # fmt: skip
    figures.append(Figure(
        w, "SQL round trips per RPC step attempt", "RT",
        onboarding["sql_round_trips"] / attempts, higher_is_better=False, digits=2,
        note="whole run (start, wake-ups, inline step, sleep) over the 4 attempts",
    ))  # fmt: skip

    cold = runs["cold_start"]["lambda_flow"][0]["modules"]
    w = "f. cold start: import of handlers.<module>"
    for name, row in cold.items():
        ms, untraced = row["import_ms"], row["import_ms_tracing_off"]
        figures.append(Figure(
            w, name, "ms", ms, higher_is_better=False,
            target=f"< {TARGET_IMPORT_TRACED_MS:g} ms traced, < {TARGET_IMPORT_MS:g} ms untraced",
            met=ms < TARGET_IMPORT_TRACED_MS and untraced < TARGET_IMPORT_MS, digits=0,
            note=f"tracing off: {row['import_ms_tracing_off']:.0f} ms; module setup "
            f"{row['module_setup_ms']:.0f} ms; "
            + ", ".join(f"{k} {v:.0f}" for k, v in list(row["top_packages_ms"].items())[:4]),
        ))  # fmt: skip
    memory = runs["pass_memory"]["lambda_flow"][0]
    figures.append(Figure(
        "f. memory", f"peak of one pass replaying {memory['steps']} steps (tracemalloc)", "MiB",
        memory["peak_bytes"] / 2**20, higher_is_better=False, digits=2,
    ))  # fmt: skip
    if "callbacks" in runs:
        figures += _callback_figures(runs["callbacks"]["lambda_flow"][0])
    return figures


def _callback_figures(result: dict[str, Any]) -> list[Figure]:
    """g. per callback: completing it against issue 12's target, and the whole way round."""
    w = "g. callback via the Lambda handlers (moto)"
    per = result["per_callback"]
    complete, statements = per["complete"], result["target_statements"]
    orchestration = result["orchestration_messages_per_completion"]
    whole = {
        key: sum(per[phase][key] for phase in ("create", "complete", "resume"))
        for key in ("statements", "messages", "invocations")
    }
    return [
        Figure(
            w, "SQL statements to complete a callback", "stmts", complete["statements"],
            higher_is_better=False, target=f"<= {statements}",
            met=complete["statements"] <= statements + _EPSILON, digits=1,
            note="service.complete_callback, as POST /callbacks/{id}/succeed calls it",
        ),
        Figure(
            w, "orchestration messages per completion", "msgs", orchestration,
            higher_is_better=False, target=f"<= {result['target_messages']}",
            met=orchestration <= result["target_messages"], digits=0,
        ),
        Figure(
            w, "SQL statements of a repeated completion (same payload)", "stmts",
            per["repeat"]["statements"], higher_is_better=False, digits=1,
            note=f"{per['repeat']['messages']:.0f} messages: answered as the first time",
        ),
        Figure(
            w, "SQL statements, creation to resumed pass", "stmts", whole["statements"],
            higher_is_better=False, digits=1,
            note=f"{whole['messages']:.0f} SQS messages, {whole['invocations']:.0f} invocations"
            " (the pass that creates it, the submitter's step, the resumed pass; the start and"
            " the completion are service calls)",
        ),
    ]  # fmt: skip


# -- reporting ----------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def markdown(figures: Sequence[Figure], meta: dict[str, Any]) -> str:
    lines = [
        "| workload | figure | lambda-flow | DBOS | LF/DBOS | target | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
        unit = f" {f.unit}" if f.unit else ""
        label = f"{f.label} ({f.unit})" if unit else f.label
        if f.note:
            label += f" <br><sub>{f.note}</sub>"
        lines.append(
            f"| {f.workload} | {label} | {_fmt(f.lambda_flow, f.digits)} | "
            f"{'' if f.dbos is None else _fmt(f.dbos, f.digits)} | {ratio} | {f.target} | "
            f"{_verdict(f.met)} |"
        )
    head = (
        f"Measured {meta['date']} on {meta['machine']['cpu']} ({meta['machine']['nproc']} cores), "
        f"Python {meta['machine']['python']}, {meta['postgres']['version_short']} "
        f"({meta['postgres']['where']}; "
        + ", ".join(f"{k}={v}" for k, v in meta["postgres"]["settings"].items())
        + f"), lambda-flow {meta['versions']['lambda_flow']}, "
        f"DBOS {meta['versions'].get('dbos') or 'n/a'}; "
        f"medians of {meta['reps']} repetitions, engines alternating. LF/DBOS: how many times "
        "better lambda-flow is (throughput ratio, or DBOS's cost over lambda-flow's)."
    )
    return head + "\n\n" + "\n".join(lines) + "\n"


def console(figures: Sequence[Figure]) -> str:
    rows = [["figure", "lambda-flow", "DBOS", "LF/DBOS", "target", "verdict"]]
    current = None
    out: list[str] = []
    for f in figures:
        if f.workload != current:
            current = f.workload
            rows.append([f"[{f.workload}]", "", "", "", "", ""])
        rows.append([
            f"  {f.label} ({f.unit})" if f.unit else f"  {f.label}",
            _fmt(f.lambda_flow, f.digits),
            "" if f.dbos is None else _fmt(f.dbos, f.digits),
            "" if f.ratio is None else f"{f.ratio:.2f}x",
            f.target,
            _verdict(f.met),
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        first = r[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(r[1:4], widths[1:4], strict=True)]
        out.append("  ".join([first, *rest, r[4].ljust(widths[4]), r[5]]).rstrip())
    return "\n".join(out)


_DBOS_VERSION = "from importlib import metadata; print(metadata.version('dbos'))"


def _meta(args: argparse.Namespace, server: BenchServer, monitor: ServerMonitor) -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dbos_version = None
    if not args.no_dbos:
        done = subprocess.run(  # noqa: S603 - our own interpreter
            [str(args.dbos_python), "-c", _DBOS_VERSION],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        dbos_version = done.stdout.strip() or None
    version = monitor.version()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "reps": args.reps,
        "machine": {
            "nproc": affinity or os.cpu_count(),
            "cpu": cpu,
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python": platform.python_version(),
        },
        "postgres": {
            "version": version,
            "version_short": " ".join(version.split()[:2]),
            "where": server.where,
            "settings": server.settings(),
            "statements": monitor.has_statements,
            "walinspect": monitor.has_walinspect,
        },
        "versions": {
            "lambda_flow": metadata.version("lambda-flow"),
            "psycopg": psycopg.__version__,
            "dbos": dbos_version,
        },
        "sizes": {
            "inline_steps": args.steps,
            "workflows": args.workflows,
            "workflow_steps": args.workflow_steps,
            "connections": args.connections,
            "fanout": args.fanout,
            "replay_steps": args.replay_steps,
        },
    }


# -- the command --------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=5, help="repetitions per engine (5, >= 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="unreported rounds of workload a first (1)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="(a) steps of the one workflow")
    parser.add_argument("--workflows", type=int, default=500, help="(b) workflows (500)")
    parser.add_argument("--workflow-steps", type=int, default=10, help="(b) steps each (10)")
    parser.add_argument(
        "--connections", type=int, default=20,
        help="(b) threads and connections for both engines (DBOS's default pool size, 20)",
    )  # fmt: skip
    parser.add_argument("--fanout", type=int, default=100, help="(c) parallel steps (100)")
    parser.add_argument("--replay-steps", type=int, default=10_000, help="(d) recorded steps")
    parser.add_argument(
        "--dbos-python", type=Path, default=DEFAULT_DBOS_PYTHON,
        help="the interpreter of DBOS's virtual environment (make bench creates it)",
    )  # fmt: skip
    parser.add_argument("--no-dbos", action="store_true", help="lambda-flow's figures only")
    parser.add_argument(
        "--database-url", default=None,
        help="an existing Postgres (superuser; pg_stat_statements preloaded for statement "
        "counts) instead of a private embedded one",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument(
        "--allow-unsafe", action="store_true", help="report even if fsync/synchronous_commit off"
    )
    parser.add_argument(
        "--allow-few-reps", action="store_true", help="allow --reps below 3 (smoke runs)"
    )


def run(args: argparse.Namespace) -> int:
    if args.reps < 3 and not args.allow_few_reps:
        raise SystemExit("--reps must be at least 3 (--allow-few-reps for a smoke run)")
    if not args.no_dbos and not Path(args.dbos_python).exists():
        raise SystemExit(
            f"no DBOS interpreter at {args.dbos_python}: run `make bench` (it creates "
            ".venv-bench-dbos from bench/requirements-dbos.txt) or pass --no-dbos"
        )
    server = existing_server(args.database_url) if args.database_url else embedded_server()
    monitor = ServerMonitor(server.admin_url)
    try:
        return _run(args, server, monitor)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        monitor.close()


def _run(args: argparse.Namespace, server: BenchServer, monitor: ServerMonitor) -> int:
    meta = _meta(args, server, monitor)
    settings = meta["postgres"]["settings"]
    durable = settings.get("fsync") == "on" and settings.get("synchronous_commit") == "on"
    print("lambda-flow benchmark: compare (lambda-flow vs DBOS Transact, one durable Postgres)")
    machine = meta["machine"]
    print(f"machine   : {machine['cpu']}, {machine['nproc']} cores, {machine['os']}")
    print(f"postgres  : {meta['postgres']['version_short']}, {server.where}")
    print("settings  : " + " ".join(f"{k}={v}" for k, v in settings.items()))
    print(
        f"counters  : pg_stat_statements {'on' if monitor.has_statements else 'UNAVAILABLE'},"
        f" pg_walinspect {'on' if monitor.has_walinspect else 'UNAVAILABLE'}"
    )
    print(f"engines   : lambda-flow {meta['versions']['lambda_flow']} (this process), "
          f"DBOS {meta['versions']['dbos'] or 'skipped'} ({args.dbos_python})")  # fmt: skip
    print(f"repeats   : {args.reps}, engines alternating (order swapped every repetition)")
    if not durable:
        if not args.allow_unsafe:
            print("refusing to run: fsync and synchronous_commit must both be on", file=sys.stderr)
            return 2
        print("WARNING   : NOT DURABLE (fsync or synchronous_commit off); figures flattered")
    wire = WireCounter()
    with wire.installed():
        wire.exclude = monitor.conn.pgconn
        runs = collect(Runner(server, monitor, wire, args))
    figures = _shared_figures(runs, meta["sizes"]) + _own_figures(runs, meta["sizes"])
    report = {"meta": meta, "figures": [f.as_dict() for f in figures], "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    md = args.out.with_suffix(".md")
    md.write_text(markdown(figures, meta))
    print()
    print(console(figures))
    print()
    ratios = [f for f in figures if f.ratio is not None]
    if ratios:
        print("lambda-flow / DBOS (higher: lambda-flow better):")
        for f in ratios:
            print(f"  {f.workload}: {f.label}: {f.ratio:.2f}x")
    missed = [f for f in figures if f.met is False]
    print(f"\ntargets: {sum(1 for f in figures if f.met)} met, {len(missed)} missed"
          + ("".join(f"\n  MISSED {f.workload}: {f.label}" for f in missed)))  # fmt: skip
    print(f"wrote {args.out} and {md}")
    return 0
