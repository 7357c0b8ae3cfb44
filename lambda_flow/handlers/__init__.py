"""The AWS Lambda entry points, one module per function: ``lambda_flow/handlers/<name>.handler``.

Point a SAM or CloudFormation ``Handler`` at them (``lambda_flow/handlers/api.handler``). Each
module builds its function's runtime at import (a cold start), so this package imports none of
them.

In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) a cold start runs without the cyclic garbage
collector: its passes over the ~90,000 objects the imports and the setup build were ~10% of the
cold start, and there is no cyclic garbage there to find. At its end the handler module freezes
what it built (:func:`gc.freeze`: the collector never scans those objects again, they live as
long as the process) and turns the collector back on, so later collections cost what the
invocations allocate.
"""

import gc
import os

COLD_START_WITHOUT_GC = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
if COLD_START_WITHOUT_GC:
    gc.disable()


def cold_start_done() -> None:
    """End of a handler module's cold start: freeze what it built, collect again from now on."""
    if COLD_START_WITHOUT_GC and not gc.isenabled():
        gc.freeze()
        gc.enable()
