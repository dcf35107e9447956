"""PanosCredentials: what the PAN-OS secret must hold, and errors that never echo values."""

import pytest

from dagsync.core.errors import SecretError
from dagsync.net.credentials import PanosCredentials

SECRET_ID = "panos/prod"
API_KEY = "LUFRPT-static-key-0123456789abcdef"
USER = "dagsync-api"
PASSWORD = "s3cr3t&p@ss=word"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def test_secret_with_an_api_key() -> None:
    credentials = PanosCredentials.from_secret({"api_key": API_KEY, "ca_bundle": PEM}, SECRET_ID)

    assert credentials.api_key is not None
    assert (credentials.api_key.get_secret_value(), credentials.ca_bundle) == (API_KEY, PEM)
    assert credentials.username is None


def test_secret_with_username_and_password() -> None:
    credentials = PanosCredentials.from_secret({"username": USER, "password": PASSWORD}, SECRET_ID)

    assert credentials.password is not None
    assert (credentials.api_key, credentials.username) == (None, USER)
    assert credentials.password.get_secret_value() == PASSWORD


def test_password_is_kept_exactly_as_stored() -> None:
    credentials = PanosCredentials.from_secret({"username": USER, "password": " padded "}, SECRET_ID)

    assert credentials.password is not None
    assert credentials.password.get_secret_value() == " padded "


def test_empty_fields_count_as_absent() -> None:
    credentials = PanosCredentials.from_secret(
        {"api_key": API_KEY, "username": "", "password": None, "ca_bundle": " "}, SECRET_ID
    )

    assert (credentials.username, credentials.password, credentials.ca_bundle) == (None, None, None)


def test_secret_without_credentials_names_the_secret_and_fields() -> None:
    with pytest.raises(SecretError, match=r"panos/prod.*api_key.*username.*password"):
        PanosCredentials.from_secret({"ca_bundle": PEM}, SECRET_ID)


def test_secret_with_username_only_names_the_missing_password() -> None:
    with pytest.raises(SecretError, match="'password' is missing"):
        PanosCredentials.from_secret({"username": USER}, SECRET_ID)


def test_secret_with_password_only_names_the_missing_username_not_the_value() -> None:
    with pytest.raises(SecretError, match="'username' is missing") as caught:
        PanosCredentials.from_secret({"password": PASSWORD}, SECRET_ID)

    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("value", [12345678, "   ", ["LUFRPT"]])
def test_secret_field_of_the_wrong_type_is_named_without_its_value(value: object) -> None:
    with pytest.raises(SecretError, match="panos/prod: field 'api_key' must be a non-empty string") as caught:
        PanosCredentials.from_secret({"api_key": value}, SECRET_ID)

    assert "12345678" not in str(caught.value) and "LUFRPT" not in str(caught.value)


def test_ca_bundle_that_is_not_pem_is_rejected_without_echoing_it() -> None:
    with pytest.raises(SecretError, match="field 'ca_bundle' is not a PEM certificate bundle") as caught:
        PanosCredentials.from_secret({"api_key": API_KEY, "ca_bundle": "private-note-0xBEEF"}, SECRET_ID)

    assert "private-note-0xBEEF" not in str(caught.value)


def test_ca_bundle_that_is_not_a_string_is_rejected() -> None:
    with pytest.raises(SecretError, match="field 'ca_bundle'"):
        PanosCredentials.from_secret({"api_key": API_KEY, "ca_bundle": 7}, SECRET_ID)


def test_repr_hides_key_password_and_ca_bundle() -> None:
    credentials = PanosCredentials(api_key=API_KEY, username=USER, password=PASSWORD, ca_bundle=PEM)

    shown = repr(credentials) + str(credentials)

    assert USER in shown
    assert API_KEY not in shown and PASSWORD not in shown and "MIIB" not in shown


def test_building_the_model_directly_refuses_nothing_to_authenticate() -> None:
    with pytest.raises(ValueError, match="'password' is missing"):
        PanosCredentials(username=USER)
