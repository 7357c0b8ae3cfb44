"""Read CloudFormation templates and resolve them the way CloudFormation would, offline.

:func:`load_template` reads YAML with the short intrinsic tags (``!Ref``, ``!Sub``...) as their
long forms. :class:`Deployment` takes a (translated) template and parameter values, evaluates its
conditions and resolves intrinsic functions, each resource standing for a physical one: by default
a made-up but well-formed name, URL or ARN; tests that create real resources (in moto) record them
in :attr:`Deployment.physical` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "lambda-flow-test"


class _NoValue:
    """``AWS::NoValue``: the property it stands for is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# -- YAML --------------------------------------------------------------------------------------
class _TemplateLoader(yaml.SafeLoader):
    """A safe loader that reads ``!Ref x`` as ``{"Ref": "x"}`` and ``!Sub s`` as
    ``{"Fn::Sub": "s"}`` (likewise every other short form)."""


def _intrinsic(loader: _TemplateLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation or SAM template in YAML, intrinsic functions in their long form."""
    return dict(yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader))  # noqa: S506 - a SafeLoader subclass


# -- resolution ----------------------------------------------------------------------------------
def made_up_resource(logical_id: str, resource_type: str) -> dict[str, str]:
    """What ``Ref`` and ``GetAtt`` give for a resource of this stack: well-formed, made up."""
    name = f"{STACK}-{logical_id}"
    service = resource_type.split("::")[1].lower()
    if resource_type == "AWS::SQS::Queue":
        return {
            "Ref": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "QueueName": name,
        }
    if resource_type == "AWS::Scheduler::ScheduleGroup":
        return {"Ref": name, "Arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}"}
    if resource_type == "AWS::IAM::Role":
        return {"Ref": name, "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    if resource_type == "AWS::Lambda::Function":
        return {"Ref": name, "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"}
    if resource_type == "AWS::ApiGatewayV2::Api":
        return {
            "Ref": "a1b2c3d4e5",
            "ApiEndpoint": f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com",
        }
    return {"Ref": name, "Arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"}


@dataclass
class Deployment:
    """A translated template as CloudFormation would deploy it with ``parameters``.

    Args:
        template: plain CloudFormation (after SAM's transform).
        parameters: values for the template's parameters; the others take their defaults.
        physical: ``{logical_id: {"Ref": ..., "Arn": ..., ...}}`` for resources that exist
            somewhere (in moto); other resources get :func:`made_up_resource` values.
    """

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    physical: dict[str, dict[str, str]] = field(default_factory=dict)

    @cached_property
    def values(self) -> dict[str, str]:
        """Every parameter's value (as a string, as ``Ref`` gives it) and the pseudo ones."""
        declared = self.template.get("Parameters", {})
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise KeyError(f"not parameters of the template: {sorted(unknown)}")
        values = {
            name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec
        }
        values |= {name: str(value) for name, value in self.parameters.items()}
        missing = set(declared) - set(values)
        if missing:
            raise KeyError(f"parameters without a value: {sorted(missing)}")
        return values | {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resources(self, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
        """The resources this deployment creates (their conditions hold), of one type or all."""
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if (resource_type is None or resource["Type"] == resource_type)
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties with every intrinsic function resolved."""
        resolved = self.resolve(self.template["Resources"][logical_id].get("Properties", {}))
        assert isinstance(resolved, dict)
        return resolved

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        return self._physical(name)["Ref"]

    def attribute(self, logical_id: str, name: str) -> str:
        return self._physical(logical_id)[name]

    def _physical(self, logical_id: str) -> dict[str, str]:
        if logical_id in self.physical:
            return self.physical[logical_id]
        resource = self.template["Resources"][logical_id]
        return made_up_resource(logical_id, resource["Type"])

    def resolve(self, value: Any) -> Any:  # noqa: C901, PLR0912 - one branch per function
        """``value`` with every intrinsic function evaluated (``AWS::NoValue`` entries dropped)."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, name = (
                    argument if isinstance(argument, list) else argument.split(".", 1)
                )
                return self.attribute(logical_id, name)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                return self._substitute(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Equals":
                left, right = (str(self.resolve(side)) for side in argument)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(argument[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in argument)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in argument)
            if key == "Condition":
                return self.condition(argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _substitute(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        bound = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in bound:
                return str(bound[name])
            logical_id, dot, attribute = name.partition(".")
            if dot and logical_id in self.template["Resources"]:
                return str(self.attribute(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)
