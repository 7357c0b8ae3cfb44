"""Which engine the suite runs: this checkout, or another folder (``--engine``).

The project's editable install puts a finder for ``lambda_flow`` ahead of ``PYTHONPATH``; to run
another checkout's ``lambda_flow/`` (and its ``handlers/``, from before they moved into the
package; a ``git worktree`` of another commit), a process drops that finder and puts the folder
first, before anything imports the engine.
"""

from __future__ import annotations

import sys

ENV_ENGINE_ROOT = "CHAOS_ENGINE_ROOT"


def _editable(finder: object) -> bool:
    kind = finder if isinstance(finder, type) else type(finder)
    return kind.__module__.startswith("__editable__")


def use_engine(root: str | None) -> None:
    """Import ``lambda_flow`` (and an old ``handlers``) from ``root`` here (None: as installed)."""
    if not root:
        return
    sys.meta_path[:] = [finder for finder in sys.meta_path if not _editable(finder)]
    sys.path.insert(0, root)
