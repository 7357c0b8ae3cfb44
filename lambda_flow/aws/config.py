"""Settings of the Lambda handlers, from keyword arguments or the environment.

Everything is checked at cold start; a missing or malformed value fails with a message that
names the variable, before any request is served.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core import DEFAULT_SCHEMA, ENV_APP, ENV_DATABASE_URL, ENV_SCHEMA, ConfigurationError
from ..store.postgres import validate_schema_name

ENV_DATABASE_SECRET_ARN = "LAMBDA_FLOW_DATABASE_SECRET_ARN"  # noqa: S105 - a variable name
ENV_ORCHESTRATOR_QUEUE_URL = "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL"
ENV_STEP_QUEUE_URL = "LAMBDA_FLOW_STEP_QUEUE_URL"
ENV_SCHEDULE_GROUP = "LAMBDA_FLOW_SCHEDULE_GROUP"
ENV_SCHEDULER_ROLE_ARN = "LAMBDA_FLOW_SCHEDULER_ROLE_ARN"
ENV_MAX_BODY_BYTES = "LAMBDA_FLOW_MAX_BODY_BYTES"
ENV_MAX_RECEIVES = "LAMBDA_FLOW_MAX_RECEIVES"
ENV_STEP_TIMEOUT = "LAMBDA_FLOW_STEP_TIMEOUT_SECONDS"
ENV_ALLOW_ANONYMOUS = "LAMBDA_FLOW_ALLOW_ANONYMOUS"
"""``true`` to serve callers API Gateway did not authenticate (default ``false``)."""
ENV_MCP_ENABLED = "LAMBDA_FLOW_MCP_ENABLED"
"""``true`` to serve the MCP route ``POST /mcp`` on the Api function (the template's
``McpEnabled``; default ``false``). It needs the ``mcp`` package in the deployment."""
ENV_CONSOLE_ENABLED = "LAMBDA_FLOW_CONSOLE_ENABLED"
"""``false`` to leave out the web console's routes under ``/console`` (the template's
``ConsoleEnabled``; default ``true``)."""
ENV_TRIGGER_WORKFLOW = "LAMBDA_FLOW_TRIGGER_WORKFLOW"
"""The workflow a queue or schedule trigger function starts."""
ENV_RETENTION_DAYS = "LAMBDA_FLOW_RETENTION_DAYS"
"""The sweeper deletes finished runs that ended more than this many days ago (``0``, the
default: never). The template's ``RetentionDays``."""
MAX_RETENTION_DAYS = 36_500


def trigger_workflow(env: Mapping[str, str] | None = None) -> str:
    """The workflow name a trigger function starts (``LAMBDA_FLOW_TRIGGER_WORKFLOW``).

    Raises:
        ConfigurationError: the variable is not set.
    """
    name = (os.environ if env is None else env).get(ENV_TRIGGER_WORKFLOW, "").strip()
    if not name:
        raise ConfigurationError(f"{ENV_TRIGGER_WORKFLOW} is not set: name the workflow to start")
    return name


