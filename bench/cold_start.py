"""Cold start: ``import lambda_flow.handlers.<module>`` in a fresh interpreter, per handler.

Every function in ``template.yaml`` points its ``Handler`` at a module of
``lambda_flow/handlers/``; importing that module is the cold start lambda-flow controls: the
imports, then the module-level setup (settings, the app, the connection pool and its schema check,
the SQS and Scheduler clients). Each sample is a new ``python -X importtime`` process with the
environment ``template.yaml`` gives that function (``Globals`` plus the function's own
variables, ``!Ref`` and ``!GetAtt`` replaced by dummy values of the right form: queue URLs,
a role ARN, the parameters' defaults), the database as a URL to a private embedded Postgres
(instead of the Secrets Manager secret) and dummy AWS credentials: importing makes no AWS call.

Each module is measured with tracing on, as the template deploys the functions
(``Tracing: Active``, so powertools' ``Tracer`` and the X-Ray SDK load), and off
(``POWERTOOLS_TRACE_DISABLED=true``, see ``lambda_flow.aws.tracing``). Per module and mode:
the median and minimum of the module's import time over ``--samples`` fresh processes, timed
around the ``import`` statement without a profiler (after one unmeasured import that compiles
the bytecode and creates the schema), next to the targets (< 300 ms untraced, < 450 ms traced,
issue 14); then, from one more process per sample under ``-X importtime`` (whose own cost, ~10-30
ms over ~1,000 imports, is shown apart as "profiled"), the module-level setup, the process's CPU
time and the ten imports with the largest cumulative time (medians over the samples). The load
average is printed before and after: figures from a busy machine are not comparable.
``--check`` exits 1 on a missed target, ``--json`` adds a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY = "import time of every lambda_flow.handlers module, traced and not (issue 14)"

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
HANDLERS = ROOT / "lambda_flow" / "handlers"
TARGET_MS = {"untraced": 300.0, "traced": 450.0}
MODES = ("untraced", "traced")
DEFAULT_SAMPLES = 7
TOP = 10

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S.*)$")

# Dummy values for what the template's !Ref and !GetAtt resolve to on AWS.
_ACCOUNT = "123456789012"
_REGION = "us-east-1"
_QUEUE_URL = f"https://sqs.{_REGION}.amazonaws.com/{_ACCOUNT}/lambda-flow-{{}}"
_REFS = {
    "DatabaseSecretArn": None,  # the bench connects by URL instead
    "QueueStartWorkflow": "onboard_user",
    "ScheduleStartWorkflow": "onboard_user",
    "WakeupScheduleGroup": "lambda-flow-wakeups",
}


# -- the environment of each function, from template.yaml -------------------------------------
class _Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value


def _load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml, each ``!Tag value`` as a :class:`_Tagged` (PyYAML, untyped here)."""
    import importlib

    yaml: Any = importlib.import_module("yaml")
    loader: Any = type("TemplateLoader", (yaml.SafeLoader,), {})

    def tagged(load: Any, suffix: str, node: Any) -> _Tagged:
        if isinstance(node, yaml.ScalarNode):
            return _Tagged(suffix, load.construct_scalar(node))
        if isinstance(node, yaml.SequenceNode):
            return _Tagged(suffix, load.construct_sequence(node, deep=True))
        return _Tagged(suffix, load.construct_mapping(node, deep=True))

    loader.add_multi_constructor("!", tagged)
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return loaded


def _resolve(value: Any, template: dict[str, Any]) -> str | None:
    if not isinstance(value, _Tagged):
        return None if value is None else str(value)
    if value.tag == "Ref":
        name = str(value.value)
        if name in _REFS:
            return _REFS[name]
        resource = template.get("Resources", {}).get(name, {})
        if resource.get("Type") == "AWS::SQS::Queue":
            return _QUEUE_URL.format(re.sub(r"Queue$", "", name).lower() or name.lower())
        default = template.get("Parameters", {}).get(name, {}).get("Default")
        return None if default in (None, "") else str(default)
    if value.tag == "GetAtt":
        name, _, attribute = str(value.value).partition(".")
        if attribute == "Arn":
            return f"arn:aws:iam::{_ACCOUNT}:role/lambda-flow-{name.lower()}"
    raise ValueError(f"template.yaml: no dummy value for !{value.tag} {value.value!r}")


