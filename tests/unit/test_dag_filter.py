"""DAG filters: tags named, membership, unevaluable filters, plans and the tags-in-use cut
(docs/dag-awareness.md)."""

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagsync.core.dag_filter import (
    MAX_DEPTH,
    AllOf,
    AnyOf,
    MembershipChange,
    TagIs,
    UnevaluableFilter,
    cut_to_tags_in_use,
    dag_changes,
    parse_filter,
    tags_in_use,
)

Q = "illumio.env.Quarantine"
PROD = "illumio.env.Prod"
WEB = "illumio.app.Web"


@dataclass(frozen=True)
class Dag:
    name: str
    filter: str


# -- parsing ---------------------------------------------------------------------------------


def test_single_quoted_tag():
    dag_filter = parse_filter(f"'{Q}'")
    assert dag_filter.expression == TagIs(Q)
    assert dag_filter.tags() == frozenset({Q})


def test_tags_with_spaces_nested_parentheses_and_both_quotes():
    dag_filter = parse_filter("'tag a' and ('b' or \"c\")")
    assert dag_filter.expression == AllOf((TagIs("tag a"), AnyOf((TagIs("b"), TagIs("c")))))
    assert dag_filter.tags() == frozenset({"tag a", "b", "c"})


def test_deeply_nested_parentheses():
    dag_filter = parse_filter("((('a' and ('b' or 'c'))) or 'd')")
    assert dag_filter.problem is None
    assert dag_filter.matches(frozenset({"a", "c"}))
    assert dag_filter.matches(frozenset({"d"}))
    assert not dag_filter.matches(frozenset({"a"}))


def test_operators_are_read_in_any_case():
    assert parse_filter("'a' AND 'b' And 'c'").expression == AllOf((TagIs("a"), TagIs("b"), TagIs("c")))


def test_operators_need_no_spaces_around_quotes():
    assert parse_filter("('a')or('b')").expression == AnyOf((TagIs("a"), TagIs("b")))


def test_and_needs_every_tag():
    dag_filter = parse_filter(f"'{PROD}' and '{WEB}'")
    assert dag_filter.matches(frozenset({PROD, WEB, "other"}))
    assert not dag_filter.matches(frozenset({PROD}))


def test_or_needs_one_tag():
    dag_filter = parse_filter(f"'{PROD}' or '{WEB}'")
    assert dag_filter.matches(frozenset({WEB}))
    assert not dag_filter.matches(frozenset())


def test_tags_compare_exactly():
    assert not parse_filter("'illumio.env.prod'").matches(frozenset({PROD}))


# -- unevaluable: reported, never guessed ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("'a' and 'b' or 'c'", "mixes 'and' and 'or' without parentheses"),
        ("not 'a'", "'not'"),
        ("'a' and not 'b'", "'not'"),
        ("prod", "unquoted word 'prod'"),
        ("'a' and", "ends where a tag was expected"),
        ("('a' or 'b'", "parenthesis is not closed"),
        ("'a' or 'b')", "unexpected ')'"),
        ("'a' 'b'", "unexpected 'b'"),
        ("'a' or 'b", "quote that is never closed"),
        ("", "empty"),
        ("   ", "empty"),
        ("()", "unexpected ')'"),
    ],
)
def test_a_filter_outside_the_documented_grammar_is_unevaluable(text, problem):
    dag_filter = parse_filter(text)
    assert dag_filter.expression is None
    assert problem in (dag_filter.problem or "")
    with pytest.raises(UnevaluableFilter):
        dag_filter.matches(frozenset({"a", "b", "c"}))


def test_an_unevaluable_filter_still_names_its_tags():
    """So TAGS_IN_USE_ONLY never cuts a tag some DAG might use."""
    assert parse_filter("'a' and 'b' or 'c'").tags() == frozenset({"a", "b", "c"})
    assert parse_filter("'a' and not 'b'").tags() == frozenset({"a", "b"})
    assert parse_filter("bare and 'q'").tags() == frozenset({"bare", "q"})
    assert parse_filter("'a' or 'b c").tags() == frozenset({"a", "b c"})


def test_nesting_is_bounded():
    deep = "(" * (MAX_DEPTH + 1) + "'a'" + ")" * (MAX_DEPTH + 1)
    assert "nest deeper" in (parse_filter(deep).problem or "")
    assert parse_filter("(" * MAX_DEPTH + "'a'" + ")" * MAX_DEPTH).problem is None


def test_a_hostile_filter_of_unbalanced_parentheses_never_raises():
    assert parse_filter("(" * 5000).expression is None


