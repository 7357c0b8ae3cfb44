"""The pieces behind the Lambda entry points in ``handlers/``.

Settings, a per-process runtime, the HTTP API, the queue workers and the sweeper.
"""
