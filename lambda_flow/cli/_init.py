"""The ``init`` command: a project of its own that builds, tests and deploys on lambda-flow.

``lambda-flow init DIR [--name NAME]`` writes an app package with one workflow, its tests (on
the pytest plugin), sample events, and a SAM application (``template.yaml``, ``samconfig.toml``,
a ``Makefile`` for ``sam build``) whose functions run the handlers shipped in this package
(``lambda_flow/handlers/<name>.handler``), installed from ``requirements.txt`` into a layer.

The files are package data (``lambda_flow/cli/scaffold/``), rendered with
:class:`string.Template`: ``${lf_name}``, ``${lf_package}``, ``${lf_stack}`` and ``${lf_version}``
are replaced and every other ``$`` is left as it is (CloudFormation's ``${AWS::Region}``, make's
``$(VAR)``). In the scaffold's paths, ``package/`` becomes the package's folder, ``dot-`` a
leading dot, and the ``.tmpl`` suffix (which keeps the templates out of linters and type checks)
is dropped.
"""

from __future__ import annotations

import keyword
import re
import sys
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from string import Template

from ._session import EXIT_OK, AddCommand, CommandError, Session

SCAFFOLD = "scaffold"
"""The folder of ``lambda_flow.cli`` holding the project's templates."""
PACKAGE_FOLDER = "package"
"""The scaffold's folder that becomes the app package's."""
SUFFIX = ".tmpl"
DOT = "dot-"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TAKEN = frozenset(
    {
        "lambda_flow",  # what the functions import the handlers from
        "tests",
        "events",
        "aws_lambda_powertools",
        "boto3",
        "botocore",
        "psycopg",
        "psycopg_pool",
        "pydantic",
        "pytest",
    }
)
"""Package names the project's own package would shadow, or folders it already has."""


def package_name(name: str | None, directory: Path) -> str:
    """The app package's name: ``name``, else the folder's name with ``-`` as ``_``.

    Args:
        name: ``--name`` as given, or None.
        directory: the project's folder.

    Raises:
        CommandError: the name is not a lowercase Python identifier of at most 40 characters,
            or it would shadow a module the project imports.
    """
    candidate = name if name is not None else directory.resolve().name.lower().replace("-", "_")
    hint = "" if name is not None else " (from the folder's name; pass --name NAME)"
    if not _NAME.match(candidate) or keyword.iskeyword(candidate):
        raise CommandError(
            f"invalid project name {candidate!r}{hint}: use lowercase letters, digits and "
            "underscores, starting with a letter, at most 40 characters"
        )
    if candidate in _TAKEN or candidate in sys.stdlib_module_names:
        raise CommandError(
            f"invalid project name {candidate!r}{hint}: it would shadow the module of that name"
        )
    return candidate


def _lambda_flow_version() -> str:
    try:
        return metadata.version("lambda-flow")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0.1.0"


def _templates(folder: Traversable, under: PurePosixPath) -> list[tuple[PurePosixPath, str]]:
    """Every template below ``folder``: (its path in the scaffold, its text), sorted."""
    found: list[tuple[PurePosixPath, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        path = under / entry.name
        if entry.is_dir():
            found += _templates(entry, path)
        elif entry.name.endswith(SUFFIX):
            found.append((path, entry.read_text(encoding="utf-8")))
    return found


def _target(path: PurePosixPath, package: str) -> PurePosixPath:
    """Where a scaffold file goes in the project."""
    parts = list(path.parts)
    if parts[0] == PACKAGE_FOLDER:
        parts[0] = package
    last = parts[-1].removesuffix(SUFFIX)
    parts[-1] = "." + last.removeprefix(DOT) if last.startswith(DOT) else last
    return PurePosixPath(*parts)


def render_project(package: str) -> dict[PurePosixPath, str]:
    """The project's files for the package ``package``: relative path to text.

    Args:
        package: the app package's name (checked with :func:`package_name`).
    """
    values = {
        "lf_name": package,
        "lf_package": package,
        "lf_stack": package.replace("_", "-"),
        "lf_version": _lambda_flow_version(),
    }
    root = resources.files("lambda_flow.cli").joinpath(SCAFFOLD)
    return {
        _target(path, package): Template(text).safe_substitute(values)
        for path, text in _templates(root, PurePosixPath())
    }


def _check_empty(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise CommandError(f"{directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()):
        raise CommandError(f"{directory} is not empty: init writes into a new or empty folder")


def _cmd_init(session: Session) -> int:
    directory = Path(session.args.directory)
    _check_empty(directory)
    package = package_name(session.args.name, directory)
    files = render_project(package)  # everything rendered before anything is written
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"created {directory}/ ({len(files)} files; the Flow is {package}.app:flow). Next:")
    print(f"  cd {directory}")
    print("  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt")
    print("  .venv/bin/pytest")
    print("  sam build && sam deploy --guided")
    return EXIT_OK


def add_init(command: AddCommand) -> None:
    """Add ``init DIR [--name NAME]``."""
    init = command(
        "init",
        _cmd_init,
        "create a project (a workflow, its tests, a SAM template) that deploys on lambda-flow",
    )
    init.add_argument("directory", metavar="DIR", help="a new or empty folder")
    init.add_argument(
        "--name",
        help="the app package's name (default: DIR's name with - as _); the stack's, with _ as -",
    )
