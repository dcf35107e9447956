"""The two secrets as typed models: what each must hold, checked once, never shown.

Secret values are `SecretStr`, so a repr, a log line or a validation error never carries them.
`from_secret` turns the Secrets Manager JSON into a model, and any defect into one `SecretError`
that names the secret and the field (docs/configuration.md#secrets).
"""

from collections.abc import Mapping
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dagsync.core.errors import SecretError

__all__ = ["PanosCredentials", "PceCredentials"]

PEM_MARKER = "-----BEGIN CERTIFICATE-----"


def _optional_text(value: object) -> object:
    """A stored string as is (a password may begin or end with a space); empty means absent."""
    if value is None or value == "":
        return None
    return _required_text(value)


def _required_text(value: object) -> object:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str) or not text.strip():
        raise PydanticCustomError("secret_field", "must be a non-empty string")
    return value


def _ca_bundle(value: object) -> str | None:
    """Empty or blank means the system's CAs; anything else must be a PEM certificate bundle."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("secret_field", "must be a string holding a PEM certificate bundle")
    if not value.strip():
        return None
    if PEM_MARKER not in value:
        raise PydanticCustomError("secret_field", "is not a PEM certificate bundle")
    return value


class _Secret(BaseModel):
    """Shared rules: immutable, unknown keys ignored (a secret may carry notes), PEM-checked CA."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    ca_bundle: str | None = Field(default=None, repr=False)

    _check_ca_bundle = field_validator("ca_bundle", mode="before")(_ca_bundle)

    @classmethod
    def from_secret(cls, data: Mapping[str, object], secret_id: str) -> Self:
        """Validate the secret's JSON; the error names the secret and the field, never a value."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise SecretError(_describe(exc, secret_id)) from None


def _describe(exc: ValidationError, secret_id: str) -> str:
    """The first problem, in our words: pydantic's own text can quote the input."""
    error = exc.errors(include_input=False, include_url=False)[0]
    if error["type"] in {"secret_field", "secret_fields"}:
        reason = error["msg"]
    else:
        reason = "is missing" if error["type"] == "missing" else "is not valid"
    if error["loc"]:
        return f"secret {secret_id}: field {str(error['loc'][0])!r} {reason}"
    return f"secret {secret_id}: {reason}"


class PceCredentials(_Secret):
    """An API key's authentication username and secret (HTTP Basic), and an optional CA bundle."""

    auth_username: str
    secret: SecretStr

    @field_validator("auth_username", mode="before")
    @classmethod
    def _username(cls, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise PydanticCustomError(
                "secret_field",
                "must be a non-empty string (the API key's authentication username, e.g. "
                "api_1a2b3c4d5e, not its Key ID)",
            )
        return value.strip()

    _check_secret = field_validator("secret", mode="before")(_required_text)


class PanosCredentials(_Secret):
    """The PAN-OS secret: an API key, or a username and password to generate one."""

    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None

    _check_text = field_validator("api_key", "username", "password", mode="before")(_optional_text)

    @model_validator(mode="after")
    def _something_to_authenticate(self) -> Self:
        if self.api_key is not None:
            return self
        if self.username is None and self.password is None:
            raise PydanticCustomError("secret_fields", "needs field 'api_key', or 'username' and 'password'")
        if self.username is None:
            raise PydanticCustomError("secret_fields", "field 'username' is missing (needed with 'password')")
        if self.password is None:
            raise PydanticCustomError("secret_fields", "field 'password' is missing (needed with 'username')")
        return self
