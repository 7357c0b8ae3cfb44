"""The public names are a contract: changing this list is a decision, not an accident."""

import importlib
import inspect

import pytest

import lambda_flow
from lambda_flow import RunStatus, StepStatus, WorkflowContext, WorkflowService

EXPECTED = {
    "AccessRequest", "Caller",
    "ConfigurationError", "Duration", "ErrorInfo", "Flow", "FunctionNotFound", "InvalidDuration",
    "InvalidInput", "InvalidRunState", "LambdaFlowError", "LeaseLost", "NonDeterminismError",
    "IdempotencyConflict", "InputTooLarge", "UnstorableInput",
    "NonRetryableError", "PostgresStore", "Run", "RunCancelled", "RunFailed", "RunNotFound",
    "RunStatus", "RunSuspended", "RunTimedOut", "StepAttempt", "StepFailed", "StepInfo",
    "StepInterrupted",
    "StepKind", "StepStatus", "StoreUnavailable", "WorkflowContext", "WorkflowNotFound",
    "WorkflowService",
    "current_step", "parse_duration",
    "GraphDefinitionError", "GraphInputError", "branch", "ref",
    # issue 12: waiting on the outside world, bounding the time
    "Callback", "CallbackConflict", "CallbackFailed", "CallbackNotFound", "CallbackTimedOut",
    "ConditionNotMet", "InvalidOption", "RetryPolicy", "RunDeadlineExceeded", "StepTimedOut",
    "WorkflowCancelled",
    # issue 13: scopes, map and parallel
    "BatchFailed", "BatchResult", "Completion",
    # issue 13: child workflows
    "ChildFailed", "ChildRun",
}  # fmt: skip


