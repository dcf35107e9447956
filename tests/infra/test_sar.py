"""The template can be published to the Serverless Application Repository as it stands."""

import re
import tomllib
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
