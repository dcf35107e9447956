"""Masking secrets in text that may quote them back: error pages, echoed requests, messages.

A server that echoes a request carries a secret in whatever spelling the request used: as is,
URL-encoded in a form body or a query (either way of encoding spaces), XML-escaped inside a
document, JSON-escaped, or inside an `Authorization: Basic` header. `mask` replaces every one of
those spellings, and one cut short by a message's `…`, with ***. Matching ignores case, so
`%2f` is caught as surely as `%2F`; masking a little too much is the safe side
(docs/results.md#audit).
"""

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

MASK = "***"
ELLIPSIS = "…"  # how our messages mark text cut short
_MIN_CUT = 6  # a secret cut shorter than this before an ellipsis is not recognised as one


def mask(text: str, secrets: Iterable[str], basic_pairs: Iterable[tuple[str, str]] = ()) -> str:
    """`text` with every spelling of each secret, and each `Basic` credential, replaced by ***.

    `basic_pairs` are (username, secret) pairs whose `base64(username:secret)` may appear in an
    echoed Authorization header; the username alone is not a secret and stays readable.
    """
    spellings = {spelling for secret in secrets if secret for spelling in _spellings(secret)}
    spellings |= {_basic(user, secret) for user, secret in basic_pairs if secret}
    if not spellings:
        return text
    # Longest first: a regex alternation takes the first that matches, not the longest.
    alternation = "|".join(re.escape(spelling) for spelling in sorted(spellings, key=len, reverse=True))
    return _mask_cut_short(re.sub(alternation, MASK, text, flags=re.IGNORECASE), spellings)


def _spellings(secret: str) -> set[str]:
    """Each way a request, a document or a log line can spell `secret`."""
    return {
        secret,
        escape(secret, {'"': "&quot;", "'": "&apos;"}),
        escape(secret, {'"': "&#34;", "'": "&#39;"}),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }


def _mask_cut_short(text: str, spellings: set[str]) -> str:
    """Mask the start of a spelling left just before an `…` where a message was cut short."""
    pieces = text.split(ELLIPSIS)
    for index, before in enumerate(pieces[:-1]):
        cut = max((_cut_length(before, spelling) for spelling in spellings), default=0)
        if cut:
            pieces[index] = before[:-cut] + MASK
    return ELLIPSIS.join(pieces)


def _cut_length(before: str, spelling: str) -> int:
    """How many of the last characters of `before` begin `spelling` (0 if fewer than _MIN_CUT)."""
    before, spelling = before.lower(), spelling.lower()
    for length in range(min(len(before), len(spelling)), _MIN_CUT - 1, -1):
        if before.endswith(spelling[:length]):
            return length
    return 0


def _basic(username: str, secret: str) -> str:
    return base64.b64encode(f"{username}:{secret}".encode()).decode()
