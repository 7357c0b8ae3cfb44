from lambda_flow import Flow, RunStatus, WorkflowContext, WorkflowService


def test_sequential_steps_complete(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def two(wf: WorkflowContext, data: dict) -> int:
        a = await wf.do("a", lambda: data["x"] + 1)
        return await wf.do("b", lambda: a * 2)

    run_id = service.start("two", {"x": 1})
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == 4
