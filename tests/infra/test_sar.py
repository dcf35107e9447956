"""The template can be published to the Serverless Application Repository as it stands."""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.infra.translate import ROOT

# The rules `sam publish` and the repository's CreateApplication API apply to the metadata.
NAME = re.compile(r"[A-Za-z0-9-]{1,140}")
AUTHOR = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]")
LABEL = re.compile(r"[A-Za-z0-9+\-_:/@]{1,127}")
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


@pytest.fixture(scope="module")
def application(source: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = source["Metadata"]["AWS::ServerlessRepo::Application"]
    return metadata


def test_metadata_has_every_field_publishing_needs(application: dict[str, Any]) -> None:
    required = {
        "Name",
        "Description",
        "Author",
        "SpdxLicenseId",
        "LicenseUrl",
        "ReadmeUrl",
        "SemanticVersion",
    }
    assert required <= set(application)


def test_metadata_uses_no_intrinsic_function(application: dict[str, Any]) -> None:
    assert all(isinstance(value, str | list) for value in application.values())


def test_name_and_author_follow_the_repositorys_patterns(application: dict[str, Any]) -> None:
    assert NAME.fullmatch(application["Name"])
    assert AUTHOR.fullmatch(application["Author"]) and len(application["Author"]) <= 127


def test_description_fits_the_repositorys_limit(application: dict[str, Any]) -> None:
    assert 1 <= len(application["Description"]) <= 256


def test_labels_are_at_most_ten_valid_labels(application: dict[str, Any]) -> None:
    labels = application["Labels"]
    assert len(labels) <= 10
    assert [label for label in labels if not LABEL.fullmatch(label)] == []


def test_license_is_apache_2_and_ships_with_the_template(application: dict[str, Any]) -> None:
    license_text = (ROOT / application["LicenseUrl"]).read_text(encoding="utf-8")
    assert application["SpdxLicenseId"] == "Apache-2.0"
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


def test_readme_ships_with_the_template(application: dict[str, Any]) -> None:
    assert (ROOT / application["ReadmeUrl"]).is_file()


def test_semantic_version_is_the_projects_version(application: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert SEMVER.fullmatch(application["SemanticVersion"])
    assert application["SemanticVersion"] == project["version"]


# The repository's list of supported resource types, with its source.
SUPPORTED_TYPES = frozenset(
    line.strip()
    for line in (Path(__file__).with_name("sar_supported_types.txt")).read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)
# The documented exceptions: types the template uses that are not on that list (neither the
# EventBridge Scheduler nor Secrets Manager appears in its last public source). README
# "Operator's guide" (2. Deploy) says what a repository user does instead of each.
NOT_LISTED = frozenset({"AWS::Scheduler::Schedule", "AWS::SecretsManager::Secret"})
# The capabilities a deployer acknowledges, by the resource types that need them (the guide's
# "Acknowledging Application Capabilities"; AWS::IAM::RolePolicy needs CAPABILITY_IAM in CloudFormation).
CAPABILITIES = {
    "CAPABILITY_IAM": {
        "AWS::IAM::Group",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::IAM::RolePolicy",
    },
    "CAPABILITY_RESOURCE_POLICY": {
        "AWS::Lambda::LayerVersionPermission",
        "AWS::Lambda::Permission",
        "AWS::Events::EventBusPolicy",
        "AWS::IAM::Policy",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    },
    "CAPABILITY_AUTO_EXPAND": {"AWS::Serverless::Application"},
}
# The README's sentence naming them: "must acknowledge `CAPABILITY_A` and `CAPABILITY_B`".
ACKNOWLEDGED = re.compile(r"must\s+acknowledge\s+((?:`CAPABILITY_\w+`(?:,?\s+and\s+|,\s+)?)+)")
IAM_NAMES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
}


def resource_types(source: dict[str, Any]) -> set[str]:
    """Every type the template declares, whatever its condition: the repository checks them all
    [unverified that it skips none behind a condition, so none is assumed skipped]."""
    return {resource["Type"] for resource in source["Resources"].values()}


def publishing_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("**Publishing to the Serverless Application Repository.**")
    return readme[start : readme.index("\n### ", start)]


def test_every_resource_type_is_on_the_repository_s_list_or_named_in_the_readme(
    source: dict[str, Any],
) -> None:
    assert resource_types(source) - SUPPORTED_TYPES <= NOT_LISTED


def test_the_readme_says_what_to_do_instead_of_each_type_not_on_the_list(source: dict[str, Any]) -> None:
    section = publishing_section()
    assert [name for name in sorted(resource_types(source) & NOT_LISTED) if f"`{name}`" not in section] == []


def test_no_iam_resource_has_a_custom_name_so_named_iam_is_not_needed(source: dict[str, Any]) -> None:
    named = [
        logical_id
        for logical_id, resource in source["Resources"].items()
        if IAM_NAMES.get(resource["Type"]) in resource.get("Properties", {})
    ]
    assert named == []


def test_the_readme_names_exactly_the_capabilities_the_template_needs(source: dict[str, Any]) -> None:
    types = resource_types(source)
    needed = {capability for capability, needing in CAPABILITIES.items() if types & needing}
    acknowledged = ACKNOWLEDGED.search(publishing_section())
    assert acknowledged is not None
    assert set(re.findall(r"CAPABILITY_\w+", acknowledged.group(1))) == needed
