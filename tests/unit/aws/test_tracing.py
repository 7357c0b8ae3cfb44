"""With tracing off, handlers must not pay for importing the X-Ray SDK."""

import subprocess
import sys

from lambda_flow.aws.tracing import NoTracer, tracing_enabled


def test_the_powertools_switch_is_honoured() -> None:
    assert tracing_enabled({})
    assert tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "false"})
    assert not tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "1"})


def test_the_stand_in_decorates_and_opens_subsegments_as_a_no_op() -> None:
    tracer = NoTracer()

    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: int, context: object) -> int:
        return event + 1

    with tracer.provider.in_subsegment(name="## step") as segment:
        segment.put_annotation(key="run_id", value="r")
    assert handler(1, None) == 2
    assert tracer.capture_lambda_handler(handler) is handler


def _xray_imported(disabled: str) -> bool:
    code = (
        "import sys; from lambda_flow.aws.tracing import make_tracer; make_tracer('s');"
        "print('aws_xray_sdk.core' in sys.modules)"
    )
    env = {
        "POWERTOOLS_TRACE_DISABLED": disabled,
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip() == "True"


def test_x_ray_is_imported_only_when_tracing_is_on() -> None:
    assert _xray_imported("false")
    assert not _xray_imported("true")
