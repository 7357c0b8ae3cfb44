"""The console in a real browser: Debian's headless Chromium, driven by Selenium, against a real
``lambda-flow dev`` process running real runs (``tests/e2e/console/console_app.py``).

Every wait is an explicit wait on a DOM condition (the pages update themselves while runs are
running); nothing sleeps. The runs page and a run page are saved as ``docs/images/*.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_flow.console import count_run
from lambda_flow.core import StepAttempt
from tests import ROOT
from tests.e2e.console.console_app import XSS

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
IMAGES = ROOT / "docs" / "images"
APP = "tests.e2e.console.console_app:flow"
WAIT = 30.0

if CHROMIUM is None or CHROMEDRIVER is None:  # .ci/run installs both; CI must not skip
    if os.environ.get("CI"):
        pytest.fail("chromium and chromedriver are missing: .ci/run installs them", pytrace=False)
    pytest.skip(
        "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402 - only once the browser is known to be there
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _post(base: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the test built
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


@pytest.fixture(scope="module")
def dev(database_url: str) -> Iterator[str]:
    """A ``lambda-flow dev`` of the console app on a fresh schema; its base URL."""
    schema = "console_browser"
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable, "-m", "lambda_flow.cli", "--app", APP, "--database-url",
            database_url, "--schema", schema, "dev", "--port", "0", "--sweep-every", "1s",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    second = process.stdout.readline()
    try:
        assert "http://" in first, first
        base = "http://" + first.split("http://", 1)[1].split()[0]
        assert second.strip() == f"lambda-flow dev: console on {base}/console"
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        log.close()
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def runs(dev: str) -> dict[str, str]:
    """One run of each workflow, started through the API."""
    started = {}
    for name, body in (
        ("nightly", {}),
        ("approval", {"order": 17}),
        ("checkout", {"amount": 30}),
        ("hostile", {"note": XSS}),
        ("onboard_user", {"email": "ada@example.com"}),
    ):
        started[name] = _post(dev, f"/workflows/{name}/start", body)["run_id"]
    return started


def _wait(browser: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, WAIT)


def _run_status(browser: WebDriver, status: str) -> None:
    """Wait until the run page (refreshing itself) shows ``status``."""
    _wait(browser).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f"#run-status [data-status='{status}']")
        )
    )


def _confirm(browser: WebDriver, button: str) -> None:
    """Click an action's button, then confirm on the page that asks."""
    browser.find_element(By.CSS_SELECTOR, button).click()
    confirm = _wait(browser).until(
        expected_conditions.element_to_be_clickable((By.ID, "confirm-button"))
    )
    confirm.click()


def test_a_run_page_draws_each_step_with_its_status_live(
    browser: WebDriver, dev: str, runs: dict[str, str]
) -> None:
    browser.get(f"{dev}/console/runs/{runs['onboard_user']}")
    _run_status(browser, "completed")  # the page refreshes itself until the run ends

    rows = {
        row.get_attribute("data-step"): row
        for row in browser.find_elements(By.CSS_SELECTOR, "svg.timeline g.row")
    }
    assert list(rows) == [
        "Create profile", "Greet", "Wait before welcome email", "Send welcome email",
        "Provision workspace",
    ]  # fmt: skip
    assert {k: r.get_attribute("data-status") for k, r in rows.items()} == dict.fromkeys(
        rows, "succeeded"
    )
    email = rows["Send welcome email"]
    assert email.get_attribute("data-attempts") == "2"
    assert email.find_elements(By.CSS_SELECTOR, "rect.bar.status-failed")
    assert email.find_elements(By.CSS_SELECTOR, "rect.bar.retry")
    assert rows["Wait before welcome email"].find_elements(By.CSS_SELECTOR, "line.wait")
    assert (
        "mail server did not answer" in browser.find_element(By.CSS_SELECTOR, "table.history").text
    )
    assert "$" in browser.find_element(By.ID, "cost").text
    # The run's cost counts, derived from its history, are what dev's queues really carried:
    # the benchmark's onboarding shape (6 messages and invocations, 21 statements; the last
    # step chained by the worker of the one before it).
    with urllib.request.urlopen(f"{dev}/runs/{runs['onboard_user']}/history") as answer:  # noqa: S310
        history = [StepAttempt.model_validate(a) for a in json.load(answer)["history"]]
    counts = count_run(history)
    assert (counts.invocations, counts.sqs_sends, counts.sql_statements) == (6, 6, 21)
    assert (counts.chained_steps, counts.timers) == (1, 2)
    browser.set_window_size(1280, 1500)
    browser.save_screenshot(str(IMAGES / "console-run.png"))
    browser.set_window_size(1280, 900)


