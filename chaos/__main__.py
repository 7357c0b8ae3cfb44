"""``python -m chaos [--quick] [--seed N] [--only NAME ...]``: run the suite, print the figures,
write ``chaos/results.md``; exit 1 when a target is missed."""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported in main(), once the engine under test is on the path
    from chaos.figures import Figures

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("results.md")
SCENARIO_NAMES = (
    "kill_points",
    "random_kills",
    "stalls",
    "duplicates",
    "racing_backlog",
    "postgres_restart",
    "poison",
    "children",
    "http_fuzz",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIO_NAMES, help="run these scenarios only"
    )
    parser.add_argument(
        "--engine",
        type=Path,
        default=REPO,
        help="folder whose lambda_flow/ (handlers included) the workers run (default: here)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the table")
    parser.add_argument("--keep", action="store_true", help="keep worker logs and counters")
    return parser


def _run_one(name: str, scenario: Callable[[Any], Figures], suite: Any) -> Figures:
    from chaos.figures import Figures, render_text

    began = time.monotonic()
    try:
        figures = scenario(suite)
    except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, the rest go on
        traceback.print_exc()
        figures = Figures(scenario=name, stuck=1, notes=[f"scenario crashed: {exc!r}"])
        figures.seconds = time.monotonic() - began
    print(render_text([figures]).splitlines()[-1], flush=True)
    return figures


def _engine_version(root: Path) -> str:
    """The engine's commit, and whether its files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git, our arguments
            ["git", "-C", str(root), *args],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "lambda_flow", "handlers")  # an old engine's too
    return f"{commit}{' with uncommitted changes' if dirty else ''}"


def _report(rows: list[Figures], options: argparse.Namespace, seed: int) -> str:
    from chaos.figures import render_markdown

    load = os.getloadavg()
    lines = [
        "# Chaos suite results",
        "",
        f"`python -m chaos{' --quick' if options.quick else ''} --seed {seed}"
        f"{'' if options.engine.resolve() == REPO else f' --engine {options.engine}'}`"
        f" on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_version()},"
        f" {os.cpu_count()} CPUs, load average after the run"
        f" {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; engine (lambda_flow/)"
        f" at {_engine_version(options.engine)}.",
        "",
        render_markdown(rows),
        "",
        "## Notes",
        "",
    ]
    for row in rows[:-1]:
        misses = row.misses()
        lines.append(
            f"- **{row.scenario}**: "
            + ("all targets met" if not misses else "missed " + ", ".join(misses))
        )
        lines += [f"  - {note}" for note in row.notes]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; 0 when every target is met."""
    options = _parser().parse_args(argv)
    # The engine under test first on the path, for this process too (it imports the app).
    from chaos._engine import use_engine

    use_engine(str(options.engine.resolve()))
    from chaos import fuzz
    from chaos.cluster import Cluster, Timing
    from chaos.figures import Figures, render_text
    from chaos.scenarios import FULL, QUICK, SCENARIOS, Suite

    scenarios = {**SCENARIOS, "http_fuzz": fuzz.http_fuzz}
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1 << 30)
    names = options.only or list(SCENARIO_NAMES)
    cluster = Cluster(engine_root=options.engine, keep=options.keep)
    print(f"chaos suite: seed {seed}, scratch {cluster.root}", flush=True)
    suite = Suite(
        cluster=cluster,
        timing=Timing(),
        sizes=QUICK if options.quick else FULL,
        rng=random.Random(seed),
    )
    rows: list[Figures] = []
    try:
        print(render_text([]), flush=True)
        rows = [_run_one(name, scenarios[name], suite) for name in names]
    finally:
        cluster.close()
    total = Figures(scenario="total")
    for row in rows:
        total.add(row)
    rows.append(total)
    print(render_text(rows), flush=True)
    report = _report(rows, options, seed)
    options.results.write_text(report, encoding="utf-8")
    print(report.split("## Notes", 1)[1], flush=True)
    misses = total.misses()
    if misses:
        print(f"targets missed: {', '.join(misses)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
