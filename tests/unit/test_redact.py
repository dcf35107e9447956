"""mask: every spelling of a secret an echoing server could send back is replaced by ***."""

import base64
import json
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

import pytest

from dagsync.net.redact import mask

SECRET = "p@ss w/rd&<'\"é+="


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote(SECRET),
        quote_plus(SECRET),
        escape(SECRET, {'"': "&quot;", "'": "&apos;"}),
        escape(SECRET, {'"': "&#34;", "'": "&#39;"}),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
    ],
    ids=["raw", "url", "url-lower-hex", "url-path", "form", "xml", "xml-numeric", "json", "json-unicode"],
)
def test_every_spelling_of_a_secret_is_masked(spelling: str) -> None:
    assert mask(f"before {spelling} after", [SECRET]) == "before *** after"


def test_a_basic_credential_is_masked_and_the_username_stays_readable() -> None:
    header = "Authorization: Basic " + base64.b64encode(f"admin:{SECRET}".encode()).decode()
    assert mask(f"{header} for admin", [SECRET], basic_pairs=[("admin", SECRET)]) == (
        "Authorization: Basic *** for admin"
    )


def test_a_secret_cut_short_before_an_ellipsis_is_masked() -> None:
    key = "LUFRPT14MW5xOEo1R09KVlBZNnpnemh0VHRBOWl6TGM9"
    assert mask(f"echo: {key[:20]}…", [key]) == "echo: ***…"


def test_a_few_characters_before_an_ellipsis_are_left_alone() -> None:
    assert mask("status unkno…", ["unknown-secret"]) == "status unkno…"


def test_every_secret_is_masked_longest_first() -> None:
    assert mask("key=abcdef123456 pw=abcdef", ["abcdef", "abcdef123456"]) == "key=*** pw=***"


def test_empty_secrets_change_nothing() -> None:
    assert mask("nothing to hide", ["", ""]) == "nothing to hide"


def test_text_without_secrets_is_unchanged() -> None:
    assert mask("PAN-OS answered HTTP 503", ["s3cr3t"]) == "PAN-OS answered HTTP 503"