def function_environments(database_url: str) -> dict[str, dict[str, str]]:
    """Per handler module: the variables template.yaml gives its function, resolved to dummies."""
    template = _load_template()
    common = template["Globals"]["Function"]["Environment"]["Variables"]
    environments: dict[str, dict[str, str]] = {}
    memory = str(template["Globals"]["Function"]["MemorySize"])
    for name, function in template["Resources"].items():
        if function.get("Type") != "AWS::Serverless::Function":
            continue
        properties = function["Properties"]
        handler = str(properties.get("Handler", ""))
        match = re.fullmatch(r"lambda_flow/handlers/(\w+)\.handler", handler)
        if not match:
            continue
        own = properties.get("Environment", {}).get("Variables", {})
        env: dict[str, str] = {}
        for key, raw in {**common, **own}.items():
            value = _resolve(raw, template)
            if value not in (None, ""):
                env[key] = str(value)
        env.update(
            {
                "LAMBDA_FLOW_DATABASE_URL": database_url,
                "AWS_LAMBDA_FUNCTION_NAME": f"lambda-flow-{name}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory,
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "_HANDLER": handler,
            }
        )
        environments[match.group(1)] = env
    return environments


def base_environment() -> dict[str, str]:
    """This process's environment less any setting of lambda-flow, AWS or powertools, plus
    what the Lambda runtime sets (dummy credentials and region, no network)."""
    prefixes = ("LAMBDA_FLOW_", "AWS_", "POWERTOOLS_", "PYDANTIC_", "_X_AMZN", "LAMBDA_")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    for name in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        keep.pop(name, None)
    return {
        **keep,
        "AWS_REGION": _REGION,
        "AWS_DEFAULT_REGION": _REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "PYTHONPATH": str(ROOT),
    }


def handler_modules() -> list[str]:
    return sorted(p.stem for p in HANDLERS.glob("*.py") if not p.stem.startswith("_"))


# -- measuring --------------------------------------------------------------------------------
@dataclass
class Sample:
    """One fresh interpreter's ``import lambda_flow.handlers.<module>``."""

    total_us: int
    """The handler module's cumulative import time (its module-level setup included)."""
    setup_us: int
    """The handler module's own code: building the runtime (pool, clients, the app)."""
    cumulative_us: dict[str, int]
    """Cumulative import time of every module imported (first import only)."""
    self_us: dict[str, int]
    cpu_s: float = 0.0
    """CPU time of the whole process (user + system, interpreter start included): less
    sensitive to a busy machine than the wall-clock import time."""
    plain_us: int = 0
    """The same import in another fresh interpreter without ``-X importtime``, timed around
    the ``import`` statement: the cold start itself, the profiler's own cost left out (it
    times ~1,000 imports)."""


_PLAIN_MARK = "lambda-flow-cold-start-us"
_PLAIN = (
    "import time\n"
    "began = time.perf_counter()\n"
    "import {module}\n"
    f"print('{_PLAIN_MARK}', round((time.perf_counter() - began) * 1e6), flush=True)\n"
)


