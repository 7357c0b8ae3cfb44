"""Readable local logs (``lambda-flow dev``, ``invoke``): one line per record, fields after it."""

import io
import logging

from lambda_flow.local.console import ReadableFormatter, log_to_console


def test_a_record_reads_as_one_line_with_its_fields_run_and_step_first() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "step attempt finished",
            "levelname": "WARNING",
            "created": 0.0,
            "status": "failed",
            "step": "Send email",
            "run_id": "r-1",
            "zeta": 1,
            "traceback": "Traceback (most recent call last):\n  boom\nValueError: x\n",
        }
    )

    lines = ReadableFormatter().format(record).splitlines()

    assert lines[0].endswith(
        "WARNING step attempt finished  run_id=r-1  step='Send email'  status=failed  zeta=1"
    )
    assert lines[1:] == [
        "    Traceback (most recent call last):",
        "      boom",
        "    ValueError: x",
    ]


def test_log_to_console_prints_lambda_flows_records_and_restores_logging() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("lambda_flow")
    before = (logger.handlers[:], logger.level, logger.propagate)

    with log_to_console(stream=stream):
        logger.info("run finished", extra={"run_id": "r-2", "status": "completed"})
    logger.info("after the block")

    assert "INFO    run finished  run_id=r-2  status=completed" in stream.getvalue()
    assert "after the block" not in stream.getvalue()
    assert (logger.handlers, logger.level, logger.propagate) == before
