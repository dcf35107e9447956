"""The behaviour tables name the tests that prove them, and those tests assert what the rows say.

Two tables are checked: the faults table of docs/reliability.md#faults-and-outcomes and the
result-status table of the README ("| status | meaning | what to do | proved by |"). Each row's
last cell names one or more tests as `tests/<path>.py::[Class::]test[id]`. The rule, as
docs/reliability.md#how-a-row-is-checked states it:

- the row's statuses: in the faults table, the result statuses written in backticks in its
  "the run reports" cell (none: only the tests' existence is checked); in the status table,
  the row's first cell;
- tests under tests/unit prove a mechanism, not a run's status: they are checked for existence
  only, and a row with statuses names at least one test that runs the handler (tests/faults,
  tests/integration);
- a named test exists when its file exists and defines that function (found with `ast`, not
  by importing), at module level or in the named class; a parametrised id must split, at
  hyphens, into ids or values that are string literals of that file;
- the status a test asserts: a status word in the id; else the first status its body names
  in source order (a string literal holding a status word, or `pytest.raises(RunFailed, ...)`
  whose `match` names no status, which is `failed`); else a status word in its name. It must
  be one of the row's statuses.
"""

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import get_args

import pytest

from dagsync.core.result import Status

ROOT = Path(__file__).resolve().parent.parent
STATUSES = frozenset(get_args(Status))
STATUS_WORD = re.compile(r"\b(" + "|".join(sorted(STATUSES)) + r")\b")
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::((?:\w+::)?\w+)(?:\[([^\]]+)\])?`")
RAISED_FOR_A_FAILED_RUN = "RunFailed"
MECHANISM_TESTS = "tests/unit/"  # they call one module, never the handler: no run status to assert


@dataclass(frozen=True)
class Row:
    table: str
    cells: tuple[str, ...]
    statuses: frozenset[str]

    @property
    def tests(self) -> list[tuple[str, str, str | None]]:
        return [(path, name, case or None) for path, name, case in NAMED_TEST.findall(self.cells[-1])]

    @property
    def run_tests(self) -> list[tuple[str, str, str | None]]:
        """The named tests that run the handler, so assert a run's status."""
        return [test for test in self.tests if not test[0].startswith(MECHANISM_TESTS)]

    def __str__(self) -> str:
        return f"{self.table}: {self.cells[0][:60]}"


def table_rows(document: Path, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with `header`, as cells."""
    lines = document.read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def backticked_statuses(text: str) -> frozenset[str]:
    return frozenset(word for word in re.findall(r"`(\w+)`", text) if word in STATUSES)


def behaviour_rows() -> list[Row]:
    faults = [
        Row("docs/reliability.md", tuple(cells), backticked_statuses(cells[1]))
        for cells in table_rows(ROOT / "docs" / "reliability.md", "| fault | the run reports |")
    ]
    statuses = [
        Row("README.md", tuple(cells), backticked_statuses(cells[0]))
        for cells in table_rows(ROOT / "README.md", "| status | meaning | what to do | proved by |")
    ]
    return faults + statuses


@cache
def module(path: str) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"))


def find_test(path: str, name: str) -> ast.FunctionDef | None:
    """The test function `name` (`Class::test` for a method) defined in `path`, or None."""
    if not (ROOT / path).is_file():
        return None
    scope: list[ast.stmt] = module(path).body
    *classes, function = name.split("::")
    for class_name in classes:
        found = [node for node in scope if isinstance(node, ast.ClassDef) and node.name == class_name]
        if not found:
            return None
        scope = found[0].body
    return next((node for node in scope if isinstance(node, ast.FunctionDef) and node.name == function), None)


def literals(path: str) -> frozenset[str]:
    return frozenset(
        node.value
        for node in ast.walk(module(path))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def is_made_of(case: str, known: frozenset[str]) -> bool:
    """Whether `case` is known ids or values joined by hyphens (as pytest joins stacked parameters)."""
    parts = case.split("-")
    reachable = {0}
    for end in range(1, len(parts) + 1):
        if any("-".join(parts[start:end]) in known for start in reachable if start < end):
            reachable.add(end)
    return len(parts) in reachable


def raises_a_failed_run(node: ast.Call) -> bool:
    """`pytest.raises(RunFailed, ...)` whose `match` names no status."""
    if not (isinstance(node.func, ast.Attribute) and node.func.attr == "raises" and node.args):
        return False
    if not (isinstance(node.args[0], ast.Name) and node.args[0].id == RAISED_FOR_A_FAILED_RUN):
        return False
    match = next((keyword.value for keyword in node.keywords if keyword.arg == "match"), None)
    return not (
        isinstance(match, ast.Constant) and isinstance(match.value, str) and STATUS_WORD.search(match.value)
    )


def first_status_in_body(function: ast.FunctionDef) -> str | None:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring says, it does not assert
    named: list[tuple[int, int, str]] = []
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found = STATUS_WORD.search(node.value)
                if found:
                    named.append((node.lineno, node.col_offset, found.group(1)))
            elif isinstance(node, ast.Call) and raises_a_failed_run(node):
                named.append((node.lineno, node.col_offset, "failed"))
    return min(named)[2] if named else None


def asserted_status(function: ast.FunctionDef, case: str | None) -> str | None:
    """The status a test asserts, by the rule in this module's docstring."""
    in_case = STATUS_WORD.search(case.replace("-", " ")) if case else None
    if in_case:
        return in_case.group(1)
    in_body = first_status_in_body(function)
    if in_body:
        return in_body
    in_name = STATUS_WORD.search(function.name.replace("_", " "))
    return in_name.group(1) if in_name else None


ROWS = behaviour_rows()


def test_both_tables_are_found_with_every_row_naming_a_test() -> None:
    tables = {row.table for row in ROWS}
    assert tables == {"docs/reliability.md", "README.md"}
    assert [str(row) for row in ROWS if not row.tests] == []


def test_the_status_table_has_a_row_for_every_status() -> None:
    assert {status for row in ROWS if row.table == "README.md" for status in row.statuses} == STATUSES


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_every_named_test_exists(row: Row) -> None:
    missing = [f"{path}::{name}" for path, name, _ in row.tests if find_test(path, name) is None]
    assert missing == []
    unknown_cases = [case for path, _, case in row.tests if case and not is_made_of(case, literals(path))]
    assert unknown_cases == []


def test_every_row_with_a_status_names_a_test_that_runs_the_handler() -> None:
    assert [str(row) for row in ROWS if row.statuses and not row.run_tests] == []


@pytest.mark.parametrize("row", [row for row in ROWS if row.statuses], ids=str)
def test_every_named_test_asserts_one_of_the_row_s_statuses(row: Row) -> None:
    asserted = {}
    for path, name, case in row.run_tests:
        function = find_test(path, name)
        assert function is not None, f"{path}::{name} does not exist"
        asserted[f"{name}[{case}]" if case else name] = asserted_status(function, case)
    assert {test: status for test, status in asserted.items() if status not in row.statuses} == {}
