"""Every citation of the documentation resolves, and nothing cites a document outside the repository."""

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"\b((?:docs/[\w-]+|README)\.md)(?:#([\w-]+))?")
# Links to local Markdown pages or anchors: `[text](page.md#anchor)`, `[text](#anchor)`.
MARKDOWN_LINK = re.compile(r"\]\(((?:\.\./|[\w-]+/)*[\w-]+\.md)?(?:#([\w-]+))?\)")
OUTSIDE = re.compile(r"\b(?:SPEC|[Rr]eference)\s*§|\.\./shared|shared/(?:SPEC|reference|fixtures)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ""}


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if Path(name).suffix in TEXT_SUFFIXES and (ROOT / name).is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(document: Path) -> frozenset[str]:
    return frozenset(slug(match) for match in HEADING.findall(document.read_text(encoding="utf-8")))


def citations() -> list[tuple[str, Path, str | None]]:
    """(citing file, cited document, anchor) for every citation and every Markdown link to a page."""
    found: list[tuple[str, Path, str | None]] = []
    for path in tracked_files():
        source = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".md":
            for target, anchor in MARKDOWN_LINK.findall(text):
                document = (path.parent / target).resolve() if target else path
                found.append((source, document, anchor or None))
        else:
            for document, anchor in CITATION.findall(text):
                found.append((source, ROOT / document, anchor or None))
    return found


def test_the_documentation_folder_exists_with_an_index() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    assert (ROOT / "docs" / "architecture.md").is_file()


def test_code_and_tests_cite_the_documentation() -> None:
    cited_from_code = {source for source, _, _ in citations() if source.endswith(".py")}
    assert len(cited_from_code) >= 10


@pytest.mark.parametrize(
    ("source", "document", "anchor"),
    [case for case in citations() if case[0] != "tests/test_docs.py"],
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else str(value),
)
def test_every_citation_resolves(source: str, document: Path, anchor: str | None) -> None:
    assert document.is_file(), f"{source} cites {document.relative_to(ROOT)}, which does not exist"
    if anchor is not None:
        assert anchor in anchors(document), (
            f"{source} cites {document.relative_to(ROOT)}#{anchor}, which has no such heading"
        )


def test_nothing_cites_a_document_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if path.name == "test_docs.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "citations of documents outside the repository:\n" + "\n".join(offenders)