def test_exports_are_pinned() -> None:
    assert set(lambda_flow.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(lambda_flow, name), name


def test_status_values_are_the_design_words() -> None:
    assert [s.value for s in RunStatus] == [
        "running", "suspended", "completed", "failed", "cancelled",
    ]  # fmt: skip
    assert [s.value for s in StepStatus] == [
        "pending", "scheduled", "running", "succeeded", "failed", "cancelled",
    ]  # fmt: skip


def test_service_and_context_signatures() -> None:
    start = inspect.signature(WorkflowService.start)
    assert list(start.parameters) == ["self", "name", "input", "idempotency_key", "run_timeout"]
    assert start.parameters["idempotency_key"].kind is inspect.Parameter.KEYWORD_ONLY
    assert start.parameters["run_timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    rtc = inspect.signature(WorkflowService.run_to_completion)
    assert rtc.parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert rtc.parameters["run_timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    cancel = inspect.signature(WorkflowService.cancel)
    assert list(cancel.parameters) == ["self", "run_id", "reason", "cleanup_timeout"]
    assert cancel.parameters["cleanup_timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    do = inspect.signature(WorkflowContext.do)
    assert list(do.parameters) == [
        "self", "name", "target", "data", "retries", "retry_delay", "retry", "timeout",
        "at_most_once",
    ]  # fmt: skip
    for option in ("retries", "retry_delay", "retry", "timeout", "at_most_once"):
        assert do.parameters[option].kind is inspect.Parameter.KEYWORD_ONLY
    assert do.parameters["retries"].default is None  # given or not: conflicts with retry=
    assert do.parameters["at_most_once"].default is False
    for method in ("get_run", "get_run_history", "list_runs", "resume", "cancel"):
        assert callable(getattr(WorkflowService, method))
    for method in ("do", "sleep", "suspend", "cancel"):
        assert inspect.iscoroutinefunction(getattr(WorkflowContext, method))


def test_control_signals_escape_except_exception() -> None:
    from lambda_flow.core import CancelSignal, EngineSignal, SuspendSignal

    for signal in (EngineSignal, CancelSignal, SuspendSignal):
        assert not issubclass(signal, Exception)
    assert issubclass(lambda_flow.LambdaFlowError, Exception)


PACKAGE_SURFACES = {
    "lambda_flow.core": {
        "ANY_CODEC", "AccessRequest", "Caller", "CancelSignal", "Clock", "Codec",
        "ConfigurationError", "DEFAULT_DATA_DIR", "DEFAULT_SCHEMA", "Duration", "ENV_APP",
        "ENV_DATABASE_URL", "ENV_DATA_DIR", "ENV_HOME", "ENV_SCHEMA", "EngineSignal",
        "ErrorInfo",
        "FunctionNotFound", "InvalidDuration", "InvalidInput", "InvalidMessage", "InvalidRunState",
        "LambdaFlowError", "LeaseLost", "MAX_DURATION", "NonDeterminismError", "NonRetryableError",
        "Run", "RunCancelled", "RunFailed", "RunNotFound", "RunStatus", "RunSuspended",
        "RunTimedOut", "StepAttempt", "StepFailed", "StepInterrupted", "StepKind", "StepStatus",
        "StoreUnavailable", "SuspendSignal", "SystemClock", "WorkflowNotFound", "codec_for",
        "parse_duration", "resolve_hints", "run_sync", "run_on_thread_loop", "setting",
        "RawJson", "plain",
        "CallbackConflict", "CallbackFailed", "CallbackNotFound", "CallbackTimedOut",
        "ConditionNotMet", "InvalidOption", "RunDeadlineExceeded", "StepTimedOut",
        "WorkflowCancelled", "PendingItem",
        "IdempotencyConflict", "InputTooLarge", "UnstorableInput", "MAX_INPUT_BYTES",
        "RunPage", "RunSummary", "WorkflowInfo", "SchemaMode", "check_input", "check_storable",
        "json_schemas", "json_size",
        "BatchFailed", "ChildFailed",
    },
    "lambda_flow.engine": {
        "Callback", "Driver", "Engine", "FORMAT", "RetryPolicy", "Flow", "FunctionDef",
        "LoggingObserver", "Observer",
        "OrchestrationPass", "StepInfo", "StepSpec", "WorkflowContext", "WorkflowDef",
        "current_step", "export_run", "fixed_policy_json", "load_flow", "next_delay_by_json",
        "parse_timeout", "replay_history", "run_fields", "running_step", "step_fields",
        "step_policy", "within",
        "BatchResult", "Completion", "ChildRun", "Chain",
    },
    "lambda_flow.worker": {
        "Body", "Dispatcher", "InlineDriver", "JobResult", "RemoteDriver", "Serviced",
        "StepRunner", "SweepReport", "driver_for",
    },
    "lambda_flow.service": {"WorkflowService"},
    "lambda_flow.testing": {
        "CrashBeforeWrite", "ServiceFactory", "SimulatedCrash", "TimeSkippingClock",
        "replay_history",
    },
    "lambda_flow.graph": {
        "Flow", "Graph", "GraphDefinitionError", "GraphInputError", "GraphNode", "NodeConfig",
        "Ref", "branch", "define_graph", "ref",
    },
    "lambda_flow.cli": {"main"},
    "lambda_flow.client": {
        "ApiConnectionError", "Auth", "BearerToken", "Client", "HttpApiError", "RunPage",
        "RunSummary", "SigV4Auth", "WorkflowInfo",
    },
    "lambda_flow.testing.plugin": {"lf_clock", "lf_database_url", "lf_service"},
    # issue 15: the web console and the per-run cost model
    "lambda_flow.console": {
        "CONTENT_SECURITY_POLICY", "Console", "ConsoleError", "ConsoleRequest", "ConsoleResponse",
        "CostModel", "RunCost", "RunCounts", "count_run", "permits", "run_cost",
    },
    # issue 16: workflows as tools for AI agents
    "lambda_flow.agents": {
        "DEFAULT_WAIT", "RUN_TOOL_NAMES", "AgentTools", "HttpAnswer", "ToolDef", "ToolFormat",
        "ToolResult",
        "call_tool", "handle_http", "mcp_server", "serve_http", "serve_stdio", "tool_specs",
    },
}  # fmt: skip


def test_agent_tool_signatures() -> None:
    """Issue 16's names: ``@flow.workflow(tool=False)``, ``flow.tool_specs(format=...)``,
    ``flow.call_tool(name, arguments)``; ``WorkflowService.wait`` backs ``get_run``'s wait."""
    from lambda_flow.engine import Flow

    assert inspect.signature(Flow.workflow).parameters["tool"].default is True
    specs = inspect.signature(Flow.tool_specs)
    assert list(specs.parameters)[:2] == ["self", "format"]
    assert specs.parameters["format"].default == "mcp"
    call = inspect.signature(Flow.call_tool)
    assert list(call.parameters)[:3] == ["self", "name", "arguments"]
    for option in ("service", "caller", "wait", "idempotency_key"):
        assert call.parameters[option].kind is inspect.Parameter.KEYWORD_ONLY
    wait = inspect.signature(WorkflowService.wait)
    assert wait.parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("package", sorted(PACKAGE_SURFACES))
def test_each_public_package_surface_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PACKAGE_SURFACES[package]
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"


def test_the_top_level_names_are_the_parts_own() -> None:
    import lambda_flow.core
    import lambda_flow.graph

    assert lambda_flow.Flow is lambda_flow.graph.Flow
    assert lambda_flow.RunStatus is lambda_flow.core.RunStatus
    assert lambda_flow.WorkflowService.__module__.startswith("lambda_flow.service")