_QUEUE_URL = re.compile(r"^https?://[^/\s]+/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_GROUP = re.compile(r"^[0-9a-zA-Z_.-]{1,64}$")
_APP = re.compile(r"^[\w.]+:[\w.]+$")


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Validated settings of one Lambda function."""

    app: str
    """``module:attribute`` of the application's :class:`Flow`."""
    database_url: str | None
    """A Postgres URL (or None when ``database_secret_arn`` is set)."""
    database_secret_arn: str | None
    """A Secrets Manager secret in the RDS format (username, password, host, port, dbname)."""
    orchestrator_queue_url: str | None
    step_queue_url: str | None
    schedule_group: str | None
    """EventBridge Scheduler group for timers beyond 15 minutes (optional)."""
    scheduler_role_arn: str | None
    """Role Scheduler assumes to send to the orchestrator queue (with ``schedule_group``)."""
    schema: str = DEFAULT_SCHEMA
    max_body_bytes: int = 256 * 1024
    """Larger API request bodies are refused with 413 before anything is parsed."""
    max_receives: int = 5
    """The queues' ``maxReceiveCount``: on the last receive a failing message fails its run."""
    step_timeout_seconds: int = 300
    """How long a step worker's claim on a step lasts before another may take it."""
    allow_anonymous: bool = False
    """Serve API callers API Gateway did not authenticate (local use only)."""
    retention_days: int = 0
    """The sweeper deletes finished runs that ended more than this many days ago; 0: never."""
    mcp_enabled: bool = False
    """The API serves MCP at ``POST /mcp`` (workflows as tools for AI agents)."""
    console_enabled: bool = True
    """The API serves the web console under ``/console``."""

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        require_queues: bool = True,
        **overrides: Any,
    ) -> AwsSettings:
        """Read settings: keyword arguments (lowercase names) win over the environment.

        Raises:
            ConfigurationError: naming the variable that is missing or malformed.
        """
        source = os.environ if env is None else env

        def get(name: str, key: str) -> str | None:
            value = overrides.get(key)
            if value is None:
                value = source.get(name)
            return str(value).strip() if value not in (None, "") else None

        def check(name: str, value: str | None, pattern: re.Pattern[str], what: str) -> None:
            if value is not None and not pattern.match(value):
                raise ConfigurationError(f"{name} is not {what}: {value!r}")

        app = get(ENV_APP, "app")
        if app is None:
            raise ConfigurationError(f"{ENV_APP} is not set: give the Flow as module:attribute")
        check(ENV_APP, app, _APP, "module:attribute")
        database_url = get(ENV_DATABASE_URL, "database_url")
        secret_arn = get(ENV_DATABASE_SECRET_ARN, "database_secret_arn")
        if database_url is None and secret_arn is None:
            raise ConfigurationError(
                f"neither {ENV_DATABASE_URL} nor {ENV_DATABASE_SECRET_ARN} is set"
            )
        if database_url is not None and not database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ConfigurationError(f"{ENV_DATABASE_URL} must be a postgresql:// URL")
        check(ENV_DATABASE_SECRET_ARN, secret_arn, _SECRET_ARN, "a Secrets Manager secret ARN")
        orchestrator = get(ENV_ORCHESTRATOR_QUEUE_URL, "orchestrator_queue_url")
        step = get(ENV_STEP_QUEUE_URL, "step_queue_url")
        for name, value in ((ENV_ORCHESTRATOR_QUEUE_URL, orchestrator), (ENV_STEP_QUEUE_URL, step)):
            if value is None and require_queues:
                raise ConfigurationError(f"{name} is not set")
            check(name, value, _QUEUE_URL, "an SQS queue URL")
        group = get(ENV_SCHEDULE_GROUP, "schedule_group")
        role = get(ENV_SCHEDULER_ROLE_ARN, "scheduler_role_arn")
        check(ENV_SCHEDULE_GROUP, group, _GROUP, "a schedule group name")
        check(ENV_SCHEDULER_ROLE_ARN, role, _ROLE_ARN, "an IAM role ARN")
        if (group is None) != (role is None):
            missing = ENV_SCHEDULER_ROLE_ARN if role is None else ENV_SCHEDULE_GROUP
            raise ConfigurationError(
                f"{missing} is not set: long sleeps need both {ENV_SCHEDULE_GROUP} and "
                f"{ENV_SCHEDULER_ROLE_ARN}"
            )
        schema = get(ENV_SCHEMA, "schema") or DEFAULT_SCHEMA
        try:
            validate_schema_name(schema)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{ENV_SCHEMA}: {exc}") from None
        return cls(
            app=app,
            database_url=database_url,
            database_secret_arn=secret_arn,
            orchestrator_queue_url=orchestrator,
            step_queue_url=step,
            schedule_group=group,
            scheduler_role_arn=role,
            schema=schema,
            max_body_bytes=_positive_int(
                ENV_MAX_BODY_BYTES, get(ENV_MAX_BODY_BYTES, "max_body_bytes"), 256 * 1024
            ),
            max_receives=_positive_int(ENV_MAX_RECEIVES, get(ENV_MAX_RECEIVES, "max_receives"), 5),
            step_timeout_seconds=_positive_int(
                ENV_STEP_TIMEOUT, get(ENV_STEP_TIMEOUT, "step_timeout_seconds"), 300
            ),
            allow_anonymous=_yes_no(
                ENV_ALLOW_ANONYMOUS, get(ENV_ALLOW_ANONYMOUS, "allow_anonymous")
            ),
            retention_days=_retention_days(get(ENV_RETENTION_DAYS, "retention_days")),
            mcp_enabled=_yes_no(ENV_MCP_ENABLED, get(ENV_MCP_ENABLED, "mcp_enabled")),
            console_enabled=_yes_no(
                ENV_CONSOLE_ENABLED, get(ENV_CONSOLE_ENABLED, "console_enabled") or "true"
            ),
        )


def _positive_int(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigurationError(f"{name} must be positive, got {number}")
    return number


def _retention_days(value: str | None) -> int:
    if value is None:
        return 0
    try:
        days = int(value)
    except ValueError:
        raise ConfigurationError(
            f"{ENV_RETENTION_DAYS} must be a whole number of days (0: keep runs forever), "
            f"got {value!r}"
        ) from None
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise ConfigurationError(
            f"{ENV_RETENTION_DAYS} must be between 0 (keep runs forever) and "
            f"{MAX_RETENTION_DAYS} days, got {days}"
        )
    return days


def _yes_no(name: str, value: str | None) -> bool:
    raw = (value or "").lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def database_url_from_secret(secret_arn: str, *, client: Any = None) -> str:
    """Build a connection string from a Secrets Manager secret in the RDS format.

    Raises:
        ConfigurationError: the secret cannot be read or lacks a field (never echoing values).
    """
    from psycopg.conninfo import make_conninfo

    if client is None:
        from ..transport._aws import aws_client

        client = aws_client("secretsmanager")
    try:
        raw = client.get_secret_value(SecretId=secret_arn)["SecretString"]
        secret = json.loads(raw)
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(
            f"{ENV_DATABASE_SECRET_ARN}: the secret is not JSON in the RDS format"
        ) from exc
    missing = [key for key in ("username", "password", "host") if not secret.get(key)]
    if missing:
        raise ConfigurationError(
            f"{ENV_DATABASE_SECRET_ARN}: the secret lacks {', '.join(missing)}"
        )
    return make_conninfo(
        "",
        user=secret["username"],
        password=secret["password"],
        host=secret["host"],
        port=str(secret.get("port") or 5432),
        dbname=secret.get("dbname") or secret.get("dbInstanceIdentifier") or "postgres",
    )
