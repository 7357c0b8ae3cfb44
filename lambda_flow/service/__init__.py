"""``WorkflowService``: the client API over the engine, the store and a driver."""

from ._service import WorkflowService

__all__ = ["WorkflowService"]
