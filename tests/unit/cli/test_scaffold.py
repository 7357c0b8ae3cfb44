"""``lambda-flow init``'s names and templates, rendered in memory."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from lambda_flow.cli._init import package_name, render_project
from lambda_flow.cli._session import CommandError


@pytest.mark.parametrize(
    ("name", "folder", "expected"),
    [
        (None, "shop", "shop"),
        (None, "my-shop", "my_shop"),
        (None, "Orders", "orders"),
        ("billing_v2", "whatever-folder", "billing_v2"),
    ],
)
def test_the_package_name_comes_from_name_or_the_folder(
    name: str | None, folder: str, expected: str
) -> None:
    assert package_name(name, Path("/somewhere") / folder) == expected


INVALID = ["", "Shop", "9lives", "my-shop", "a b", "class", "json", "tests", "lambda_flow"]
INVALID.append("x" * 41)


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_name_is_refused_naming_it(name: str) -> None:
    with pytest.raises(CommandError, match="invalid project name") as caught:
        package_name(name, Path("/somewhere/ok"))
    assert repr(name) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_folder_name_that_is_no_package_name_asks_for_name() -> None:
    with pytest.raises(CommandError, match="--name"):
        package_name(None, Path("/somewhere/2024 plans"))


def test_the_project_renders_with_every_placeholder_filled() -> None:
    files = render_project("shop")

    assert {
        ".gitignore", "Makefile", "README.md", "pyproject.toml", "requirements.txt",
        "requirements-dev.txt", "samconfig.toml", "template.yaml", "shop/__init__.py",
        "shop/app.py", "tests/test_app.py",
    } <= {path.as_posix() for path in files}  # fmt: skip
    for path, text in files.items():
        assert "${lf_" not in text, path
        assert not path.name.endswith(".tmpl"), path
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
    samconfig = tomllib.loads(files[PurePosixPath("samconfig.toml")])
    assert samconfig["default"]["global"]["parameters"]["stack_name"] == "shop"
    assert samconfig["default"]["build"]["parameters"]["build_in_source"] is True
    makefile = files[PurePosixPath("Makefile")]
    assert "APP_PACKAGES    ?= shop\n" in makefile
    assert "\tcp -R $(APP_PACKAGES)" in makefile  # make's $(...) left alone, recipes on tabs


def test_a_package_name_with_underscores_gives_a_stack_name_with_hyphens() -> None:
    samconfig = tomllib.loads(render_project("order_desk")[PurePosixPath("samconfig.toml")])

    assert samconfig["default"]["global"]["parameters"]["stack_name"] == "order-desk"
    assert samconfig["dev"]["global"]["parameters"]["stack_name"] == "order-desk-dev"
