"""Translate template.yaml to plain CloudFormation offline, with the SAM translator and no AWS calls.

Usable as a module (the infra tests) and as a script (`python -m tests.infra.translate -o FILE`),
which writes the translated template as JSON for checkov.
"""

import argparse
import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

# The parameters the template requires (no default), with values that satisfy their constraints.
REQUIRED_PARAMETERS: dict[str, str] = {
    "PceUrl": "https://pce.example.com:8443",
    "PceOrgId": "1",
    "PanosUrl": "https://panorama.example.com",
}


class OfflinePolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader, which would call IAM ListPolicies."""

    def load(self) -> dict[str, str]:
        raise RuntimeError("the template names a managed policy by name; use its ARN instead")


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A YAML loader that turns CloudFormation short-form tags (!Ref, !Sub, ...) into long form."""


def _construct_intrinsic(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in {"Ref", "Condition"} else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a template")
    return document


def _as_packaged(template: dict[str, Any]) -> dict[str, Any]:
    """Point local CodeUri/ContentUri at S3, as `sam package` would, so the transform accepts them."""
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://dagsync-artifacts/{logical_id}.zip"
    return template


def translate(
    parameters: Mapping[str, str] | None = None,
    template: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CloudFormation the SAM transform produces for `template` (default: template.yaml)."""
    values: dict[str, Any] = {**REQUIRED_PARAMETERS, **(parameters or {})}
    values.setdefault("AWS::Region", REGION)
    values.setdefault("AWS::AccountId", ACCOUNT_ID)
    values.setdefault("AWS::Partition", "aws")
    source = _as_packaged(copy.deepcopy(dict(template if template is not None else load_template())))
    # The translator reads the region from boto3's default session; both are put back after, so
    # translating leaves no trace on the process (tests that run the function share it).
    previous_region = os.environ.get("AWS_DEFAULT_REGION")
    previous_session = boto3.DEFAULT_SESSION
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        boto3.setup_default_session(region_name=REGION)
        translated: dict[str, Any] = transform(
            source, values, OfflinePolicyLoader(), passthrough_metadata=True
        )
        return translated
    finally:
        boto3.DEFAULT_SESSION = previous_session
        if previous_region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous_region


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the JSON template")
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="KEY=VALUE", help="parameter override"
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.parameter)
    translated = translate(overrides)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(translated, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
