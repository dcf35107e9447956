"""The PCE's wire forms shared by every part of the emulator: JSON answers and error bodies."""

import json
from http import HTTPStatus
from typing import Any

from emulators.server import Response

Json = dict[str, Any]

SYNC_LIMIT = 500
JSON_HEADERS = {"Content-Type": "application/json"}
# `not_acceptable_error` and `too_many_requests_error` are seen in captures (docs/protocols.md#pce-errors); the
# others follow the same `<reason>_error` pattern [unverified].
ERROR_TOKENS = {
    401: "authentication_failed_error",
    403: "forbidden_error",
    404: "not_found_error",
    405: "method_not_allowed_error",
    406: "not_acceptable_error",
    429: "too_many_requests_error",
    500: "internal_server_error",
    502: "bad_gateway_error",
    503: "service_unavailable_error",
    504: "gateway_timeout_error",
}


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def json_response(status: int, body: object) -> Response:
    return Response(
        status=status, body=json.dumps(body, separators=(",", ":")).encode(), headers=dict(JSON_HEADERS)
    )


def error(status: int, message: str) -> Response:
    """The PCE's error body: a list of {token, message} (tokens from captures where known)."""
    return json_response(
        status, [{"token": ERROR_TOKENS.get(status, "unexpected_error"), "message": message}]
    )
