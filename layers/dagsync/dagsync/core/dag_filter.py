"""Dynamic address group filters: the tags they name, and which IPs they match
(docs/dag-awareness.md#tags-in-use, docs/dag-awareness.md#membership-plans). Pure, no I/O.

The grammar, as far as it is documented (docs/protocols.md#pan-os-address-groups): tags in single
quotes (double quotes are accepted too), `and`, `or` and parentheses. What is not documented is
never guessed: `not`, a bare word, and `and` mixed with `or` without parentheses (the precedence
is unverified) make a filter unevaluable. Its tags are still named, since a tag some DAG might
use must not be cut from the device.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from dagsync.core.device import DagDefinition
from dagsync.core.models import TagMap

# A filter is at most 2047 characters, so at most ~1000 levels deep; far fewer are plausible,
# and a bound keeps a hostile configuration from exhausting the parser's stack.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class TagIs:
    tag: str


@dataclass(frozen=True, slots=True)
class AllOf:
    operands: tuple["Expression", ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple["Expression", ...]


Expression = TagIs | AllOf | AnyOf


def evaluate(expression: Expression, tags: frozenset[str]) -> bool:
    """Whether an IP carrying `tags` is a member. Tags compare exactly: whether PAN-OS matches
    them case-insensitively is unverified, and our tags keep the PCE's case."""
    match expression:
        case TagIs(tag):
            return tag in tags
        case AllOf(operands):
            return all(evaluate(operand, tags) for operand in operands)
        case AnyOf(operands):
            return any(evaluate(operand, tags) for operand in operands)


class UnevaluableFilter(ValueError):
    """A filter this tool cannot evaluate exactly; membership is then not reported."""


@dataclass(frozen=True, slots=True)
class DagFilter:
    """One parsed filter: what it names and, when it can be evaluated, its expression."""

    text: str
    expression: Expression | None
    problem: str | None  # why it cannot be evaluated
    named: frozenset[str]

    def tags(self) -> frozenset[str]:
        """Every tag the filter names, quoted or not, evaluable or not."""
        return self.named

    def matches(self, tags_of_ip: frozenset[str]) -> bool:
        if self.expression is None:
            raise UnevaluableFilter(f"filter {self.text!r} cannot be evaluated: {self.problem}")
        return evaluate(self.expression, tags_of_ip)


