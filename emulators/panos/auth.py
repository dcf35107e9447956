"""Keys: keygen, static and generated keys, Basic auth, revocation and missing permissions."""

import base64
import hashlib

from emulators.panos.state import PanosState
from emulators.panos.wire import (
    _XML_HEADERS,
    INVALID_CREDENTIAL,
    DenialAnswer,
    KeyCarrier,
    _body_params,
    _element,
    _xml_success,
)
from emulators.server import Request, Response


def _find_key(
    request: Request, params: dict[str, str]
) -> tuple[str | None, KeyCarrier | None, tuple[KeyCarrier, ...]]:
    """The key and its carrier (header, then query, then body, then Basic auth), and every carrier used."""
    found: list[tuple[KeyCarrier, str | None]] = []
    if request.headers.get("x-pan-key"):
        found.append(("header", request.headers["x-pan-key"]))
    query_key = request.query.get("key", [""])[-1]
    if query_key:
        found.append(("query", query_key))
    body_key = params.get("key")
    if body_key and (not query_key or _body_params(request).get("key")):
        found.append(("body", body_key))
    if request.headers.get("authorization", "").lower().startswith("basic "):
        found.append(("basic", None))
    if not found:
        return None, None, ()
    carrier, key = found[0]
    return key, carrier, tuple(item[0] for item in found)


def _basic_ok(request: Request, users: dict[str, str]) -> bool:
    try:
        decoded = base64.b64decode(request.headers["authorization"][6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    return user in users and users[user] == password


def _derive_key(serial: str, user: str, password: str, epoch: int) -> str:
    """A device's key is its own (PAN-OS encrypts it with the device's master key): the other
    member of a pair refuses it."""
    digest = hashlib.sha256(f"{serial}:{user}:{password}:{epoch}".encode()).digest()
    return "LUFRPT" + base64.b64encode(digest).decode()


class Auth(PanosState):
    """Keys: keygen, static and generated keys, Basic auth, revocation and missing permissions."""

    def issued_keys(self) -> list[str]:
        """Every key keygen ever handed out, for tests that check no key leaks."""
        with self._lock:
            return list(self._issued)

    def revoke_keys(self) -> None:
        """Every key stops working (password change, "Expire all API keys"); keygen gives new ones."""
        with self._lock:
            self._keys.clear()
            for user in self._users:
                self._epoch[user] = self._epoch.get(user, 0) + 1

    def revoke_keys_after(self, calls: int) -> None:
        """Let `calls` more authenticated requests through, then revoke every key (HTTP 403)."""
        with self._lock:
            self._revoke_after = calls

    def deny_permission(self, request_type: str, *, answer: DenialAnswer = "403") -> None:
        """The admin role lacks the XML API permission `type=<request_type>` needs.

        Every such request with a valid key is then refused, until grant_permission: "403" is the
        HTTP 403 that docs/protocols.md#pan-os-errors and docs/protocols.md#pan-os-address-groups
        describe for an insufficient role (the body of the invalid-credential answer, the real text for a role being uncaptured [unverified]);
        "unauth" is the `status="unauth" code="16"` form.
        """
        with self._lock:
            self._denied[request_type] = answer

    def grant_permission(self, request_type: str) -> None:
        with self._lock:
            self._denied.pop(request_type, None)

    def _keygen(self, params: dict[str, str], carrier: KeyCarrier | None) -> Response:
        user, password = params.get("user"), params.get("password")
        with self._lock:
            # Basic authentication cannot be used to get a key (docs/protocols.md#pan-os-keygen).
            if not user or password is None or self._users.get(user) != password:
                return Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
            self.keygen_count += 1
            if self.keygen_rotates:
                self._epoch[user] = self._epoch.get(user, 0) + 1
                for old in [k for k, owner in self._keys.items() if owner == user]:
                    del self._keys[old]
            key = _derive_key(self.serial, user, password, self._epoch.get(user, 0))
            self._keys[key] = user
            self._issued.append(key)
        return _xml_success(_element("key", text=key))

    def _authorised(self, key: str | None, carrier: KeyCarrier | None, request: Request) -> bool:
        with self._lock:
            if carrier == "basic":
                valid = _basic_ok(request, self._users)
            else:
                valid = key is not None and key in self._keys
            if not valid:
                return False
            if self._revoke_after is not None:
                if self._revoke_after <= 0:
                    self._revoke_after = None
                    self.revoke_keys()
                    return False
                self._revoke_after -= 1
            return True
