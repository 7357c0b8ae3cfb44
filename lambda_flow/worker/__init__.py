"""What drives passes and steps.

The inline and remote drivers, the step runner, and the dispatcher that turns queue messages
(and sweeps) into engine work.

The Lambda handlers (:mod:`lambda_flow.aws`) and ``lambda-flow dev`` (:mod:`lambda_flow.local`)
are thin loops over a :class:`Dispatcher`.
"""

from ._dispatcher import Body, Dispatcher, SweepReport
from ._drivers import InlineDriver, RemoteDriver, driver_for
from ._runner import JobResult, StepRunner
from ._serviced import Serviced

__all__ = [
    "Body",
    "Dispatcher",
    "InlineDriver",
    "JobResult",
    "RemoteDriver",
    "Serviced",
    "StepRunner",
    "SweepReport",
    "driver_for",
]
