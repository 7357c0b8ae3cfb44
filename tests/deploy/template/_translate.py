"""Translate a SAM template to plain CloudFormation with aws-sam-translator, offline.

Run by the tests with the SAM CLI's Python (``.venv-sam/bin/python``): aws-sam-translator pins
pydantic to one minor version, so it lives beside the SAM CLI instead of in the project's venv.

    python tests/deploy/_translate.py TEMPLATE [PARAMETERS_JSON] > translated.json

Local code locations (``CodeUri: .``) become S3 URIs, as ``sam package`` would make them. No AWS
call is made: managed policies are referred to by ARN in the template (SAM only looks
names up for bare policy names), and the region comes from ``AWS_DEFAULT_REGION``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class _NoManagedPolicies:
    """The translator's managed-policy lookup, answered without IAM."""

    def load(self) -> dict[str, str]:
        return {}


_PACKAGED = "s3://packaged-by-sam/artifact.zip"


def _as_packaged(sam: dict[str, Any]) -> dict[str, Any]:
    """Point local CodeUri/ContentUri at S3, as ``sam package`` does before the transform."""
    function_globals = sam.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = _PACKAGED
    for resource in sam.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            value = properties.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[key] = _PACKAGED
    return sam


def translate(template: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template ``template`` becomes once SAM's transform has run."""
    sam = _as_packaged(yaml_parse(template.read_text(encoding="utf-8")))
    return dict(transform(sam, parameters, _NoManagedPolicies()))


def main(argv: list[str]) -> int:
    parameters = json.loads(argv[2]) if len(argv) > 2 else {}
    json.dump(translate(Path(argv[1]), parameters), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
