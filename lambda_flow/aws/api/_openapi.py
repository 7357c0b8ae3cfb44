"""What the OpenAPI document says: request parameters, bodies and each route's answers.

The parameter annotations are also what Powertools validates the query and headers against.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from pydantic import BaseModel
from pydantic.errors import PydanticUserError

from ...core import Codec, InvalidInput, RunStatus, SchemaMode, WorkflowInfo, json_schemas
from ...engine import WorkflowDef
from ._models import (
    ApiErrorResponse,
    CancelRequest,
    FailCallbackRequest,
    ForkRequest,
    ResumeRequest,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

_JSON = "application/json"


# -- request parameters (validated by Powertools, documented in the OpenAPI) -----------------
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,255}$",
        description="Starts at most one run per key and workflow; a repeat returns that run.",
    ),
]
RunTimeoutQuery = Annotated[
    str | None,
    Query(
        max_length=32,
        description="How long the run may take, e.g. '7d': past it the run fails with"
        " RunDeadlineExceeded (default: the workflow's own timeout, if any). Always the option,"
        " whatever the workflow's input is.",
    ),
]
_RUN_TIMEOUT_NOTE = (
    "\n\nThe run's timeout: the `run_timeout` query parameter, or a top-level `run_timeout`"
    " key of the JSON body when the workflow's input declares no `run_timeout` field of its own"
    " (an input model without one, or an untyped input): that key is then taken out of the"
    " input before validation. When the input declares `run_timeout`, the body's key is input"
    " and only the query parameter sets the timeout. Both given: 422 naming the conflict."
)
TimeoutQuery = Annotated[
    str | None,
    Query(
        max_length=32,
        description="How long to wait for the run to end, e.g. '10s' (capped; default the cap).",
    ),
]
WorkflowFilter = Annotated[
    str | None,
    Query(max_length=200, pattern=r"^[^\x00-\x1f]+$", description="Only runs of this workflow."),
]
StatusFilter = Annotated[RunStatus | None, Query(description="Only runs in this status.")]
ParentFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9a-fA-F-]{32,36}$",
        description="Only the child runs of this run (``wf.child``, ``wf.start_child``).",
    ),
]
CreatedAfterFilter = Annotated[
    datetime | None,
    Query(description="Only runs created at or after this time (ISO 8601 with a timezone)."),
]
CreatedBeforeFilter = Annotated[
    datetime | None,
    Query(description="Only runs created before this time (ISO 8601 with a timezone)."),
]
SearchFilter = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Only runs whose id or idempotency key is this text or starts with it.",
    ),
]
MAX_PAGE_RUNS = 1000
"""The most runs one ``GET /runs`` page holds, whatever ``limit`` asks."""
MAX_PAGE_BYTES = 1024 * 1024
"""A ``GET /runs`` page stops once its runs take this many bytes of JSON (1 MiB: far below
Lambda's 6 MB response limit even after API Gateway's encoding); ``next_cursor`` goes on."""
LimitQuery = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PAGE_RUNS,
        description=(
            f"The most runs on the page (at most {MAX_PAGE_RUNS}; a page also stops at about "
            f"{MAX_PAGE_BYTES // 1024} KiB)."
        ),
    ),
]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="``next_cursor`` of the previous page.")
]

_INPUT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "The workflow's input as JSON, checked against its input annotation.",
        "content": {_JSON: {"schema": {}}},
    }
}
_CANCEL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {_JSON: {"schema": CancelRequest.model_json_schema()}},
    }
}
_RESUME_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {_JSON: {"schema": ResumeRequest.model_json_schema()}},
    }
}
_FORK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": ForkRequest.model_json_schema()}},
    }
}
_CALLBACK_PAYLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "The callback's payload as JSON: what the awaiting cb.result() returns.",
        "content": {_JSON: {"schema": {}}},
    }
}
_FAIL_CALLBACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": FailCallbackRequest.model_json_schema()}},
    }
}
_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON (or not base64 or UTF-8), or holds text the database cannot "
    "store (NUL, a lone surrogate)",
    401: "No authenticated caller",
    403: "The workflow's authorize hook refused the caller",
    404: "Unknown workflow, run or callback",
    409: "The run has already finished, or the callback takes no such completion (completed "
    "otherwise, timed out, its run ended)",
    413: "The body, or the input's JSON, is larger than the API accepts",
    422: "The input or a parameter failed validation, or the Idempotency-Key was used with "
    "another input",
    500: "Unexpected error (logged)",
    503: "The database is unreachable for now; try again after Retry-After seconds",
}


def _responses(
    ok: Sequence[tuple[int, type[BaseModel], str]], *errors: int
) -> dict[int, OpenAPIResponse]:
    responses: dict[int, OpenAPIResponse] = {
        code: {"description": text, "content": {_JSON: {"model": model}}}
        for code, model, text in ok
    }
    for code in (*errors, 422, 500, 503):
        responses[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {_JSON: {"model": ApiErrorResponse}},
        }
    return responses


def _package_version() -> str:
    try:
        return version("lambda-flow")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


# -- the workflows' own schemas ------------------------------------------------------------
_REF = "#/components/schemas/{model}"
_GENERIC_PATHS = {"start": "/workflows/{name}/start", "run": "/workflows/{name}/run"}
_SUMMARIES = {"start": "Start a run of {name}", "run": "Run {name} and wait for its end"}


def _describable(codec: Codec, mode: SchemaMode) -> bool:
    try:
        codec.json_schema(mode)
    except PydanticUserError:  # e.g. a callable in the annotation: documented as any JSON
        return False
    return True


def schema_of(codec: Codec, mode: SchemaMode) -> dict[str, Any]:
    """``codec``'s JSON Schema, self-contained; ``{}`` (any JSON) when it has none."""
    return codec.json_schema(mode) if _describable(codec, mode) else {}


