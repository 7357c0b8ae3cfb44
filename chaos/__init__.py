"""The project's own chaos suite: the real handlers in separate processes, faults injected.

``python -m chaos [--quick] [--seed N]`` (or ``make chaos`` / ``make chaos-quick``) starts a
private Postgres and a moto server, deploys :mod:`chaos.app` behind the real handler modules
(``lambda_flow/handlers/orchestrator.py``, ``step_worker.py``, ``sweeper.py``, ``api.py``) in
worker processes of their own (:mod:`chaos.worker`), injects one kind of fault per scenario
(:mod:`chaos.scenarios`) and audits every run afterwards (:mod:`chaos.figures`). It exits
non-zero when a figure misses its target.
"""
