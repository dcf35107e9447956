"""PceCredentials: what the PCE secret must hold, and errors that never echo values."""

import pytest

from dagsync.core.errors import SecretError
from dagsync.net.credentials import PceCredentials

SECRET_ID = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dagsync/pce-AbCdEf"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def test_reads_username_secret_and_ca_bundle() -> None:
    credentials = PceCredentials.from_secret(
        {"auth_username": "api_1a2b3c4d5e", "secret": "0123abcd", "ca_bundle": PEM}, SECRET_ID
    )

    assert credentials == PceCredentials(auth_username="api_1a2b3c4d5e", secret="0123abcd", ca_bundle=PEM)


def test_ca_bundle_is_optional() -> None:
    credentials = PceCredentials.from_secret(
        {"auth_username": "api_1a2b3c4d5e", "secret": "0123abcd"}, SECRET_ID
    )

    assert credentials.ca_bundle is None


def test_empty_ca_bundle_means_system_trust() -> None:
    credentials = PceCredentials.from_secret(
        {"auth_username": "api_1a2b3c4d5e", "secret": "0123abcd", "ca_bundle": "  "}, SECRET_ID
    )

    assert credentials.ca_bundle is None


@pytest.mark.parametrize("field", ["auth_username", "secret"])
def test_missing_field_error_names_the_secret_and_the_field(field: str) -> None:
    data = {"auth_username": "api_1a2b3c4d5e", "secret": "0123abcd"}
    del data[field]

    with pytest.raises(SecretError) as caught:
        PceCredentials.from_secret(data, SECRET_ID)

    assert SECRET_ID in str(caught.value)
    assert f"'{field}'" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("auth_username", 42),
        ("auth_username", ""),
        ("secret", ["0123abcd"]),
        ("secret", ""),
        ("ca_bundle", 7),
    ],
)
def test_invalid_field_error_names_the_field(field: str, value: object) -> None:
    data: dict[str, object] = {"auth_username": "api_1a2b3c4d5e", "secret": "0123abcd", field: value}

    with pytest.raises(SecretError) as caught:
        PceCredentials.from_secret(data, SECRET_ID)

    assert f"'{field}'" in str(caught.value)


def test_ca_bundle_that_is_not_pem_is_rejected_without_echoing_it() -> None:
    data = {"auth_username": "api_1a2b3c4d5e", "secret": "0123abcd", "ca_bundle": "private-note-0xBEEF"}

    with pytest.raises(SecretError) as caught:
        PceCredentials.from_secret(data, SECRET_ID)

    assert "'ca_bundle'" in str(caught.value)
    assert "private-note-0xBEEF" not in str(caught.value)


def test_errors_never_echo_the_secret() -> None:
    with pytest.raises(SecretError) as caught:
        PceCredentials.from_secret({"auth_username": "", "secret": "sup3r-s3cret"}, SECRET_ID)

    assert "sup3r-s3cret" not in str(caught.value) + repr(caught.value)


def test_credentials_repr_hides_the_secret_and_ca_bundle() -> None:
    credentials = PceCredentials(
        auth_username="api_1a2b3c", secret="s3cr3t-value", ca_bundle="-----BEGIN CERTIFICATE-----\nMIIB"
    )

    shown = repr(credentials) + str(credentials)

    assert "api_1a2b3c" in shown
    assert "s3cr3t-value" not in shown
    assert "MIIB" not in shown


def test_secret_is_held_as_a_secret_string() -> None:
    credentials = PceCredentials.from_secret(
        {"auth_username": "api_1a2b3c", "secret": "s3cr3t-value"}, SECRET_ID
    )

    assert credentials.secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in str(credentials.secret)


def test_secret_is_kept_exactly_as_stored() -> None:
    credentials = PceCredentials.from_secret(
        {"auth_username": " api_1a2b3c ", "secret": " s3cr3t "}, SECRET_ID
    )

    assert (credentials.auth_username, credentials.secret.get_secret_value()) == ("api_1a2b3c", " s3cr3t ")


def test_unknown_fields_in_the_secret_are_ignored() -> None:
    data = {"auth_username": "api_1a2b3c", "secret": "s3cr3t", "rotated_at": "2024-01-01"}

    assert PceCredentials.from_secret(data, SECRET_ID).auth_username == "api_1a2b3c"


def test_building_the_model_directly_checks_it_too() -> None:
    with pytest.raises(ValueError, match="auth_username") as caught:
        PceCredentials(auth_username="", secret="sup3r-s3cret")

    assert "sup3r-s3cret" not in str(caught.value)