def workflow_info(definition: WorkflowDef) -> WorkflowInfo:
    """What ``GET /workflows`` says about one workflow."""
    return WorkflowInfo(
        name=definition.name,
        description=definition.description,
        tags=list(definition.tags),
        input_schema=schema_of(definition.input, "validation"),
        output_schema=schema_of(definition.output, "serialization"),
    )


def _input_required(definition: WorkflowDef) -> bool:
    if definition.input.is_any:
        return False
    try:
        definition.input.validate(None, definition.name)
    except InvalidInput:
        return True
    return False


def _shared_schemas(
    workflows: Sequence[WorkflowDef], components: dict[str, Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Each workflow's input and output schema, their definitions added to ``components``.

    A definition whose name is taken by a different schema (one of the API's own models, say)
    is renamed ``Name_2``, ``Name_3``, ... and every reference to it follows.
    """
    codecs: dict[tuple[str, str], tuple[Codec, SchemaMode]] = {}
    for d in workflows:
        codecs[(d.name, "input")] = (d.input, "validation")
        codecs[(d.name, "output")] = (d.output, "serialization")
    describable = {key: value for key, value in codecs.items() if _describable(*value)}
    typed, definitions = json_schemas(describable, _REF)
    renames: dict[str, str] = {}
    for name, schema in definitions.items():
        if name in components and components[name] != schema:
            n = 2
            while f"{name}_{n}" in components or f"{name}_{n}" in definitions:
                n += 1
            renames[name] = f"{name}_{n}"
    keys = list(typed)
    text = json.dumps([[typed[key] for key in keys], definitions])
    for old, new in renames.items():  # a reference is a whole JSON string: replace it exactly
        text = text.replace(json.dumps(_REF.format(model=old)), json.dumps(_REF.format(model=new)))
    schemas, definitions = json.loads(text)
    for name, schema in definitions.items():
        components.setdefault(renames.get(name, name), schema)
    found = dict(zip(keys, schemas, strict=True))
    return {key: found.get(key, {}) for key in codecs}


def _operation_ids(document: Mapping[str, Any]) -> set[str]:
    return {
        str(op.get("operationId"))
        for item in document.get("paths", {}).values()
        for op in item.values()
        if isinstance(op, Mapping)
    }


def _identifier(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W+", "_", name).strip("_") or "workflow"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _workflow_operation(
    generic: Mapping[str, Any],
    definition: WorkflowDef,
    action: str,
    input_schema: dict[str, Any],
    operation_id: str,
) -> dict[str, Any]:
    operation = copy.deepcopy(dict(generic))
    operation["operationId"] = operation_id
    operation["summary"] = _SUMMARIES[action].format(name=definition.name)
    if definition.description:
        operation["description"] = f"{definition.description}\n\n{operation.get('description', '')}"
    operation["tags"] = ["workflows", *definition.tags]
    operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("in") != "path"]
    operation["requestBody"] = {
        "required": _input_required(definition),
        "description": f"The input of {definition.name}.",
        "content": {_JSON: {"schema": input_schema}},
    }
    return operation


def _finished_schema(
    components: dict[str, Any], definition: WorkflowDef, output: dict[str, Any], model_id: str
) -> dict[str, Any]:
    """A ``RunFinished`` whose ``output`` is this workflow's output, as a component."""
    finished = copy.deepcopy(components.get("RunFinished", {"type": "object", "properties": {}}))
    finished["title"] = f"RunFinished[{definition.name}]"
    described = {"anyOf": [output, {"type": "null"}]} if output else {}
    finished.setdefault("properties", {})["output"] = {
        **described,
        "description": "The workflow's return value (completed runs); null otherwise.",
    }
    name = f"RunFinished_{model_id}"
    components[name] = finished
    return {"$ref": _REF.format(model=name)}


def with_workflows(document: dict[str, Any], workflows: Iterable[WorkflowDef]) -> dict[str, Any]:
    """The OpenAPI document with a start and a run operation per workflow, typed by its codecs.

    The generic ``/workflows/{name}/...`` operations become ``/workflows/<name>/start`` and
    ``/workflows/<name>/run`` for each workflow, with the workflow's input schema as the body
    and its output schema in ``/run``'s 200 answer, so a generated client gets one typed
    method per workflow. API Gateway's ``{name}`` routes serve them all.

    Args:
        document: the document Powertools built from the routes (as JSON data).
        workflows: the application's workflows.

    Returns:
        A new document; ``document`` is left as it was.
    """
    document = copy.deepcopy(document)
    paths: dict[str, Any] = document.setdefault("paths", {})
    generic = {action: paths.pop(path, {}).get("post") for action, path in _GENERIC_PATHS.items()}
    components = document.setdefault("components", {}).setdefault("schemas", {})
    ordered = sorted(workflows, key=lambda d: d.name)
    schemas = _shared_schemas(ordered, components)
    taken = _operation_ids(document)
    models: set[str] = set()
    for definition in ordered:
        model_id = _identifier(definition.name, models)
        for action, operation in generic.items():
            if operation is None:
                continue
            typed = _workflow_operation(
                operation,
                definition,
                action,
                schemas[(definition.name, "input")],
                _identifier(f"{action}_{definition.name}", taken),
            )
            if action == "run":
                content = typed["responses"]["200"]["content"][_JSON]
                content["schema"] = _finished_schema(
                    components, definition, schemas[(definition.name, "output")], model_id
                )
            path = _GENERIC_PATHS[action].replace("{name}", quote(definition.name, safe=""))
            paths[path] = {"post": typed}
    return document