def _plain_us(module: str, env: dict[str, str]) -> int:
    """``import module`` timed in a fresh interpreter without the profiler (microseconds)."""
    done = subprocess.run(  # noqa: S603 - this interpreter, a module name of ours
        [sys.executable, "-c", _PLAIN.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr[-3000:]}")
    for line in done.stdout.splitlines():  # the api logs a line of its own at import
        if line.startswith(_PLAIN_MARK):
            return int(line.split()[1])
    raise RuntimeError(f"no import time printed for {module}:\n{done.stdout[-3000:]}")


def import_once(module: str, env: dict[str, str]) -> Sample:
    """Import ``module`` in a fresh interpreter, then in a ``python -X importtime`` one."""
    plain = _plain_us(module, env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(  # noqa: S603 - this interpreter, a module name of ours
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr[-3000:]}")
    cumulative: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        name = match.group(4).strip()
        own[name] = int(match.group(1))
        cumulative[name] = int(match.group(2))
    if module not in cumulative:
        raise RuntimeError(f"no import time reported for {module}:\n{done.stderr[-3000:]}")
    return Sample(cumulative[module], own[module], cumulative, own, cpu, plain)


@dataclass
class Figures:
    module: str
    mode: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        """The median import time without the profiler: what the target is checked on."""
        return statistics.median(s.plain_us for s in self.samples) / 1e3

    @property
    def min_ms(self) -> float:
        return min(s.plain_us for s in self.samples) / 1e3

    @property
    def profiled_ms(self) -> float:
        """The median under ``-X importtime`` (its own cost included)."""
        return statistics.median(s.total_us for s in self.samples) / 1e3

    @property
    def setup_ms(self) -> float:
        return statistics.median(s.setup_us for s in self.samples) / 1e3

    @property
    def cpu_ms(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples) * 1e3

    @property
    def target_ms(self) -> float:
        return TARGET_MS[self.mode]

    @property
    def met(self) -> bool:
        return self.median_ms < self.target_ms

    def top(self, n: int = TOP) -> list[tuple[str, float, float]]:
        """The ``n`` imports with the largest median cumulative time: (name, cum ms, self ms)."""
        names = {name for s in self.samples for name in s.cumulative_us}
        rows = []
        for name in names:
            if name == f"lambda_flow.handlers.{self.module}":
                continue
            cum = statistics.median(s.cumulative_us.get(name, 0) for s in self.samples)
            own = statistics.median(s.self_us.get(name, 0) for s in self.samples)
            rows.append((name, cum / 1e3, own / 1e3))
        rows.sort(key=lambda row: -row[1])
        return rows[:n]

    def packages(self, n: int = 8) -> list[tuple[str, float]]:
        """Self time summed by top-level package (median over the samples, ms), largest first."""
        per_sample = []
        for s in self.samples:
            sums: dict[str, int] = {}
            for name, own in s.self_us.items():
                if name != f"lambda_flow.handlers.{self.module}":
                    sums[name.split(".")[0]] = sums.get(name.split(".")[0], 0) + own
            per_sample.append(sums)
        names = {name for sums in per_sample for name in sums}
        rows = [
            (name, statistics.median(sums.get(name, 0) for sums in per_sample) / 1e3)
            for name in names
        ]
        rows.sort(key=lambda row: -row[1])
        return rows[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "mode": self.mode,
            "samples": len(self.samples),
            "median_ms": round(self.median_ms, 1),
            "min_ms": round(self.min_ms, 1),
            "profiled_median_ms": round(self.profiled_ms, 1),
            "module_setup_ms": round(self.setup_ms, 1),
            "process_cpu_ms": round(self.cpu_ms, 1),
            "target_ms": self.target_ms,
            "met": self.met,
            "top_imports_ms": [
                {"module": name, "cumulative_ms": round(cum, 1), "self_ms": round(own, 1)}
                for name, cum, own in self.top()
            ],
            "self_ms_by_package": {name: round(ms, 1) for name, ms in self.packages()},
        }


def _loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def _embedded() -> str:
    """A private embedded server in a temporary folder (removed at exit): its URL."""
    import atexit
    import shutil

    from lambda_flow.store.embedded import embedded_database_url

    root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-cold-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return embedded_database_url(root / "pgdata")  # stops when this process exits


def measure(
    database_url: str, modules: list[str], samples: int, *, verbose: bool = True
) -> list[Figures]:
    """Figures per module and mode; modules and modes alternate within each round."""
    environments = function_environments(database_url)
    base = base_environment()
    envs: dict[tuple[str, str], dict[str, str]] = {}
    for module in modules:
        function_env = environments.get(module)
        if function_env is None:
            raise SystemExit(f"template.yaml has no function whose Handler is {module}.handler")
        env = {**base, **function_env}
        envs[module, "traced"] = {**env, "POWERTOOLS_TRACE_DISABLED": "false"}
        envs[module, "untraced"] = {**env, "POWERTOOLS_TRACE_DISABLED": "true"}
    figures = {key: Figures(key[0], key[1]) for key in envs}
    for (module, _mode), env in envs.items():  # compile, create the schema, warm the caches
        import_once(f"lambda_flow.handlers.{module}", env)
    for round_ in range(samples):
        for (module, mode), env in envs.items():
            figures[module, mode].samples.append(import_once(f"lambda_flow.handlers.{module}", env))
        if verbose:
            print(f"  round {round_ + 1}/{samples} done, load {_loadavg()}", flush=True)
    return list(figures.values())


def report(figures: list[Figures]) -> str:
    lines = [
        f"{'module':<16} {'mode':<9} {'median':>8} {'min':>8} {'profiled':>9} {'setup':>7} "
        f"{'cpu':>7} {'target':>8}  met",
    ]
    for f in figures:
        lines.append(
            f"{f.module:<16} {f.mode:<9} {f.median_ms:6.0f}ms {f.min_ms:6.0f}ms "
            f"{f.profiled_ms:7.0f}ms {f.setup_ms:5.0f}ms {f.cpu_ms:5.0f}ms "
            f"{f'< {f.target_ms:.0f}':>6}ms  {'yes' if f.met else 'MISSED'}"
        )
    lines.append(
        "median, min: the import timed without the profiler; profiled: the median under "
        "-X importtime (setup, cpu and the imports below come from that run)"
    )
    for f in figures:
        lines.append("")
        lines.append(f"top {TOP} imports of handlers.{f.module}, {f.mode} (cumulative / self ms):")
        for name, cum, own in f.top():
            lines.append(f"  {cum:7.1f} {own:7.1f}  {name}")
        packages = ", ".join(f"{name} {ms:.0f}" for name, ms in f.packages())
        lines.append(f"  self time by package (ms): {packages}")
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        help=f"fresh processes per module and mode (default {DEFAULT_SAMPLES})",
    )
    parser.add_argument(
        "--module",
        action="append",
        dest="modules",
        default=None,
        help="a handler module to measure (repeatable; default: every one)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres (default: a private embedded one in a temp folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )


def run(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise SystemExit("--samples must be >= 1")
    modules = args.modules or handler_modules()
    url = args.database_url or _embedded()
    where = "--database-url" if args.database_url else "embedded (private, temp folder)"
    load_before = _loadavg()
    print(f"lambda-flow bench: cold-start ({SUMMARY})")
    print(f"python      : {sys.version.split()[0]} ({sys.executable})")
    print(f"database    : {where}")
    print(f"machine     : {os.cpu_count()} CPUs, load average {load_before} (1, 5, 15 min)")
    print(f"date        : {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"samples     : {args.samples} fresh processes per module and mode")
    sys.stdout.flush()
    began = time.perf_counter()
    figures = measure(url, modules, args.samples)
    load_after = _loadavg()
    print()
    print(report(figures))
    print(
        f"\nmachine load: {load_before} before, {load_after} after; "
        f"{time.perf_counter() - began:.0f}s in all"
    )
    missed = [f for f in figures if not f.met]
    print(
        "targets     : "
        + ("all met" if not missed else ", ".join(f"{f.module} {f.mode} MISSED" for f in missed))
    )
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "cold-start",
                    "samples": args.samples,
                    "load_before": load_before,
                    "load_after": load_after,
                    "figures": [f.as_dict() for f in figures],
                }
            )
        )
    return 1 if args.check and missed else 0