@given(st.text(alphabet="'\"() andortx", max_size=60))
def test_parsing_never_raises_and_a_filter_matches_an_ip_carrying_all_it_names(text):
    dag_filter = parse_filter(text)
    assert (dag_filter.expression is None) == (dag_filter.problem is not None)
    if dag_filter.expression is not None:
        assert dag_filter.matches(dag_filter.tags())
        assert not dag_filter.matches(frozenset())


# -- membership plans ------------------------------------------------------------------------


def test_a_relabel_into_quarantine_joins_the_quarantine_dag_and_leaves_the_production_one():
    dags = [Dag("quarantine", f"'{Q}'"), Dag("prod-web", f"'{PROD}' and '{WEB}'"), Dag("web", f"'{WEB}'")]
    before = {"10.10.1.11": frozenset({PROD, WEB}), "10.10.1.12": frozenset({PROD, WEB})}
    after = {"10.10.1.11": frozenset({Q, WEB}), "10.10.1.12": frozenset({PROD, WEB})}
    changes = dag_changes(dags, before, after, {"10.10.1.11": "web01"}, prefix="illumio.")
    assert [change.as_dict() for change in changes] == [
        {"dag": "quarantine", "filter": f"'{Q}'", "joins": ["10.10.1.11"], "leaves": []},
        {"dag": "prod-web", "filter": f"'{PROD}' and '{WEB}'", "joins": [], "leaves": ["10.10.1.11"]},
        {"dag": "web", "filter": f"'{WEB}'", "joins": [], "leaves": []},
    ]
    assert changes[0].hostnames == {"10.10.1.11": "web01"}


def test_an_ip_that_appears_or_disappears_joins_or_leaves():
    changes = dag_changes(
        [Dag("prod", f"'{PROD}'")],
        {"10.0.0.1": frozenset({PROD})},
        {"10.0.0.2": frozenset({PROD})},
        {},
        prefix="illumio.",
    )
    assert (changes[0].joins, changes[0].leaves) == (("10.0.0.2",), ("10.0.0.1",))


def test_an_unevaluable_filter_is_listed_as_such():
    [change] = dag_changes(
        [Dag("odd", "'a' and 'b' or 'c'")], {}, {"10.0.0.1": frozenset({"a"})}, {}, prefix=""
    )
    assert change.as_dict() == {
        "dag": "odd",
        "filter": "'a' and 'b' or 'c'",
        "unevaluable": "it mixes 'and' and 'or' without parentheses, and PAN-OS's precedence is undocumented",
    }


def test_a_filter_mixing_our_tags_with_anothers_is_unevaluable():
    [change] = dag_changes(
        [Dag("approved-prod", f"'{PROD}' and 'soc.approved'")],
        {},
        {"10.0.0.1": frozenset({PROD})},
        {},
        prefix="illumio.",
    )
    assert change.problem == "it also names tags this tool does not register (soc.approved)"


def test_a_filter_naming_none_of_our_tags_gains_and_loses_nothing():
    [change] = dag_changes(
        [Dag("soc", "'soc.blocked'")], {}, {"10.0.0.1": frozenset({PROD})}, {}, prefix="illumio."
    )
    assert change == MembershipChange("soc", "'soc.blocked'")


def test_hostnames_are_given_only_for_the_ips_that_move():
    [change] = dag_changes(
        [Dag("prod", f"'{PROD}'")],
        {},
        {"10.0.0.1": frozenset({PROD})},
        {"10.0.0.1": "db01", "10.0.0.9": "other"},
        prefix="illumio.",
    )
    assert change.hostnames == {"10.0.0.1": "db01"}


# -- tags in use -----------------------------------------------------------------------------


def test_tags_in_use_are_every_tag_some_filter_names():
    filters = [
        parse_filter(f"'{Q}'"),
        parse_filter(f"'{PROD}' and ('{WEB}' or 'soc.x')"),
        parse_filter("nope"),
    ]
    assert tags_in_use(filters) == frozenset({Q, PROD, WEB, "soc.x", "nope"})


def test_no_filters_use_no_tags():
    assert tags_in_use([]) == frozenset()


def test_desired_pairs_are_cut_to_tags_in_use():
    desired = {
        "10.0.0.1": frozenset({PROD, WEB}),
        "10.0.0.2": frozenset({WEB}),
        "10.0.0.3": frozenset({PROD, WEB}),
    }
    assert cut_to_tags_in_use(desired, frozenset({PROD, Q})) == {
        "10.0.0.1": frozenset({PROD}),
        "10.0.0.3": frozenset({PROD}),
    }


def test_cutting_to_no_tags_leaves_nothing():
    assert cut_to_tags_in_use({"10.0.0.1": frozenset({PROD})}, frozenset()) == {}
