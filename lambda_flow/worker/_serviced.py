"""What workers need of a service: its engine (so the worker layer never imports the service)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..engine import Engine


class Serviced(Protocol):
    """Anything with an :class:`~lambda_flow.engine.Engine`: a ``WorkflowService``."""

    @property
    def engine(self) -> Engine:
        """The engine whose runs are driven."""
        ...
