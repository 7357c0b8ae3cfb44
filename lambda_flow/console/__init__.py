"""The web console (issue 15): runs, a live step timeline, run actions and per-run cost.

Served by the HTTP API's resolver under ``/console`` (``lambda-flow dev``, the Api function on
AWS, under the API's own auth) and alone by ``lambda-flow console``. Server-rendered HTML
(Jinja2, autoescaped) with one stylesheet and one small script of our own shipped in the
wheel: no build step, no CDN, a strict Content-Security-Policy. docs/console.md has the design.

Nothing here is imported by the API until a console route is asked for, so the Api function's
cold start does not pay for it.
"""

from ._app import Console, permits
from ._cost import CostModel, RunCost, RunCounts, count_run, run_cost
from ._http import CONTENT_SECURITY_POLICY, ConsoleError, ConsoleRequest, ConsoleResponse

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "Console",
    "ConsoleError",
    "ConsoleRequest",
    "ConsoleResponse",
    "CostModel",
    "RunCost",
    "RunCounts",
    "count_run",
    "permits",
    "run_cost",
]
