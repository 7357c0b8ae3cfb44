"""Offline checks of the SAM application (template.yaml) and the database stack (infra/).

Nothing here needs Docker or an AWS account; ``sam build`` needs PyPI (it fetches wheels).

- ``sam validate --lint``, aws-sam-translator, cfn-lint and ``sam build`` run from the SAM CLI's
  own virtualenv (``.venv-sam``: ``make sam-venv``, which ``make test`` runs first). The SAM CLI
  and aws-sam-translator pin boto3 and pydantic, so they stay out of the project's venv. Without
  that venv, these checks and the ones reading the translated template skip, saying so.
- What the template promises is checked on the translated template, the plain CloudFormation that
  gets deployed, resolved for chosen parameters (:class:`~tests.deploy.template.stack.Deployment`):
  the settings the code requires, visibility timeouts against function timeouts, redrive against
  ``LAMBDA_FLOW_MAX_RECEIVES``, partial batch failures, who may send where, who may create
  schedules, and what the scheduler's role may do.
- Every function's handler is imported and invoked the way Lambda runs it: from the ``sam build``
  artifact, with only the environment the template gives that function, against the test
  Postgres (read from a Secrets Manager secret) and SQS, Scheduler and Secrets Manager in a moto
  server, one fresh interpreter per function.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lambda_flow import WorkflowService
from lambda_flow.aws import config as aws_config
from lambda_flow.aws.api import build_api
from lambda_flow.aws.config import AwsSettings, trigger_workflow
from lambda_flow.aws.observability import NAMESPACE
from lambda_flow.core import _config as core_config
from lambda_flow.store.postgres import PostgresStore
from tests import ROOT
from tests.deploy.template.stack import ACCOUNT, REGION, STACK, Deployment, load_template

HERE = Path(__file__).resolve().parent
TEMPLATE = ROOT / "template.yaml"
DATABASE_STACK = ROOT / "infra" / "database.yaml"
EVENTS = ROOT / "events"
SAM_VENV = Path(os.environ.get("LAMBDA_FLOW_SAM_VENV") or ROOT / ".venv-sam")
SAM_TIMEOUT = 900  # seconds; a cold `sam build` downloads ~40 MB of wheels

SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:lambda-flow-db-AbCdEf"
PARAMETERS = {
    "DatabaseSecretArn": SECRET_ARN,
    # The optional trigger functions exist only when they name a workflow: name one.
    "QueueStartWorkflow": "onboard_user",
    "ScheduleStartWorkflow": "onboard_user",
}

FUNCTIONS = ("Api", "Orchestrator", "StepWorker", "Sweeper", "QueueStart", "ScheduleStart")
SAMPLE_EVENTS = {
    "Api": "api_start.json",
    "Orchestrator": "sqs_orchestrator.json",
    "StepWorker": "sqs_step.json",
    "Sweeper": "sweeper.json",
    "QueueStart": "sqs_queue_start.json",
    "ScheduleStart": "schedule_start.json",
}
"""The event each function is tried with (``sam local invoke -e events/<file> <Function>``)."""

# What each function sends, read off the code: every start or resume queues an orchestration
# pass; passes (the orchestrator's, and the step worker's when it continues one) queue RPC steps
# and long wake-ups; the sweeper re-drives both kinds of message.
SENDS_TO = {
    "Api": {"OrchestratorQueue"},
    "Orchestrator": {"OrchestratorQueue", "StepQueue"},
    "StepWorker": {"OrchestratorQueue", "StepQueue"},
    "Sweeper": {"OrchestratorQueue", "StepQueue"},
    "QueueStart": {"OrchestratorQueue"},
    "ScheduleStart": {"OrchestratorQueue"},
}
SCHEDULES_WAKEUPS = {"Orchestrator", "StepWorker"}
"""The functions that run orchestration passes, which create schedules for long sleeps."""
STARTS_WORKFLOWS = {"QueueStart", "ScheduleStart"}
"""Trigger functions: they read LAMBDA_FLOW_TRIGGER_WORKFLOW."""
CLOUD_WARNINGS_ALLOWED = {"W3037"}
"""cfn-lint warnings tolerated on the translated template: W3037 flags the batch actions SAM's
own SQSPollerPolicy template lists (sqs:DeleteMessageBatch...), which are not IAM actions (the
single-message actions authorize the batch calls)."""

AWS_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# -- the SAM CLI's venv ---------------------------------------------------------------------------
def _sam_tool(name: str) -> Path:
    """A program of the SAM CLI's venv, or a skip saying how to get it."""
    path = SAM_VENV / "bin" / name
    if not path.exists():
        pytest.skip(f"{path} is missing: run `make sam-venv` (make test does) for the SAM checks")
    return path


