"""The engine: defining workflows and running their passes by replay.

The :class:`Flow` registry, :class:`WorkflowContext` and its primitives, the replay pass,
recorded histories, the observer, the retry decision and the :class:`Driver` interface behind
inline and remote mode.

It builds on :mod:`lambda_flow.core`, :mod:`lambda_flow.store` and :mod:`lambda_flow.transport`;
what drives passes and steps lives in :mod:`lambda_flow.worker`.
"""

from ._app import load_flow
from ._batch import BatchResult, Completion
from ._callback import Callback
from ._child import ChildRun
from ._context import StepInfo, WorkflowContext, current_step, running_step
from ._driver import Driver
from ._engine import Chain, Engine
from ._flow import Flow, FunctionDef, WorkflowDef
from ._history import FORMAT, export_run, replay_history
from ._observe import LoggingObserver, Observer, run_fields, step_fields
from ._replay import OrchestrationPass, StepSpec
from ._retry import RetryPolicy, fixed_policy_json, next_delay_by_json, step_policy
from ._timeout import parse_timeout, within

__all__ = [
    "FORMAT",
    "BatchResult",
    "Callback",
    "Chain",
    "ChildRun",
    "Completion",
    "Driver",
    "Engine",
    "Flow",
    "FunctionDef",
    "LoggingObserver",
    "Observer",
    "OrchestrationPass",
    "RetryPolicy",
    "StepInfo",
    "StepSpec",
    "WorkflowContext",
    "WorkflowDef",
    "current_step",
    "export_run",
    "fixed_policy_json",
    "load_flow",
    "next_delay_by_json",
    "parse_timeout",
    "replay_history",
    "run_fields",
    "running_step",
    "step_fields",
    "step_policy",
    "within",
]
