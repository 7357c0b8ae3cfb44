"""The ``lambda-flow`` command, run in-process against a real Postgres."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel, Field

from lambda_flow import Flow, PostgresStore, RunStatus, WorkflowContext
from lambda_flow.cli import main
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows

# The app the CLI loads with --app: this very module, already imported by pytest.
APP = f"{__name__}:app"

app = Flow()
not_a_flow = {"just": "a dict"}


class Order(BaseModel):
    order_id: str
    amount: int = Field(gt=0)


@app.workflow
async def double(wf: WorkflowContext, data: dict[str, int]) -> int:
    return int(await wf.do("Double", lambda: data["x"] * 2))


@app.workflow
async def approve_order(wf: WorkflowContext, data: Order) -> dict[str, Any]:
    reserved = await wf.do("Reserve stock", lambda: f"reserved {data.order_id}")
    await wf.suspend("Needs approval")
    return {"approved": data.order_id, "note": reserved}


@app.workflow
async def always_fails(wf: WorkflowContext) -> None:
    def boom() -> None:
        raise RuntimeError("kaput")

    await wf.do("Boom", boom)


@app.workflow
async def nap(wf: WorkflowContext, data: dict[str, str]) -> str:
    await wf.do("Before", lambda: "awake")
    await wf.sleep("Nap", data.get("for", "1h"))
    return str(await wf.do("After", lambda: "done"))


@app.workflow
async def echo(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    return data


CliResult = tuple[int, str, str]
Cli = Callable[..., CliResult]


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAMBDA_FLOW_APP", "LAMBDA_FLOW_DATABASE_URL", "LAMBDA_FLOW_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(
    database_url: str,
    schema: str,
    store: PostgresStore,
    capsys: pytest.CaptureFixture[str],
    clock: TimeSkippingClock,
) -> Cli:
    """Run ``lambda-flow --database-url ... --schema ... ARGS``; return (code, stdout, stderr).

    The ``store`` fixture has already created the schema, so tests can count rows. Every call
    shares the test's time-skipping clock, so sleeps and retry delays cost nothing.
    """

    def run(*args: str, app_spec: str | None = APP) -> CliResult:
        argv = ["--database-url", database_url, "--schema", schema]
        if app_spec is not None:
            argv += ["--app", app_spec]
        capsys.readouterr()
        clock.advance("1s")  # time passes between commands, so runs have distinct times
        code = main([*argv, *args], clock=clock)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _field(out: str, name: str) -> str:
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name!r} line in:\n{out}")


def _start(cli: Cli, workflow: str, data: Any) -> str:
    code, out, err = cli("start", workflow, "--input", json.dumps(data))
    assert code == 0, err
    return _field(out, "run_id")


def _columns_aligned(table: str) -> None:
    """Every column starts at the same offset on every line (columns are 2+ spaces apart)."""
    header, *rows = table.splitlines()
    starts = [i for i in range(2, len(header)) if header[i] != " " and header[i - 2 : i] == "  "]
    assert starts
    for row in rows:
        for start in starts:
            if start < len(row):  # a row may end early when its last cell is empty
                assert row[start - 1] == " ", (start, row)
                assert row[start] != " ", (start, row)


# -- happy paths ----------------------------------------------------------------------------
def test_start_prints_run_id_and_final_status(cli: Cli, db: psycopg.Connection[Any]) -> None:
    code, out, err = cli("start", "double", "--input", '{"x": 21}')

    assert (code, err) == (0, "")
    run_id = _field(out, "run_id")
    assert uuid.UUID(run_id)
    assert _field(out, "status") == "completed"
    assert json.loads(_field(out, "output")) == 42
    row = db.execute("SELECT status, output FROM runs WHERE id = %s", [run_id]).fetchone()
    assert row == ("completed", 42)


def test_start_a_run_that_suspends(cli: Cli) -> None:
    code, out, _ = cli("start", "approve_order", "--input", '{"order_id": "o-1", "amount": 3}')

    assert code == 0
    assert _field(out, "status") == "suspended"


def test_start_a_run_that_fails_exits_1(cli: Cli) -> None:
    code, out, err = cli("start", "always_fails")

    assert code == 1
    assert err == ""
    assert _field(out, "status") == "failed"
    assert "RuntimeError: kaput" in _field(out, "error")


def test_history_shows_a_failed_attempts_traceback_on_request(cli: Cli) -> None:
    _, out, _ = cli("start", "always_fails")
    run_id = _field(out, "run_id")

    _, table, _ = cli("history", run_id)
    _, verbose, _ = cli("history", run_id, "--traceback")

    assert "Traceback" not in table
    assert "RuntimeError: kaput" in table
    lines = verbose.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("Boom"))
    assert lines[failed + 1].startswith("    Traceback (most recent call last):")
    assert any('raise RuntimeError("kaput")' in line for line in lines[failed + 1 :])


def test_start_with_idempotency_key_starts_one_run(cli: Cli, db: psycopg.Connection[Any]) -> None:
    args = ("start", "double", "--input", '{"x": 1}', "--idempotency-key", "k-1")
    first = cli(*args)
    second = cli(*args)

    assert first[0] == second[0] == 0
    assert _field(first[1], "run_id") == _field(second[1], "run_id")
    assert count_rows(db, "runs") == 1


def test_status_prints_the_run_as_json(cli: Cli) -> None:
    run_id = _start(cli, "double", {"x": 2})

    code, out, err = cli("status", run_id)

    assert (code, err) == (0, "")
    run = json.loads(out)
    assert run["id"] == run_id
    assert run["workflow"] == "double"
    assert run["status"] == "completed"
    assert run["input"] == {"x": 2}
    assert run["output"] == 4


def test_status_works_without_an_app(cli: Cli) -> None:
    run_id = _start(cli, "double", {"x": 2})

    code, out, _ = cli("status", run_id, app_spec=None)

    assert code == 0
    assert json.loads(out)["status"] == "completed"


def test_history_prints_an_aligned_table(cli: Cli) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-7", "amount": 1})

    code, out, err = cli("history", run_id)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["STEP", "KIND", "STATUS", "ATTEMPT", "DURATION", "ERROR"]
    assert lines[1].split()[:5] == ["Reserve", "stock", "inline", "succeeded", "1"]
    assert lines[2].split()[:5] == ["Needs", "approval", "suspend", "pending", "1"]
    _columns_aligned(out)


def test_history_json(cli: Cli) -> None:
    run_id = _start(cli, "double", {"x": 5})

    code, out, _ = cli("history", run_id, "--json")

    assert code == 0
    (attempt,) = json.loads(out)
    assert attempt["step_name"] == "Double"
    assert attempt["status"] == "succeeded"
    assert attempt["attempt"] == 1
    assert attempt["result"] == 10
    assert attempt["duration_ms"] == 0  # the test clock does not move while a step runs


def test_runs_lists_newest_first_with_filters(cli: Cli) -> None:
    first = _start(cli, "double", {"x": 1})
    second = _start(cli, "approve_order", {"order_id": "o-2", "amount": 2})
    third = _start(cli, "double", {"x": 3})

    code, out, err = cli("runs")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "WORKFLOW"]
    assert [line.split()[0] for line in lines[1:]] == [third, second, first]
    _columns_aligned(out)

    _, out, _ = cli("runs", "--workflow", "double")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [third, first]

    _, out, _ = cli("runs", "--status", "suspended")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [second]

    _, out, _ = cli("runs", "--limit", "1")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [third]

    _, out, _ = cli("runs", "--status", "completed", "--json")
    assert [r["id"] for r in json.loads(out)] == [third, first]


def test_runs_searches_ids_and_keys_and_bounds_the_age(
    cli: Cli, db: psycopg.Connection[Any]
) -> None:
    old = _start(cli, "double", {"x": 1})
    args = ("start", "double", "--input", '{"x": 2}', "--idempotency-key", "nightly-42")
    code, out, err = cli(*args)
    assert code == 0, err
    keyed = _field(out, "run_id")
    db.execute("UPDATE runs SET created_at = created_at - interval '2 hours' WHERE id = %s", [old])

    _, out, _ = cli("runs", "--search", "nightly-")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [keyed]
    _, out, _ = cli("runs", "--search", old[:8])
    assert [line.split()[0] for line in out.splitlines()[1:]] == [old]
    _, out, _ = cli("runs", "--since", "1h")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [keyed]
    for bad in (("--since", "soon"), ("--since", "0s"), ("--search", "x" * 201)):
        code, _, err = cli("runs", *bad)
        assert code == 2
        assert err.count("\n") == 1, err


def test_runs_when_there_are_none(cli: Cli) -> None:
    code, out, _ = cli("runs", app_spec=None)

    assert code == 0
    assert out.strip() == "no runs"


def test_resume_drives_a_suspended_run_to_the_end(cli: Cli) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-3", "amount": 1})

    code, out, err = cli("resume", run_id)

    assert (code, err) == (0, "")
    assert _field(out, "run_id") == run_id
    assert _field(out, "status") == "completed"
    assert json.loads(_field(out, "output")) == {"approved": "o-3", "note": "reserved o-3"}


def test_cancel_with_a_reason(cli: Cli) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-4", "amount": 1})

    code, out, err = cli("cancel", run_id, "--reason", "customer changed their mind")

    assert (code, err) == (0, "")
    assert _field(out, "status") == "cancelled"
    _, status, _ = cli("status", run_id)
    run = json.loads(status)
    assert run["status"] == "cancelled"
    assert run["error"]["message"] == "customer changed their mind"


def test_cancel_with_a_cleanup_timeout_and_a_bad_one(cli: Cli) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-5", "amount": 1})

    code, out, err = cli("cancel", run_id, "--cleanup-timeout=-1s")
    assert (code, out) == (2, "")
    assert "cleanup_timeout" in err

    code, out, err = cli("cancel", run_id, "--reason", "late", "--cleanup-timeout", "10min")
    assert (code, err) == (0, "")
    assert _field(out, "status") == "cancelled"


def test_start_with_a_run_timeout(cli: Cli) -> None:
    data = json.dumps({"order_id": "o-6", "amount": 1})
    code, out, err = cli("start", "approve_order", "--input", data, "--run-timeout=-2h")
    assert (code, out) == (2, "")
    assert "run_timeout" in err

    code, out, err = cli("start", "approve_order", "--input", data, "--run-timeout", "2h")
    assert (code, err) == (0, "")
    assert _field(out, "status") == "suspended"  # waits for approval, bounded by its deadline


def test_global_options_may_follow_the_command(
    database_url: str, schema: str, store: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["start", "double", "--input", '{"x": 4}', "--app", APP]
    code = main([*argv, "--database-url", database_url, "--schema", schema])

    out, _ = capsys.readouterr()
    assert code == 0
    assert _field(out, "status") == "completed"


def test_app_and_schema_from_the_environment(
    database_url: str,
    schema: str,
    db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LAMBDA_FLOW_APP", APP)
    monkeypatch.setenv("LAMBDA_FLOW_SCHEMA", schema)
    monkeypatch.setenv("LAMBDA_FLOW_DATABASE_URL", database_url)

    code = main(["start", "double", "--input", '{"x": 4}'])

    out, _ = capsys.readouterr()
    assert code == 0
    assert _field(out, "status") == "completed"
    assert count_rows(db, "runs") == 1


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out, _ = capsys.readouterr()
    for command in (
        "demo", "start", "run", "watch", "status", "history", "runs", "resume", "cancel", "db",
    ):  # fmt: skip
        assert command in out


# -- errors: one line on stderr, exit 2, nothing written -------------------------------------
UNKNOWN_RUN = str(uuid.UUID(int=7))

ERRORS = {
    "input is not JSON": (
        ("start", "double", "--input", "{x: 1"),
        APP,
        "error: --input is not valid JSON: Expecting property name enclosed in double quotes"
        " at line 1 column 2",
    ),
    "input is empty": (
        ("start", "double", "--input", ""),
        APP,
        "error: --input is not valid JSON: Expecting value at line 1 column 1",
    ),
    "unknown workflow": (
        ("start", "nope", "--input", "{}"),
        APP,
        "error: unknown workflow 'nope'",
    ),
    "input fails validation": (
        ("start", "approve_order", "--input", '{"order_id": "o", "amount": 0}'),
        APP,
        "error: invalid input for workflow 'approve_order': amount: Input should be greater than 0",
    ),
    "no input for a workflow that requires one": (
        ("start", "approve_order"),
        APP,
        "error: workflow 'approve_order' needs an input: missing required fields order_id, "
        "amount (give --input JSON, --input - (stdin) or --input-file PATH)",
    ),
    "no input for run": (
        ("run", "approve_order"),
        APP,
        "error: workflow 'approve_order' needs an input: missing required fields order_id",
    ),
    "input file missing": (
        ("start", "double", "--input-file", "/no/such/input.json"),
        APP,
        "error: cannot read input file '/no/such/input.json': No such file or directory",
    ),
    "input and input file": (
        ("start", "double", "--input", "{}", "--input-file", "x.json"),
        APP,
        "error: argument --input-file: not allowed with argument --input",
    ),
    "input is missing a field": (
        ("start", "approve_order", "--input", '{"amount": 1}'),
        APP,
        "error: invalid input for workflow 'approve_order': order_id: Field required",
    ),
    "no app": (
        ("start", "double", "--input", "{}"),
        None,
        "error: no app given: pass --app module:attribute or set LAMBDA_FLOW_APP",
    ),
    "app without a colon": (
        ("start", "double"),
        "tests.functional.cli.test_cli",
        "error: --app must look like 'module:attribute', got 'tests.functional.cli.test_cli'",
    ),
    "app module missing": (
        ("start", "double"),
        "no_such_module_here:app",
        "error: cannot import app module 'no_such_module_here': No module named "
        "'no_such_module_here'",
    ),
    "app attribute missing": (
        ("start", "double"),
        f"{__name__}:nope",
        f"error: app module '{__name__}' has no attribute 'nope'",
    ),
    "app is not a Flow": (
        ("start", "double"),
        f"{__name__}:not_a_flow",
        f"error: --app '{__name__}:not_a_flow' is a dict, not a lambda_flow.Flow",
    ),
    "bad app on a read": (
        ("runs",),
        "no_such_module_here:app",
        "error: cannot import app module 'no_such_module_here'",
    ),
    "unknown status": (
        ("runs", "--status", "done"),
        APP,
        "error: argument --status: unknown status 'done'; expected one of running, suspended,"
        " completed, failed, cancelled",
    ),
    "limit out of range": (
        ("runs", "--limit", "0"),
        APP,
        "error: argument --limit: must be a whole number from 1 to 1000, got '0'",
    ),
    "unknown command": (("frobnicate",), APP, "error: argument COMMAND: invalid choice"),
    "missing workflow": (("start",), APP, "error: the following arguments are required"),
    "status of an unknown run": (
        ("status", UNKNOWN_RUN),
        APP,
        f"error: unknown run '{UNKNOWN_RUN}'",
    ),
    "status of a malformed id": (("status", "not-a-uuid"), APP, "error: unknown run 'not-a-uuid'"),
    "history of an unknown run": (
        ("history", UNKNOWN_RUN),
        APP,
        f"error: unknown run '{UNKNOWN_RUN}'",
    ),
    "resume an unknown run": (("resume", UNKNOWN_RUN), APP, f"error: unknown run '{UNKNOWN_RUN}'"),
    "cancel an unknown run": (("cancel", "not-a-uuid"), APP, "error: unknown run 'not-a-uuid'"),
    "demo with a bad delay": (
        ("demo", "--welcome-delay", "soon"),
        None,
        "error: invalid input for workflow 'onboard_user': welcome_delay: Value error, "
        "invalid duration 'soon'",
    ),
}


@pytest.mark.parametrize(("args", "app_spec", "message"), ERRORS.values(), ids=ERRORS.keys())
def test_errors_print_one_line_exit_2_and_write_nothing(
    cli: Cli, db: psycopg.Connection[Any], args: tuple[str, ...], app_spec: str, message: str
) -> None:
    code, out, err = cli(*args, app_spec=app_spec)

    assert code == 2
    assert out == ""
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert err.startswith(message), err
    assert count_rows(db, "runs") == 0
    assert count_rows(db, "steps") == 0


def _snapshot(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, status, output, error, version, updated_at FROM runs ORDER BY id"
    ).fetchall()


@pytest.mark.parametrize("command", ["resume", "cancel"])
def test_resume_or_cancel_a_finished_run(
    cli: Cli, db: psycopg.Connection[Any], command: str
) -> None:
    run_id = _start(cli, "double", {"x": 1})
    before = (_snapshot(db), count_rows(db, "step_attempts"))

    code, out, err = cli(command, run_id)

    assert code == 2
    assert out == ""
    assert err == f"error: cannot {command} run {run_id}: it is completed\n"
    assert (_snapshot(db), count_rows(db, "step_attempts")) == before


def test_resume_refuses_an_app_without_the_runs_workflow(
    cli: Cli, db: psycopg.Connection[Any]
) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-5", "amount": 1})
    before = _snapshot(db)

    code, _, err = cli("resume", run_id, app_spec="examples.onboarding:flow")

    assert code == 2
    assert err == (
        f"error: run {run_id} is a run of workflow 'approve_order', which the app does not define\n"
    )
    assert _snapshot(db) == before
    assert before[0][1] == RunStatus.SUSPENDED.value


def test_resume_needs_an_app(cli: Cli, db: psycopg.Connection[Any]) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-6", "amount": 1})
    before = _snapshot(db)

    code, _, err = cli("resume", run_id, app_spec=None)

    assert code == 2
    assert err.startswith("error: no app given")
    assert _snapshot(db) == before


# -- where work runs: printed id first, --no-wait, --follow, run, watch (issue 11, item 5/6) ---
def test_start_prints_the_run_id_before_anything_else(cli: Cli) -> None:
    code, out, _ = cli("start", "nap", "--input", '{"for": "5s"}')

    assert code == 0
    assert out.splitlines()[0].startswith("run_id  ")
    assert _field(out, "status") == "completed"
    assert out.count("run_id") == 1


def test_no_wait_stores_the_run_and_resume_drives_it(cli: Cli, db: psycopg.Connection[Any]) -> None:
    code, out, err = cli("start", "double", "--input", '{"x": 4}', "--no-wait")

    assert (code, err) == (0, "")
    run_id = _field(out, "run_id")
    assert _field(out, "status") == "running"
    assert f"lambda-flow resume {run_id}" in out
    assert count_rows(db, "step_attempts") == 0  # stored, not driven

    code, out, _ = cli("resume", run_id)
    assert code == 0
    assert _field(out, "status") == "completed"
    assert json.loads(_field(out, "output")) == 8


def test_follow_shows_each_attempt_and_the_sleeps_wake_time(
    cli: Cli, clock: TimeSkippingClock
) -> None:
    code, out, err = cli("start", "nap", "--input", '{"for": "1h"}', "--follow")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("run_id  ")
    steps = [line.split()[:2] for line in lines[1:5]]
    assert steps == [
        ["succeeded", "Before"],
        ["sleeping", "Nap"],
        ["succeeded", "Nap"],
        ["succeeded", "After"],
    ]
    assert "until 2026-01-01 01:00:01 UTC" in lines[2]  # started at 00:00:01, sleeps 1h
    assert "\r" not in out  # no spinner: stdout is not a terminal
    assert _field(out, "status") == "completed"


def test_follow_exits_1_when_the_run_fails(cli: Cli) -> None:
    code, out, _ = cli("start", "always_fails", "--follow")

    assert code == 1
    assert "failed     Boom  inline #1" in out
    assert "RuntimeError: kaput" in out
    assert _field(out, "status") == "failed"


def test_run_prints_only_the_output(cli: Cli) -> None:
    code, out, err = cli("run", "double", "--input", '{"x": 21}')

    assert (code, err) == (0, "")
    assert json.loads(out) == 42


def test_run_of_a_run_that_ends_without_output(cli: Cli) -> None:
    code, out, err = cli("run", "always_fails")
    assert (code, out) == (1, "")
    assert "status  failed" in err

    code, out, err = cli("run", "approve_order", "--input", '{"order_id": "o", "amount": 1}')
    assert (code, out) == (1, "")
    assert "status  suspended" in err
    assert "lambda-flow resume" in err


def test_run_follow_shows_progress_on_stderr(cli: Cli) -> None:
    code, out, err = cli("run", "nap", "--input", "{}", "--follow")

    assert code == 0
    assert json.loads(out) == "done"
    assert "succeeded  After  inline #1" in err


def test_input_from_a_file_and_from_stdin(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"x": 5}')
    code, out, _ = cli("run", "double", "--input-file", str(path))
    assert (code, json.loads(out)) == (0, 10)

    monkeypatch.setattr("sys.stdin", io.StringIO('{"x": 6}'))
    code, out, _ = cli("run", "double", "--input", "-")
    assert (code, json.loads(out)) == (0, 12)

    monkeypatch.setattr("sys.stdin", io.StringIO('{"x": 7'))
    code, out, err = cli("start", "double", "--input-file", "-")
    assert (code, out) == (2, "")
    assert err.startswith("error: the input on stdin is not valid JSON")


def test_an_object_input_without_required_fields_defaults_to_empty(cli: Cli) -> None:
    code, out, _ = cli("run", "nap")  # dict[str, str]: no field is required

    assert (code, json.loads(out)) == (0, "done")


def test_watch_prints_the_history_and_exits_with_the_outcome(cli: Cli) -> None:
    done = _start(cli, "double", {"x": 1})
    code, out, _ = cli("watch", done, app_spec=None)
    assert code == 0
    assert out.splitlines()[:2] == [f"run_id  {done}", "succeeded  Double  inline #1  0ms"]
    assert _field(out, "status") == "completed"

    _, started, _ = cli("start", "always_fails")
    code, out, _ = cli("watch", _field(started, "run_id"), app_spec=None)
    assert code == 1
    assert _field(out, "status") == "failed"

    code, out, _ = cli("watch", UNKNOWN_RUN, app_spec=None)
    assert (code, out) == (2, "")


def test_watch_a_suspended_run_says_how_to_resume_it(cli: Cli) -> None:
    run_id = _start(cli, "approve_order", {"order_id": "o-9", "amount": 1})

    code, out, _ = cli("watch", run_id, app_spec=None)

    assert code == 0
    assert f"suspended  Needs approval  (lambda-flow resume {run_id})" in out
    assert _field(out, "status") == "suspended"
