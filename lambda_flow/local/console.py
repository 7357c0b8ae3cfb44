"""Readable local logs: what ``lambda-flow dev`` and ``invoke`` print while they work.

On Lambda the same records go out as powertools' JSON lines; on a laptop a person reads them,
so each record is one line (time, level, message, then its structured fields as ``key=value``,
run id and step first), with a failed attempt's stored traceback indented under it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_FIRST = ("run_id", "workflow", "step", "attempt", "kind", "status", "retrying", "error_type")


def _value(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


class ReadableFormatter(logging.Formatter):
    """One line per record: ``12:00:01.250 INFO  step attempt finished  run_id=... step=...``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a line (plus its traceback, indented, when it carries one)."""
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        trace = fields.pop("traceback", None)
        keys = [k for k in _FIRST if k in fields] + sorted(k for k in fields if k not in _FIRST)
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        head = f"{when} {record.levelname:<7} {record.getMessage()}"
        line = "  ".join([head, *(f"{k}={_value(fields[k])}" for k in keys)])
        if trace:
            line += "\n" + textwrap.indent(str(trace).rstrip(), "    ")
        if record.exc_info:
            line += "\n" + textwrap.indent(self.formatException(record.exc_info), "    ")
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current stderr; nothing to set."""


@contextlib.contextmanager
def log_to_console(level: int = logging.INFO, stream: TextIO | None = None) -> Iterator[None]:
    """Print lambda-flow's records readably while the block runs (on stderr by default).

    The ``lambda_flow`` logger's handlers, level and propagation are restored afterwards, so a
    command run in-process (tests, a notebook) leaves logging as it found it.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(ReadableFormatter())
    logger = logging.getLogger("lambda_flow")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, logger.level, logger.propagate = saved
