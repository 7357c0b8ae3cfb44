"""The test suite: tests/<kind>/<area>/ (unit, functional, e2e, deploy)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root."""
