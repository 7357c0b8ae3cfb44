"""Import one function's handler the way the Lambda Python runtime does, and call it on events.

Run by the tests in a fresh interpreter whose environment is what the template gives the
function, with the built artifact (or the source tree) as the working directory and only entry
of ``PYTHONPATH``:

    python tests/deploy/_invoke.py HANDLER OUT.json EVENT.json [EVENT.json ...]

``HANDLER`` is the template's ``Handler`` (``lambda_flow/handlers/api.handler``). Importing the
module builds the function's runtime (settings, database, queues) as a cold start would.
``OUT.json`` receives ``{"modules": {name: file}, "responses": [...]}``; stdout is left to the
function's logs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any


class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def main(argv: list[str]) -> int:
    handler_spec, out, *events = argv[1:]
    module_path, _, function_name = handler_spec.rpartition(".")
    module = importlib.import_module(module_path.replace("/", "."))  # as the runtime does
    handler = getattr(module, function_name)
    if not callable(handler):
        raise TypeError(f"{handler_spec} is not callable")
    context = LambdaContext(module.__name__.rsplit(".", 1)[-1])
    responses: list[Any] = []
    for path in events:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
        responses.append(handler(event, context))
    app_module = os.environ.get("LAMBDA_FLOW_APP", "").partition(":")[0]
    modules = {  # where the code came from: the artifact, not the project's venv
        name: str(sys.modules[name].__file__)
        for name in (module.__name__, "lambda_flow", app_module)
        if name in sys.modules
    }
    Path(out).write_text(
        json.dumps({"modules": modules, "responses": responses}, default=str), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