def _sam_env() -> dict[str, str]:
    """The environment the SAM tools run in: fake credentials, a region, no telemetry (and the
    pip settings, for the wheels `sam build` fetches)."""
    keep = (
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_CONFIG_FILE",
    )
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return env | AWS_FAKE_ENV | {"SAM_CLI_TELEMETRY": "0"}


def _run(args: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own tools, argument lists
        [str(arg) for arg in args], capture_output=True, text=True, check=False, **kwargs
    )


@cache
def _translated(parameters_json: str) -> dict[str, Any]:
    result = _run(
        [_sam_tool("python"), HERE / "_translate.py", TEMPLATE, parameters_json],
        env=_sam_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    """template.yaml after SAM's transform (aws-sam-translator): what CloudFormation deploys."""
    return _translated(json.dumps(PARAMETERS, sort_keys=True))


@pytest.fixture(scope="module")
def deployment(cfn: dict[str, Any]) -> Deployment:
    """The translated template resolved with :data:`PARAMETERS` (made-up physical resources)."""
    return Deployment(cfn, dict(PARAMETERS))


def _function(deployment: Deployment, name: str) -> dict[str, Any]:
    return deployment.properties(name)


def _env(deployment: Deployment, name: str) -> dict[str, str]:
    return dict(_function(deployment, name).get("Environment", {}).get("Variables", {}))


def _sqs_sources(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """``{function: event source mapping}`` for every SQS consumer."""
    sources = {}
    for logical_id in deployment.resources("AWS::Lambda::EventSourceMapping"):
        raw = deployment.template["Resources"][logical_id]["Properties"]
        mapping = deployment.properties(logical_id)
        if ":sqs:" in mapping["EventSourceArn"]:
            function = raw["FunctionName"]["Ref"]
            mapping["Queue"] = raw["EventSourceArn"]["Fn::GetAtt"][0]
            sources[function] = mapping
    return sources


def _role(deployment: Deployment, function: str) -> dict[str, Any]:
    """The function's execution role, resolved."""
    arn = _function(deployment, function)["Role"]
    [role_id] = [
        logical_id
        for logical_id in deployment.resources("AWS::IAM::Role")
        if deployment.attribute(logical_id, "Arn") == arn
    ]
    return deployment.properties(role_id)


def _statements(deployment: Deployment, function: str) -> list[dict[str, Any]]:
    """Every inline policy statement of the function's role, resolved."""
    return [
        statement
        for policy in _role(deployment, function).get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether one Allow statement grants ``action`` on ``resource`` (IAM wildcards honoured)."""
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = [re.escape(a).replace(r"\*", ".*") for a in _as_list(statement["Action"])]
        resources = [re.escape(r).replace(r"\*", ".*") for r in _as_list(statement["Resource"])]
        if any(re.fullmatch(a, action, re.IGNORECASE) for a in actions) and any(
            re.fullmatch(r, resource) for r in resources
        ):
            return True
    return False


# -- the SAM CLI and cfn-lint ----------------------------------------------------------------------
@pytest.mark.parametrize("template", [TEMPLATE, DATABASE_STACK], ids=["app", "database"])
def test_sam_validate_lint_passes(template: Path) -> None:
    result = _run(
        [_sam_tool("sam"), "validate", "--lint", "--template-file", template],
        cwd=ROOT,
        env=_sam_env(),
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _cfn_lint(path: Path) -> list[dict[str, Any]]:
    result = _run(
        [_sam_tool("cfn-lint"), "--format", "json", "--regions", REGION, "--", path],
        env=_sam_env(),
        timeout=300,
    )
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr[-4000:]  # bit flags
    return list(json.loads(result.stdout or "[]"))


def test_the_translated_template_passes_cfn_lint(cfn: dict[str, Any], tmp_path: Path) -> None:
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(cfn), encoding="utf-8")

    matches = _cfn_lint(translated)

    errors = [m for m in matches if m["Level"] == "Error"]
    assert errors == []
    warnings = {m["Rule"]["Id"] for m in matches if m["Level"] == "Warning"}
    assert warnings <= CLOUD_WARNINGS_ALLOWED, [m for m in matches if m["Level"] == "Warning"]


def test_the_database_stack_passes_cfn_lint() -> None:
    assert _cfn_lint(DATABASE_STACK) == []


# -- what the functions are given ----------------------------------------------------------------
def test_the_template_defines_every_function_with_its_handler(deployment: Deployment) -> None:
    functions = deployment.resources("AWS::Lambda::Function")

    assert set(functions) == set(FUNCTIONS)
    for name in FUNCTIONS:
        module = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # StepWorker -> step_worker
        handler = f"lambda_flow/handlers/{module}.handler"  # shipped inside the package
        assert _function(deployment, name)["Handler"] == handler
        assert (ROOT / "lambda_flow" / "handlers" / f"{module}.py").is_file()


def _known_settings() -> set[str]:
    """Every LAMBDA_FLOW_* variable the code reads (the ENV_* constants)."""
    return {
        value
        for module in (aws_config, core_config)
        for name, value in vars(module).items()
        if name.startswith("ENV_") and isinstance(value, str)
    }


def test_every_function_gets_each_setting_the_code_requires(deployment: Deployment) -> None:
    sources = _sqs_sources(deployment)
    for name in FUNCTIONS:
        env = _env(deployment, name)

        # As at cold start: AwsSettings.load checks presence, pairs and formats. Every function
        # runs in remote mode (both queues), even the API, which only queues runs.
        settings = AwsSettings.load(env, require_queues=True)
        assert settings.database_secret_arn == SECRET_ARN, name
        assert settings.app == PARAMETERS.get("AppModule", "examples.onboarding:flow")
        assert settings.allow_anonymous is False, f"{name} must not serve anonymous callers"
        assert not {k for k in env if k.startswith("LAMBDA_FLOW_")} - _known_settings(), name
        if name in SCHEDULES_WAKEUPS:
            assert settings.schedule_group, name
            assert settings.scheduler_role_arn, name
        else:
            assert aws_config.ENV_SCHEDULE_GROUP not in env, f"{name} does not schedule wake-ups"
        if name in STARTS_WORKFLOWS:
            assert trigger_workflow(env) == "onboard_user"
        if name in sources:  # the DLQ bookkeeping counts receives against the redrive policy
            assert aws_config.ENV_MAX_RECEIVES in env, name
        if name == "StepWorker":  # a live worker never loses its claim on a step
            assert settings.step_timeout_seconds >= _function(deployment, name)["Timeout"]


def test_every_function_has_powertools_settings_and_tracing(deployment: Deployment) -> None:
    services = set()
    for name in FUNCTIONS:
        env = _env(deployment, name)
        function = _function(deployment, name)

        assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert env["POWERTOOLS_SERVICE_NAME"].startswith("lambda-flow-")
        services.add(env["POWERTOOLS_SERVICE_NAME"])
        assert function["TracingConfig"] == {"Mode": "Active"}
    assert len(services) == len(FUNCTIONS)  # one service name per function


def test_optional_parts_follow_their_parameters(cfn: dict[str, Any]) -> None:
    plain = Deployment(cfn, {"DatabaseSecretArn": SECRET_ARN})
    in_vpc = Deployment(
        cfn,
        PARAMETERS | {"VpcSubnetIds": "subnet-0a,subnet-0b", "VpcSecurityGroupIds": "sg-0c"},
    )

    assert set(plain.resources("AWS::Lambda::Function")) == set(FUNCTIONS) - STARTS_WORKFLOWS
    assert "StartQueue" not in plain.resources()
    assert "VpcConfig" not in _function(plain, "Api")
    for name in FUNCTIONS:
        assert _function(in_vpc, name)["VpcConfig"] == {
            "SubnetIds": ["subnet-0a", "subnet-0b"],
            "SecurityGroupIds": ["sg-0c"],
        }


# -- queues ----------------------------------------------------------------------------------------
def test_every_sqs_event_source_reports_batch_item_failures(deployment: Deployment) -> None:
    sources = _sqs_sources(deployment)

    assert set(sources) == {"Orchestrator", "StepWorker", "QueueStart"}
    for mapping in sources.values():
        assert "ReportBatchItemFailures" in mapping["FunctionResponseTypes"]


def test_visibility_timeouts_are_six_times_the_consumers_timeouts(deployment: Deployment) -> None:
    for name, mapping in _sqs_sources(deployment).items():
        queue = deployment.properties(mapping["Queue"])
        timeout = _function(deployment, name)["Timeout"]
        window = int(mapping.get("MaximumBatchingWindowInSeconds", 0))

        assert int(queue["VisibilityTimeout"]) >= 6 * timeout + window, name


@pytest.mark.parametrize("max_receives", ["5", "9"])
def test_redrive_matches_the_consumers_max_receives(cfn: dict[str, Any], max_receives: str) -> None:
    deployment = Deployment(cfn, PARAMETERS | {"MaxReceives": max_receives})
    queues = deployment.resources("AWS::SQS::Queue")
    sources = _sqs_sources(deployment)
    consumed = {mapping["Queue"] for mapping in sources.values()}

    for name, mapping in sources.items():
        queue = deployment.properties(mapping["Queue"])
        redrive = queue["RedrivePolicy"]
        dead_letters = next(
            q for q in queues if deployment.attribute(q, "Arn") == redrive["deadLetterTargetArn"]
        )
        dlq = deployment.properties(dead_letters)

        assert str(redrive["maxReceiveCount"]) == _env(deployment, name)["LAMBDA_FLOW_MAX_RECEIVES"]
        assert str(redrive["maxReceiveCount"]) == max_receives
        assert dead_letters not in consumed  # a DLQ holds messages for people, not for a consumer
        assert "RedrivePolicy" not in dlq
        assert int(dlq["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])
    # The queues the functions send to are consumed and dead-lettered as well.
    assert {"OrchestratorQueue", "StepQueue"} <= consumed


# -- permissions -----------------------------------------------------------------------------------
def test_the_scheduler_role_may_only_send_to_the_orchestrator_queue(deployment: Deployment) -> None:
    role = deployment.properties("SchedulerRole")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    [policy] = role["Policies"]
    group_arn = deployment.attribute("WakeupScheduleGroup", "Arn")

    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": group_arn,
    }
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": deployment.attribute("OrchestratorQueue", "Arn"),
        }
    ]
    assert "ManagedPolicyArns" not in role


def test_only_orchestrating_functions_may_create_schedules(deployment: Deployment) -> None:
    group = deployment.ref("WakeupScheduleGroup")
    scheduler_role = deployment.attribute("SchedulerRole", "Arn")
    other_role = f"arn:aws:iam::{ACCOUNT}:role/admin"
    for name in FUNCTIONS:
        statements = _statements(deployment, name)
        env = _env(deployment, name)
        schedule = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/lf-run-1767225600"
        elsewhere = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/lf-run-1767225600"
        may_schedule = name in SCHEDULES_WAKEUPS

        assert _allows(statements, "scheduler:CreateSchedule", schedule) is may_schedule, name
        assert _allows(statements, "iam:PassRole", scheduler_role) is may_schedule, name
        assert not _allows(statements, "scheduler:CreateSchedule", elsewhere), name
        assert not _allows(statements, "iam:PassRole", other_role), name
        if may_schedule:
            assert env["LAMBDA_FLOW_SCHEDULER_ROLE_ARN"] == scheduler_role
            assert env["LAMBDA_FLOW_SCHEDULE_GROUP"] == group
            [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
            assert pass_role["Condition"] == {
                "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
            }


def test_functions_may_send_exactly_where_the_code_sends(deployment: Deployment) -> None:
    queues = {q: deployment.attribute(q, "Arn") for q in deployment.resources("AWS::SQS::Queue")}
    for name in FUNCTIONS:
        statements = _statements(deployment, name)
        sendable = {q for q, arn in queues.items() if _allows(statements, "sqs:SendMessage", arn)}

        assert sendable == SENDS_TO[name], name


def test_only_the_sweeper_reads_the_orchestrator_queues_backlog(deployment: Deployment) -> None:
    queues = {q: deployment.attribute(q, "Arn") for q in deployment.resources("AWS::SQS::Queue")}
    for name in FUNCTIONS:
        statements = _statements(deployment, name)
        readable = {
            q for q, arn in queues.items() if _allows(statements, "sqs:GetQueueAttributes", arn)
        }
        sources = _sqs_sources(deployment)
        own = {sources[name]["Queue"]} if name in sources else set()  # the poller's own queue
        expected = {"OrchestratorQueue"} if name == "Sweeper" else set()
        assert readable - own == expected, name


def test_functions_are_scoped_to_their_own_resources(deployment: Deployment) -> None:
    sources = _sqs_sources(deployment)
    queues = {q: deployment.attribute(q, "Arn") for q in deployment.resources("AWS::SQS::Queue")}
    for name in FUNCTIONS:
        statements = _statements(deployment, name)

        assert all(s["Resource"] != "*" for s in statements), name
        assert _allows(statements, "secretsmanager:GetSecretValue", SECRET_ARN), name
        assert not _allows(statements, "secretsmanager:GetSecretValue", SECRET_ARN + "x"), name
        receivable = {
            q for q, arn in queues.items() if _allows(statements, "sqs:ReceiveMessage", arn)
        }
        assert receivable == ({sources[name]["Queue"]} if name in sources else set()), name
        # SAM's SQS event source would attach this, allowing every queue of the account.
        managed = _role(deployment, name).get("ManagedPolicyArns", [])
        assert not any("AWSLambdaSQSQueueExecutionRole" in arn for arn in managed), name


# -- HTTP API --------------------------------------------------------------------------------------
def _routes(deployment: Deployment) -> dict[str, dict[str, Any]]:
    return {
        deployment.properties(logical_id)["RouteKey"]: deployment.properties(logical_id)
        for logical_id in deployment.resources("AWS::ApiGatewayV2::Route")
    }


def test_every_route_requires_iam_by_default(deployment: Deployment) -> None:
    routes = _routes(deployment)

    assert routes
    for key, route in routes.items():
        assert route["AuthorizationType"] == "AWS_IAM", key
        assert "AuthorizerId" not in route, key
    assert "JwtAuthorizer" not in deployment.resources()


def test_auth_mode_jwt_puts_every_route_behind_the_jwt_authorizer(cfn: dict[str, Any]) -> None:
    issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
    deployment = Deployment(
        cfn, PARAMETERS | {"AuthMode": "JWT", "JwtIssuer": issuer, "JwtAudience": "app1,app2"}
    )
    authorizer = deployment.properties("JwtAuthorizer")

    assert authorizer["JwtConfiguration"] == {"Issuer": issuer, "Audience": ["app1", "app2"]}
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    for key, route in _routes(deployment).items():
        assert route["AuthorizationType"] == "JWT", key
        assert route["AuthorizerId"] == deployment.ref("JwtAuthorizer"), key


def test_the_routes_are_the_apis_routes(
    deployment: Deployment, database_url: str, schema: str
) -> None:
    from examples.onboarding import flow

    store = PostgresStore(database_url, schema=schema)
    try:
        app = build_api(WorkflowService(flow, store=store), flow)
        paths = app.get_openapi_schema().paths or {}
    finally:
        store.close()
    served = {
        # the document has a start and a run per workflow; API Gateway's {name} route serves them
        re.sub(r"^POST /workflows/[^/{}]+/(start|run)$", r"POST /workflows/{name}/\1", key)
        for key in (
            f"{method.upper()} {path}"
            for path, item in paths.items()
            for method in ("get", "post", "put", "patch", "delete")
            if getattr(item, method, None) is not None
        )
    }

    # The console's routes are left out of the document; two template routes serve them all.
    assert set(_routes(deployment)) == served | {"GET /openapi.json"} | CONSOLE_ROUTES


CONSOLE_ROUTES = {"GET /console", "ANY /console/{proxy+}"}


def test_console_enabled_serves_the_console_behind_the_same_auth(
    cfn: dict[str, Any], deployment: Deployment
) -> None:
    """Issue 15: ``ConsoleEnabled`` (default on) routes ``/console`` to the Api function."""
    from lambda_flow.aws.api._web import CONSOLE_RULES

    on = _routes(deployment)
    assert set(on) >= CONSOLE_ROUTES
    for key in CONSOLE_ROUTES:
        assert on[key]["AuthorizationType"] == "AWS_IAM", key
        assert on[key]["Target"] == on["GET /runs/{run_id}"]["Target"], key  # the Api function
    assert AwsSettings.load(_env(deployment, "Api")).console_enabled is True
    for method, rule in CONSOLE_RULES:  # every path the resolver serves has a route
        assert rule == "/console" or (rule.startswith("/console/") and method in ("GET", "POST"))

    off = Deployment(cfn, PARAMETERS | {"ConsoleEnabled": "false"})
    assert set(_routes(off)) == set(on) - CONSOLE_ROUTES
    assert AwsSettings.load(_env(off, "Api")).console_enabled is False


def test_mcp_enabled_adds_the_mcp_route_behind_the_same_auth(
    cfn: dict[str, Any], deployment: Deployment
) -> None:
    """Issue 16: ``McpEnabled`` (default off) adds ``POST /mcp`` and tells the Api function."""
    off = _routes(deployment)
    assert "POST /mcp" not in off
    assert AwsSettings.load(_env(deployment, "Api")).mcp_enabled is False

    on = Deployment(cfn, PARAMETERS | {"McpEnabled": "true"})
    routes = _routes(on)
    assert set(routes) == set(off) | {"POST /mcp"}
    mcp = routes["POST /mcp"]
    assert mcp["AuthorizationType"] == "AWS_IAM"
    assert mcp["Target"] == routes["GET /runs/{run_id}"]["Target"]  # the Api function
    assert AwsSettings.load(_env(on, "Api")).mcp_enabled is True
    for name in FUNCTIONS[1:]:
        assert aws_config.ENV_MCP_ENABLED not in _env(on, name), name

    issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
    jwt = Deployment(
        cfn,
        PARAMETERS
        | {"McpEnabled": "true", "AuthMode": "JWT", "JwtIssuer": issuer, "JwtAudience": "app"},
    )
    assert _routes(jwt)["POST /mcp"]["AuthorizationType"] == "JWT"


def test_the_outputs_name_the_api_url_and_the_queues(deployment: Deployment) -> None:
    outputs = deployment.resolve(deployment.template["Outputs"])

    assert outputs["ApiUrl"]["Value"].startswith("https://")
    for queue in ("OrchestratorQueue", "StepQueue", "OrchestratorDeadLetterQueue", "StartQueue"):
        assert outputs[f"{queue}Url"]["Value"] == deployment.ref(queue)


# -- files beside the template (no SAM CLI needed) -------------------------------------------------
def test_each_function_has_a_sample_event_of_its_source() -> None:
    sam = load_template(TEMPLATE)
    functions = {
        name for name, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    route_keys = {
        r["Properties"]["RouteKey"]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }

    assert functions == set(SAMPLE_EVENTS)
    events = {
        name: json.loads((EVENTS / f).read_text(encoding="utf-8"))
        for name, f in SAMPLE_EVENTS.items()
    }
    for name in ("Orchestrator", "StepWorker", "QueueStart"):
        assert [r["eventSource"] for r in events[name]["Records"]] == ["aws:sqs"], name
    for name in ("Sweeper", "ScheduleStart"):
        assert events[name]["detail-type"] == "Scheduled Event", name
    for path in EVENTS.glob("api_*.json"):
        event = json.loads(path.read_text(encoding="utf-8"))
        assert event["version"] == "2.0", path.name
        assert event["routeKey"] in route_keys, path.name


def test_requirements_txt_has_the_packages_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [*project["dependencies"], *project["optional-dependencies"]["aws"]]
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = {line.strip() for line in lines if line.strip() and not line.startswith("#")}

    assert set(runtime) <= requirements


def _make_variables() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Z_]+)\s*[:?]?=\s*(.*?)\s*$", text, re.MULTILINE))


def test_the_makefile_builds_for_the_templates_runtime_and_architecture() -> None:
    template = load_template(TEMPLATE)
    function_globals = template["Globals"]["Function"]
    make = _make_variables()
    runtime = function_globals["Runtime"]
    [architecture] = function_globals["Architectures"]
    app_module = template["Parameters"]["AppModule"]["Default"].partition(":")[0]

    [layer] = [r for r in template["Resources"].values() if r["Type"].endswith("LayerVersion")]
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == [architecture]
    assert layer["Metadata"]["BuildArchitecture"] == architecture
    assert runtime == f"python{make['LAMBDA_PYTHON']}"
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    assert all(p.endswith(f"_{machine}") for p in make["LAMBDA_PLATFORM"].split()), make
    assert app_module.split(".")[0] in make["APP_PACKAGES"].split()


def test_samconfig_has_default_dev_and_prod_environments() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))

    for env in ("default", "dev", "prod"):
        assert config[env]["build"]["parameters"]["build_in_source"] is True, env
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM", env
        assert config[env]["global"]["parameters"]["stack_name"], env
    parameters = load_template(TEMPLATE)["Parameters"]
    for env in ("dev", "prod"):
        overrides = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
        assert {pair.split("=")[0] for pair in overrides.split()} <= set(parameters), env


def test_the_database_stack_feeds_the_app_parameters() -> None:
    database = load_template(DATABASE_STACK)
    app_parameters = load_template(TEMPLATE)["Parameters"]
    secret = database["Resources"]["ConnectionSecret"]["Properties"]["SecretString"]["Fn::Sub"]
    fields = set(re.findall(r'"(\w+)":', secret))

    assert {"DatabaseSecretArn", "VpcSubnetIds", "VpcSecurityGroupIds"} <= set(database["Outputs"])
    assert {"DatabaseSecretArn", "VpcSubnetIds", "VpcSecurityGroupIds"} <= set(app_parameters)
    # What lambda_flow.aws.config.database_url_from_secret reads, with the proxy as the host.
    assert {"username", "password", "host", "port", "dbname"} <= fields
    assert '"host": "${Proxy.Endpoint}"' in secret


# -- the build -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Build:
    """What ``sam build`` left in its build folder."""

    folder: Path
    template: dict[str, Any]

    def code(self, function: str) -> Path:
        return self.folder / self.template["Resources"][function]["Properties"]["CodeUri"]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``sam build`` of template.yaml with samconfig.toml's default settings, into a tmp folder."""
    sam = _sam_tool("sam")
    folder = tmp_path_factory.mktemp("sam-build")
    result = _run(
        [sam, "build", "--build-dir", folder], cwd=ROOT, env=_sam_env(), timeout=SAM_TIMEOUT
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    return Build(folder, load_template(folder / "template.yaml"))


def test_sam_build_makes_self_contained_artifacts(build: Build) -> None:
    function_globals = load_template(TEMPLATE)["Globals"]["Function"]
    python = function_globals["Runtime"].removeprefix("python").replace(".", "")
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[function_globals["Architectures"][0]]
    [layer] = [
        r
        for r in build.template["Resources"].values()
        if r["Type"] == "AWS::Serverless::LayerVersion"
    ]
    packages = build.folder / layer["Properties"]["ContentUri"] / "python"

    for name in FUNCTIONS:
        code = build.code(name)
        module = build.template["Resources"][name]["Properties"]["Handler"].rpartition(".")[0]
        assert (code / f"{module}.py").is_file(), name
        assert list((code / "lambda_flow" / "store" / "migrations").glob("*.sql")), name
        assert (code / "examples" / "onboarding.py").is_file(), name  # the default AppModule
        assert not list(code.rglob("__pycache__")), name
        assert not (code / "tests").exists(), name
        assert not (code / ".venv").exists(), name
        assert not (code / "handlers").exists(), name  # the handlers are lambda_flow's own
    # Binary wheels for the runtime's Python and the architecture, not the build machine's.
    for extension in ("pydantic_core/_pydantic_core", "psycopg_binary/_psycopg"):
        built = f"{extension}.cpython-{python}-{machine}-linux-gnu.so"
        assert list(packages.glob(built)), built
    assert not (packages / "bin").exists()
    size = sum(f.stat().st_size for f in build.folder.rglob("*") if f.is_file())
    assert size < 250 * 2**20  # Lambda's unzipped limit for a function and its layers


# -- every handler, invoked as Lambda would --------------------------------------------------------
@dataclass
class MotoStack:
    """The template's queues and schedule group created in a moto server, and the database
    secret pointing at the test Postgres."""

    deployment: Deployment
    aws_env: dict[str, str]
    sqs: Any
    schema: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _database_secret(database_url: str) -> dict[str, Any]:
    """The test database as an RDS-format secret (the embedded server trusts local users, so
    the password, which the secret must have, is not checked)."""
    info = conninfo_to_dict(database_url)
    return {
        "engine": "postgres",
        "host": info.get("host") or "localhost",
        "port": int(info.get("port") or 5432),
        "dbname": info.get("dbname") or "postgres",
        "username": info.get("user") or "postgres",
        "password": info.get("password") or "trusted-locally",
    }


@pytest.fixture(scope="module")
def moto_stack(cfn: dict[str, Any], database_url: str) -> Iterator[MotoStack]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"  # moto has no public getter for it
    aws_env = AWS_FAKE_ENV | {"AWS_ENDPOINT_URL": endpoint, "NO_PROXY": "127.0.0.1,localhost"}
    client = {
        "region_name": REGION,
        "endpoint_url": endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sqs = boto3.client("sqs", **client)
    scheduler = boto3.client("scheduler", **client)
    secrets = boto3.client("secretsmanager", **client)
    schema = f"deploy_{uuid.uuid4().hex[:10]}"
    try:
        secret_arn = secrets.create_secret(
            Name="lambda-flow-db", SecretString=json.dumps(_database_secret(database_url))
        )["ARN"]
        parameters = PARAMETERS | {"DatabaseSecretArn": secret_arn, "DatabaseSchema": schema}
        deployment = Deployment(cfn, parameters)
        queues = deployment.resources("AWS::SQS::Queue")
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]["Properties"]):
            properties = deployment.properties(logical_id)  # DLQs first: redrive names them
            attributes = {
                key: json.dumps(value) if isinstance(value, dict) else str(value)
                for key, value in properties.items()
                if key in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy")
            }
            name = f"{STACK}-{logical_id}"
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            deployment.physical[logical_id] = {
                "Ref": url,
                "Arn": arn["Attributes"]["QueueArn"],
                "QueueName": name,
            }
        for logical_id in deployment.resources("AWS::Scheduler::ScheduleGroup"):
            name = f"{STACK}-{logical_id}"
            arn = scheduler.create_schedule_group(Name=name)["ScheduleGroupArn"]
            deployment.physical[logical_id] = {"Ref": name, "Arn": arn}
        yield MotoStack(deployment, aws_env, sqs, schema)
    finally:
        server.stop()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _invoke(stack: MotoStack, build: Build, function: str, tmp_path: Path) -> tuple[Any, str]:
    """Run ``function``'s handler on its sample event in a fresh interpreter: cwd and
    ``PYTHONPATH`` are its built code (as ``/var/task`` in Lambda), the environment is the
    template's for it plus AWS endpoints; dependencies come from the project's venv."""
    properties = stack.deployment.properties(function)
    code = build.code(function)
    out = tmp_path / "out.json"
    env = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    env |= properties["Environment"]["Variables"] | stack.aws_env
    env |= {
        "AWS_LAMBDA_FUNCTION_NAME": f"{STACK}-{function}",  # handlers then build at import
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "PYTHONPATH": str(code),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    event = EVENTS / SAMPLE_EVENTS[function]
    result = _run(
        [sys.executable, HERE / "_invoke.py", properties["Handler"], out, event],
        cwd=code,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    for module, file in report["modules"].items():  # imported from the artifact, nothing else
        assert Path(file).resolve().is_relative_to(code.resolve()), (module, file)
    assert set(report["modules"]) >= {"lambda_flow", "examples.onboarding"}
    [response] = report["responses"]
    return response, result.stdout


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_handler_imports_and_answers_its_sample_event(
    function: str, moto_stack: MotoStack, build: Build, tmp_path: Path
) -> None:
    response, logs = _invoke(moto_stack, build, function, tmp_path)

    if function == "Api":  # POST /workflows/onboard_user/start by an IAM caller: queued
        assert response["statusCode"] == 202, response
        run_id = json.loads(response["body"])["run_id"]
        queue = moto_stack.deployment.ref("OrchestratorQueue")
        messages = moto_stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        assert {"run_id": run_id} in [json.loads(m["Body"]) for m in messages["Messages"]]
    elif function in ("Orchestrator", "StepWorker"):  # the sample's run is not in this database
        [record] = json.loads((EVENTS / SAMPLE_EVENTS[function]).read_text("utf-8"))["Records"]
        assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        assert "RunNotFound" in logs
    elif function == "QueueStart":
        assert response == {"batchItemFailures": []}
    elif function == "ScheduleStart":
        assert set(response) == {"run_id"}
    else:
        assert set(response) == {"runs", "step_jobs", "deleted_runs"}
