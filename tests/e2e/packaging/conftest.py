"""The wheel and sdist, built once per session, and a virtualenv outside the repository that
installs the wheel as another project would (``lambda-flow[local]`` and pytest).

pip reuses its cache (and ``PIP_FIND_LINKS``, which gets the session's wheelhouse in front), so
after the first session the install takes seconds; the first needs PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import ROOT

BUILD_TIMEOUT = 300  # seconds; building needs setuptools from PyPI (or pip's cache)
INSTALL_TIMEOUT = 600  # a cold cache downloads ~40 MB of wheels
KEEP_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
            "PIP_CONFIG_FILE", "PIP_CERT", "PIP_DEFAULT_TIMEOUT", "SSL_CERT_FILE")  # fmt: skip


def run(
    args: list[str | Path], *, env: Mapping[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a program of ours; its output captured, its exit code left to the caller."""
    return subprocess.run(  # noqa: S603 - our own tools, argument lists
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        check=False,
        env=dict(env) if env is not None else None,
        **kwargs,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a process outside this repository's venv: no PYTHONPATH, no
    ``LAMBDA_FLOW_*`` setting of this session, pip's settings kept."""
    env = {name: os.environ[name] for name in KEEP_ENV if name in os.environ}
    return env | {"PYTHONDONTWRITEBYTECODE": "1"} | extra


@dataclass(frozen=True)
class Wheelhouse:
    """The session's ``python -m build`` output."""

    folder: Path
    wheel: Path
    sdist: Path

    def pip_env(self, **extra: str) -> dict[str, str]:
        """:func:`clean_env` with this wheelhouse first in ``PIP_FIND_LINKS``."""
        links = " ".join(filter(None, [str(self.folder), os.environ.get("PIP_FIND_LINKS")]))
        return clean_env(PIP_FIND_LINKS=links, **extra)


@dataclass(frozen=True)
class InstalledVenv:
    """A virtualenv outside the repository with the wheel installed (``[local]``, pytest)."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.root / "bin" / "lambda-flow"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """``python -m build`` (sdist, then the wheel from it) of a copy of the sources, so the
    working tree gets no build folders."""
    pytest.importorskip("build", reason="`build` is in the dev extra: pip install -e '.[dev]'")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "lambda_flow",
        source / "lambda_flow",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    folder = tmp_path_factory.mktemp("wheelhouse")
    built = run(
        [sys.executable, "-m", "build", "--outdir", folder, source],
        env=clean_env(),
        timeout=BUILD_TIMEOUT,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    [wheel] = folder.glob("lambda_flow-*-py3-none-any.whl")
    [sdist] = folder.glob("lambda_flow-*.tar.gz")
    return Wheelhouse(folder, wheel, sdist)


@pytest.fixture(scope="session")
def installed(wheelhouse: Wheelhouse, tmp_path_factory: pytest.TempPathFactory) -> InstalledVenv:
    """A fresh venv (in the temp folder, outside the repository) with ``wheel[local]`` and
    pytest installed from the wheel file, as a user's project would."""
    venv = InstalledVenv(tmp_path_factory.mktemp("user-project") / ".venv")
    made = run([sys.executable, "-m", "venv", venv.root], env=clean_env(), timeout=120)
    assert made.returncode == 0, made.stderr
    pip = run(
        [venv.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"{wheelhouse.wheel}[local]", "pytest"],
        env=wheelhouse.pip_env(),
        timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-4000:] + pip.stderr[-4000:]
    return venv
