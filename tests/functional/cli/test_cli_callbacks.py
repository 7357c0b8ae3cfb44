"""``lambda-flow callback succeed|fail|heartbeat``, ``resume --payload``, ``status``'s pending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lambda_flow import Flow, WorkflowContext
from tests.functional.cli.test_cli import Cli

pytest_plugins = ["tests.functional.cli.test_cli"]  # its `cli` fixture

app = Flow()
APP = f"{__name__}:app"


@app.workflow
async def pay(wf: WorkflowContext) -> Any:
    return await (await wf.callback("paid")).result()


@app.workflow
async def approval(wf: WorkflowContext) -> Any:
    return {"decision": await wf.suspend("approve")}


def _start(cli: Cli, workflow: str) -> tuple[str, dict[str, Any]]:
    code, out, _ = cli("start", workflow, app_spec=APP)
    assert code == 0, out
    run_id = out.split()[1]
    code, out, _ = cli("status", run_id, app_spec=APP)
    assert code == 0
    return run_id, json.loads(out)


def test_status_shows_the_pending_callback_and_succeed_completes_it(cli: Cli) -> None:
    run_id, run = _start(cli, "pay")
    [pending] = run["pending"]
    assert (pending["kind"], pending["name"]) == ("callback", "paid")
    callback_id = pending["callback_id"]
    code, _, err = cli("callback", "heartbeat", callback_id, app_spec=APP)
    assert code == 0, err
    code, out, err = cli("callback", "succeed", callback_id, "--payload", '{"ok": 1}', app_spec=APP)
    assert code == 0, err
    code, out, _ = cli("status", run_id, app_spec=APP)
    assert json.loads(out)["output"] == {"ok": 1}
    # again with the same payload: the same answer; another payload: exit 2, one line
    assert cli("callback", "succeed", callback_id, "--payload", '{"ok": 1}', app_spec=APP)[0] == 0
    code, _, err = cli("callback", "succeed", callback_id, "--payload", "2", app_spec=APP)
    assert code == 2
    assert err.count("\n") == 1
    assert "different payload" in err


def test_fail_with_an_error_and_a_payload_file(cli: Cli, tmp_path: Path) -> None:
    run_id, run = _start(cli, "pay")
    callback_id = run["pending"][0]["callback_id"]
    code, _, err = cli("callback", "fail", callback_id, "--error", "declined", app_spec=APP)
    assert code in (0, 1), err  # the run fails: CallbackFailed was not caught
    code, out, _ = cli("status", run_id, app_spec=APP)
    assert json.loads(out)["status"] == "failed"
    second, _ = _start(cli, "pay")
    code, out, _ = cli("status", second, app_spec=APP)
    payload = tmp_path / "payload.json"
    payload.write_text('{"from": "file"}')
    other = json.loads(out)["pending"][0]["callback_id"]
    code, _, err = cli("callback", "succeed", other, "--payload-file", str(payload), app_spec=APP)
    assert code == 0, err
    code, out, _ = cli("status", second, app_spec=APP)
    assert json.loads(out)["output"] == {"from": "file"}


def test_unknown_ids_and_bad_input_exit_2_with_one_line(cli: Cli) -> None:
    for args in (
        ("callback", "succeed", "nope"),
        ("callback", "fail", "nope", "--error", "x"),
        ("callback", "heartbeat", "nope"),
        ("callback", "succeed", "nope", "--payload", "{bad"),
        ("callback", "fail", "nope"),
    ):
        code, _, err = cli(*args, app_spec=APP)
        assert code == 2, args
        assert err.count("\n") == 1, err


def test_resume_with_a_payload(cli: Cli) -> None:
    run_id, run = _start(cli, "approval")
    assert run["pending"][0]["kind"] == "suspend"
    code, _, err = cli("resume", run_id, "--payload", '{"approved": true}', app_spec=APP)
    assert code == 0, err
    code, out, _ = cli("status", run_id, app_spec=APP)
    assert json.loads(out)["output"] == {"decision": {"approved": True}}


def test_callback_ids_never_read_as_an_option(cli: Cli, monkeypatch: Any) -> None:
    # a bare url-safe token starts with "-" one time in 64: argparse read such an id as an option
    import secrets

    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: "-" + "A" * (4 * n // 3 - 1))
    run_id, run = _start(cli, "pay")
    callback_id = run["pending"][0]["callback_id"]
    assert not callback_id.startswith("-")
    code, _, err = cli("callback", "succeed", callback_id, "--payload", "1", app_spec=APP)
    assert code == 0, err
    code, out, _ = cli("status", run_id, app_spec=APP)
    assert json.loads(out)["output"] == 1


def test_an_id_that_starts_with_a_dash_goes_after_a_double_dash(cli: Cli) -> None:
    code, _, err = cli("callback", "heartbeat", "--", "-stored-by-an-older-version", app_spec=APP)
    assert code == 2
    assert "usage" not in err, err
    assert "-stored-by-an-older-version" in err, err
