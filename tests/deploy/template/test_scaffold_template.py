"""``lambda-flow init``'s template.yaml is this repository's, but for where the code comes from.

The project ``init`` writes deploys the same stack as ``template.yaml`` here: the same parameters,
resources, routes, handlers, permissions and outputs. Only the app's default, descriptions and
service names differ (and the build: there lambda-flow comes from ``requirements.txt``, in the
layer). When this test fails after a change to ``template.yaml``, make the same change in
``lambda_flow/cli/scaffold/template.yaml.tmpl``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from lambda_flow.cli._init import render_project
from tests import ROOT
from tests.deploy.template.stack import load_template

SCAFFOLD_TEMPLATE = "lambda_flow/cli/scaffold/template.yaml.tmpl"


def _normalized(template: dict[str, Any]) -> dict[str, Any]:
    """The template without what may differ: descriptions, the app's default, service names."""
    template = copy.deepcopy(template)
    template.pop("Description", None)
    for parameter in template["Parameters"].values():
        parameter.pop("Description", None)
    template["Parameters"]["AppModule"].pop("Default")
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        properties.pop("Description", None)
        for event in properties.get("Events", {}).values():
            event.get("Properties", {}).pop("Description", None)
        variables = properties.get("Environment", {}).get("Variables", {})
        variables.pop("POWERTOOLS_SERVICE_NAME", None)
    for output in template["Outputs"].values():
        output.pop("Description", None)
    return template


def test_the_scaffold_deploys_the_same_stack_as_this_repository(tmp_path: Path) -> None:
    rendered = tmp_path / "template.yaml"
    rendered.write_text(render_project("shop")[Path("template.yaml")], encoding="utf-8")
    ours = load_template(ROOT / "template.yaml")
    theirs = load_template(rendered)

    assert theirs["Parameters"]["AppModule"]["Default"] == "shop.app:flow"
    for section in ("Parameters", "Resources", "Outputs", "Conditions", "Rules", "Globals"):
        assert _normalized(theirs).get(section) == _normalized(ours).get(section), (
            f"{section} differ: make the change to template.yaml in {SCAFFOLD_TEMPLATE} too"
        )
    assert _normalized(theirs) == _normalized(ours)
