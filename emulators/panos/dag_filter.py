"""DAG filters as PAN-OS evaluates them: tags in quotes, `and`, `or`, `not`, parentheses."""

import re
from collections.abc import Callable

from emulators.panos.wire import MAX_FILTER_LENGTH

_TOKEN = re.compile(r"\s*(?:(\()|(\))|'([^']*)'|([^\s()']+))")


def compile_filter(text: str) -> Callable[[frozenset[str]], bool]:
    """Compile a DAG filter (`'t1' and ('t2' or 't3')`) into a predicate over an IP's tags.

    Grammar: quoted tags, `and`, `or`, parentheses. `and` binds tighter than `or`, as in most
    boolean grammars; PAN-OS precedence is not documented [unverified], so filters in tests should
    use parentheses when they mix the two. `not` is a reserved word whose support is unverified
    (docs/protocols.md#pan-os-address-groups), so it is rejected.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise ValueError(f"DAG filter longer than {MAX_FILTER_LENGTH} characters")
    tokens = _tokenize(text)
    parser = _FilterParser(tokens)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise ValueError(f"unexpected {tokens[parser.position][1]!r} in DAG filter {text!r}")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read DAG filter {text!r} at {position}")
        position = match.end()
        opening, closing, tag, word = match.groups()
        if opening:
            tokens.append(("(", "("))
        elif closing:
            tokens.append((")", ")"))
        elif tag is not None:
            tokens.append(("tag", tag))
        elif word.lower() in {"and", "or"}:
            tokens.append((word.lower(), word))
        elif word.lower() == "not":
            raise ValueError("'not' in a DAG filter is not supported (unverified on PAN-OS)")
        else:
            raise ValueError(f"tags in a DAG filter must be in single quotes: {word!r}")
    if not tokens:
        raise ValueError("empty DAG filter")
    return tokens


class _FilterParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def expression(self) -> Callable[[frozenset[str]], bool]:
        terms = [self._term()]
        while self._peek() == "or":
            self.position += 1
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else (lambda tags: any(term(tags) for term in terms))

    def _term(self) -> Callable[[frozenset[str]], bool]:
        factors = [self._factor()]
        while self._peek() == "and":
            self.position += 1
            factors.append(self._factor())
        return factors[0] if len(factors) == 1 else (lambda tags: all(factor(tags) for factor in factors))

    def _factor(self) -> Callable[[frozenset[str]], bool]:
        kind = self._peek()
        if kind == "tag":
            name = self.tokens[self.position][1]
            self.position += 1
            return lambda tags: name in tags
        if kind == "(":
            self.position += 1
            inner = self.expression()
            if self._peek() != ")":
                raise ValueError("unbalanced parentheses in DAG filter")
            self.position += 1
            return inner
        found = "end of filter" if kind is None else repr(self.tokens[self.position][1])
        raise ValueError(f"expected a quoted tag or '(' in DAG filter, found {found}")
