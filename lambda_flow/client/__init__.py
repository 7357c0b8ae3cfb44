"""A typed Python client of the lambda-flow HTTP API.

``Client(base_url, auth=...)`` has ``WorkflowService``'s methods (``start``,
``start_and_wait``, ``run_to_completion``, ``get_run``, ``get_run_history``, ``list_runs``,
``resume``, ``cancel``) plus ``list_workflows``, over HTTP with the standard library's
``urllib``. ``SigV4Auth`` signs requests with botocore for an API deployed with
``AuthMode=IAM``; ``BearerToken`` sends a JWT for ``AuthMode=JWT``; ``lambda-flow dev`` needs
neither.

It imports only ``lambda_flow.core`` (an import-linter contract holds it to that): never the
engine, the store or the AWS side.
"""

from ..core import RunPage, RunSummary, WorkflowInfo
from ._auth import Auth, BearerToken, SigV4Auth
from ._client import Client
from ._errors import ApiConnectionError, HttpApiError

__all__ = [
    "ApiConnectionError",
    "Auth",
    "BearerToken",
    "Client",
    "HttpApiError",
    "RunPage",
    "RunSummary",
    "SigV4Auth",
    "WorkflowInfo",
]