def test_the_runs_page_filters(browser: WebDriver, dev: str, runs: dict[str, str]) -> None:
    browser.get(f"{dev}/console")
    _wait(browser).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "tr[data-run-id]")) >= len(runs)
    )
    browser.save_screenshot(str(IMAGES / "console-runs.png"))

    Select(browser.find_element(By.NAME, "status")).select_by_value("suspended")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    _wait(browser).until(expected_conditions.url_contains("status=suspended"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-run-id]")
    assert [r.get_attribute("data-run-id") for r in rows] == [runs["approval"]]

    browser.get(f"{dev}/console")
    Select(browser.find_element(By.NAME, "workflow")).select_by_value("checkout")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    _wait(browser).until(expected_conditions.url_contains("workflow=checkout"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-run-id]")
    assert [r.get_attribute("data-run-id") for r in rows] == [runs["checkout"]]

    browser.get(f"{dev}/console")
    search = browser.find_element(By.NAME, "q")
    search.send_keys(runs["nightly"][:8])
    search.submit()
    _wait(browser).until(expected_conditions.url_contains("q="))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-run-id]")
    assert [r.get_attribute("data-run-id") for r in rows] == [runs["nightly"]]


def test_resume_cancel_and_callback_actions_change_the_runs(
    browser: WebDriver, dev: str, runs: dict[str, str]
) -> None:
    browser.get(f"{dev}/console/runs/{runs['approval']}")
    browser.find_element(By.ID, "resume-payload").send_keys('{"approved_by": "ops"}')
    _confirm(browser, "#resume-button")
    _run_status(browser, "completed")
    assert (
        "approved_by" in browser.find_element(By.ID, "data-title").find_element(By.XPATH, "..").text
    )

    browser.get(f"{dev}/console/runs/{runs['nightly']}")
    browser.find_element(By.ID, "cancel-reason").send_keys("not tonight")
    _confirm(browser, "#cancel-button")
    _run_status(browser, "cancelled")
    assert "not tonight" in browser.find_element(By.ID, "main").text

    browser.get(f"{dev}/console/runs/{runs['checkout']}")
    callback = browser.find_element(By.CSS_SELECTOR, "form.callback-form[data-callback-id]")
    callback.find_element(By.TAG_NAME, "textarea").send_keys('{"amount": 30}')
    _confirm(browser, "form.callback-form[data-callback-id] button.complete-callback")
    _run_status(browser, "completed")


def test_a_script_in_a_run_never_executes(
    browser: WebDriver, dev: str, runs: dict[str, str]
) -> None:
    browser.get(f"{dev}/console/runs/{runs['hostile']}")
    _run_status(browser, "completed")

    assert browser.execute_script("return typeof window.__xss") == "undefined"
    assert XSS in browser.find_element(By.CSS_SELECTOR, "table.history").text  # shown as text
    assert XSS in browser.find_element(By.ID, "data-title").find_element(By.XPATH, "..").text
    step = browser.find_element(By.CSS_SELECTOR, "svg.timeline g.row")
    assert step.get_attribute("data-step") == XSS
    browser.get(f"{dev}/console")
    assert browser.execute_script("return typeof window.__xss") == "undefined"
