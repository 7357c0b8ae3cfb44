"""The Docker-free local runtime."""

DEFAULT_STEP_WORKERS = 10
"""Step jobs ``lambda-flow dev`` runs at once (as concurrent StepWorker invocations).

With chained steps a step worker carries its run from step to step, so this is also how many
runs advance at once. Measured with ``python -m bench dev-throughput`` on a 2-core machine,
4 to 32 workers all move about the same steps/s (the process and Postgres share both cores);
more workers only lengthen the step-to-step latency, and 10 lets a gather of ten RPC steps run
at once (docs/performance.md, "lambda-flow dev throughput (issue 14)")."""
DEFAULT_ORCHESTRATORS = 4
"""Orchestration passes ``lambda-flow dev`` runs at once (of different runs)."""
