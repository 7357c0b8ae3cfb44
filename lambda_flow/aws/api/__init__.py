"""The workflow HTTP API: a Powertools resolver for API Gateway HTTP APIs (payload v2).

Routes (JSON, snake_case):

- ``GET /workflows``: 200 ``{"workflows"}``, each with its name, description, tags and input
  and output JSON Schemas.
- ``POST /workflows/{name}/start``: 202 ``{"run_id"}``. The body is the workflow's input; an
  ``Idempotency-Key`` header makes a repeat with the same input return the first run's id (202
  again), and a repeat with another input a 422 ``IdempotencyConflict``.
- ``POST /workflows/{name}/run``: 200 ``{"run_id", "status", "output", "error"}`` once the run
  has ended (completed, failed or cancelled) within ``?timeout=`` (capped), else 202
  ``{"run_id", "status"}`` (still running, or suspended).
- ``GET /runs/{run_id}``: 200 the run; ``GET /runs/{run_id}/history``: 200 every attempt.
- ``GET /runs?workflow=&status=&parent_id=&created_after=&created_before=&search=&limit=&cursor=``:
  200 ``{"runs", "next_cursor"}``: run summaries (no input or output), at most ``limit``
  (1..1000) and about 1 MiB of them; ``created_after``/``created_before`` are ISO 8601 times
  with a timezone, ``search`` keeps runs whose id or idempotency key is or starts with it.
- ``POST /runs/{run_id}/resume``, ``POST /runs/{run_id}/cancel`` (body ``{"reason"}``
  optional): 200 the run.
- ``GET /openapi.json``: the OpenAPI document, with a typed start and run operation per
  workflow; ``GET /docs``: the Swagger UI over it (both served without a caller: they hold no
  run data).
- ``POST /mcp`` (``build_api(mcp=True)``, the template's ``McpEnabled``): the Model Context
  Protocol, streamable HTTP in stateless mode, every workflow a tool for AI agents
  (``lambda_flow.agents``; ``_agents`` here), behind the same caller checks and hooks.

Errors are ``{"error": {"type", "message", "details"}}``: 400 a body that is not JSON (or not
base64/UTF-8) or an input holding text the database cannot store (``UnstorableInput``, naming
where in ``details``), 401 no authenticated caller, 403 refused by the workflow's hook, 404 unknown
workflow, run or route (a malformed run id is unknown too), 409 the run has already finished,
413 a body over ``max_body_bytes`` (measured before anything is decoded) or an input whose JSON
is over ``MAX_INPUT_BYTES`` (``InputTooLarge``), 422 input or query failing validation
(pydantic's field errors in ``details``) or an ``Idempotency-Key`` reused with another input
(``IdempotencyConflict``), 405 a known path asked with another
method (``Allow`` names the right ones), 503 the database unreachable for now (with
``Retry-After``), 500 anything unexpected (logged; the answer names only the request id). No 4xx
answer writes anything.

Authentication is API Gateway's job (IAM or JWT). The caller it established is read from
``requestContext.authorizer`` (``jwt``, ``iam`` or ``lambda``) into a :class:`Caller`; an
anonymous caller gets 401 unless ``allow_anonymous``. Authorization is each workflow's
``authorize`` hook, asked with an :class:`AccessRequest`: ``start`` (with the validated input)
before anything is written, ``read``/``resume``/``cancel`` (with the run id) once the run is
known, so an unknown run is a 404 whoever asks.

Listing runs asks the same ``read`` question of every run on the page and leaves out the runs
the caller may not read. A page may therefore hold fewer than ``limit`` runs (even none) while
``next_cursor`` still points past the last run looked at: paging neither skips nor leaks runs,
and no filter is required. Runs of a workflow the application no longer registers have no hook
to ask; they are served only when no registered workflow has a hook (fail closed).

The work lives in private modules: ``_models`` (the bodies), ``_request`` (the caller and the
body), ``_openapi`` (parameters and documented answers), ``_routes`` (what each route does) and
``_resolver`` (:func:`build_api`, wiring them into a resolver).
"""

from ._models import (
    ApiError,
    ApiErrorResponse,
    CancelRequest,
    RunFinished,
    RunHistoryView,
    RunInProgress,
    RunPage,
    RunStarted,
    RunView,
    WorkflowList,
)
from ._request import HttpError, caller_from_event, read_json_body
from ._resolver import build_api
from ._routes import start_and_wait

__all__ = [
    "ApiError",
    "ApiErrorResponse",
    "CancelRequest",
    "HttpError",
    "RunFinished",
    "RunHistoryView",
    "RunInProgress",
    "RunPage",
    "RunStarted",
    "RunView",
    "WorkflowList",
    "build_api",
    "caller_from_event",
    "read_json_body",
    "start_and_wait",
]