TokenKind = Literal["tag", "word", "(", ")", "and", "or", "unterminated"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: TokenKind
    text: str


def _tokens(text: str) -> Iterator[_Token]:
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif char in "()":
            yield _Token("(" if char == "(" else ")", char)
            position += 1
        elif char in "'\"":
            end = text.find(char, position + 1)
            if end < 0:
                yield _Token("unterminated", text[position + 1 :])
                return
            yield _Token("tag", text[position + 1 : end])
            position = end + 1
        else:
            end = position
            while end < len(text) and not text[end].isspace() and text[end] not in "()'\"":
                end += 1
            word = text[position:end]
            lowered = word.lower()
            yield _Token("and" if lowered == "and" else "or" if lowered == "or" else "word", word)
            position = end


class _Unevaluable(Exception):
    pass


@dataclass
class _Parser:
    tokens: list[_Token]
    position: int = 0

    def parse(self) -> Expression:
        if not self.tokens:
            raise _Unevaluable("the filter is empty")
        expression = self._expression(0)
        if self.position < len(self.tokens):
            raise _Unevaluable(f"unexpected {self._shown(self.tokens[self.position])}")
        return expression

    def _expression(self, depth: int) -> Expression:
        operands = [self._operand(depth)]
        operator: str | None = None
        while self.position < len(self.tokens) and self.tokens[self.position].kind in ("and", "or"):
            token = self.tokens[self.position]
            self.position += 1
            if operator is not None and token.kind != operator:
                raise _Unevaluable(
                    "it mixes 'and' and 'or' without parentheses, and PAN-OS's precedence is undocumented"
                )
            operator = token.kind
            operands.append(self._operand(depth))
        if operator is None:
            return operands[0]
        return AllOf(tuple(operands)) if operator == "and" else AnyOf(tuple(operands))

    def _operand(self, depth: int) -> Expression:
        if self.position >= len(self.tokens):
            raise _Unevaluable("it ends where a tag was expected")
        token = self.tokens[self.position]
        self.position += 1
        if token.kind == "tag":
            return TagIs(token.text)
        if token.kind != "(":
            raise _Unevaluable(f"unexpected {self._shown(token)}")
        if depth >= MAX_DEPTH:
            raise _Unevaluable(f"parentheses nest deeper than {MAX_DEPTH}")
        expression = self._expression(depth + 1)
        if self.position >= len(self.tokens) or self.tokens[self.position].kind != ")":
            raise _Unevaluable("a parenthesis is not closed")
        self.position += 1
        return expression

    @staticmethod
    def _shown(token: _Token) -> str:
        if token.kind == "unterminated":
            return "quote that is never closed"
        if token.kind == "word":
            if token.text.lower() == "not":
                return "'not', which the filter grammar is not documented to support"
            return f"unquoted word {token.text!r}"
        return repr(token.text)


def parse_filter(text: str) -> DagFilter:
    """Parse a DAG filter; one that cannot be evaluated says why, and never raises."""
    tokens = list(_tokens(text))
    named = frozenset(
        token.text
        for token in tokens
        if token.kind in ("tag", "unterminated") or (token.kind == "word" and token.text.lower() != "not")
    )
    try:
        expression: Expression | None = _Parser(tokens).parse()
        problem = None
    except _Unevaluable as exc:
        expression, problem = None, str(exc)
    return DagFilter(text=text, expression=expression, problem=problem, named=named)


def tags_in_use(filters: Iterable[DagFilter]) -> frozenset[str]:
    """Every tag some filter names: what TAGS_IN_USE_ONLY keeps."""
    return frozenset().union(*(dag_filter.tags() for dag_filter in filters))


def cut_to_tags_in_use(desired: TagMap, tags: frozenset[str]) -> dict[str, frozenset[str]]:
    """Only pairs whose tag some DAG names (docs/dag-awareness.md#tags-in-use); IPs left with
    none are dropped. The canary is not a desired pair: it is armed on its own, always."""
    result: dict[str, frozenset[str]] = {}
    # Tag sets repeat across IPs, so each distinct one is cut once.
    cut: dict[frozenset[str], frozenset[str]] = {}
    for ip, ip_tags in desired.items():
        kept = cut.get(ip_tags)
        if kept is None:
            kept = cut[ip_tags] = ip_tags & tags
        if kept:
            result[ip] = kept
    return result


@dataclass(frozen=True)
class MembershipChange:
    """What one DAG gains and loses under a plan (docs/dag-awareness.md#membership-plans)."""

    dag: str
    filter: str
    joins: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()
    problem: str | None = None  # why membership is not reported
    hostnames: Mapping[str, str] = field(default_factory=dict)  # of the IPs that join or leave

    def as_dict(self) -> dict[str, object]:
        """The dry run's `dag_changes` entry; an unevaluable filter is listed as such."""
        if self.problem is not None:
            return {"dag": self.dag, "filter": self.filter, "unevaluable": self.problem}
        return {
            "dag": self.dag,
            "filter": self.filter,
            "joins": list(self.joins),
            "leaves": list(self.leaves),
        }


def dag_changes(
    definitions: Iterable[DagDefinition],
    before: TagMap,
    after: TagMap,
    hostnames: Mapping[str, str],
    *,
    prefix: str,
) -> list[MembershipChange]:
    """Per DAG, the IPs that join and leave when our pairs go from `before` to `after`.

    Only our tags (`prefix`) are known here: a filter that also names another tool's tags
    depends on registrations this tool cannot see, so it is reported as unevaluable.
    """
    changed = sorted(ip for ip in before.keys() | after.keys() if before.get(ip) != after.get(ip))
    changes = []
    for definition in definitions:
        dag_filter = parse_filter(definition.filter)
        problem = dag_filter.problem or _foreign_tags(dag_filter, prefix)
        if problem is not None:
            changes.append(MembershipChange(definition.name, definition.filter, problem=problem))
            continue
        joins: list[str] = []
        leaves: list[str] = []
        for ip in changed:
            now = dag_filter.matches(after.get(ip, frozenset()))
            if now != dag_filter.matches(before.get(ip, frozenset())):
                (joins if now else leaves).append(ip)
        names = {ip: hostnames[ip] for ip in (*joins, *leaves) if ip in hostnames}
        changes.append(
            MembershipChange(definition.name, definition.filter, tuple(joins), tuple(leaves), hostnames=names)
        )
    return changes


def _foreign_tags(dag_filter: DagFilter, prefix: str) -> str | None:
    """Why a filter naming our tags and others' cannot be evaluated here, or None. A filter
    naming none of ours is exact: no plan of ours changes its members."""
    foreign = sorted(tag for tag in dag_filter.tags() if not tag.startswith(prefix))
    if not foreign or len(foreign) == len(dag_filter.tags()):
        return None
    return f"it also names tags this tool does not register ({', '.join(foreign)})"
