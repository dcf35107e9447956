"""The core's packages are its layers (docs/architecture.md#layers): each imports only those below it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "dagsync" / "dagsync"

# What each package may import of the core, besides itself and the package root (its version and
# service name). `sync` sees only the model and its own ports: the clients and the stores satisfy
# the ports structurally, and only the composition root (`edges`) puts them together.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "net": frozenset({"core"}),
    "pce": frozenset({"core", "net"}),
    "panos": frozenset({"core", "net"}),
    "store": frozenset({"core", "net"}),
    "sync": frozenset({"core"}),
    "edges": frozenset({"core", "net", "pce", "panos", "store", "sync"}),
}
# Outside libraries that mean I/O: the pure model and the run's orchestration know none of them.
IO_LIBRARIES = frozenset(
    {"boto3", "botocore", "requests", "urllib3", "defusedxml", "ijson", "mypy_boto3_dynamodb"}
)
NO_IO = frozenset({"core", "sync"})


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in `path` names, `from x import y` as `x` and `x.y`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_of(package: str) -> list[Path]:
    return sorted((PACKAGE / package).glob("*.py"))


def dagsync_package(module: str) -> str | None:
    """The layer package a `dagsync…` module name belongs to; None for the root and outsiders."""
    parts = module.split(".")
    if parts[0] != "dagsync" or len(parts) < 2 or parts[1] not in MAY_IMPORT:
        return None
    return parts[1]


def test_every_module_of_the_core_is_in_a_layer_package() -> None:
    loose = {path.name for path in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    packages = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert not loose
    assert packages == set(MAY_IMPORT)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    upward = {
        f"{path.name} imports {module}"
        for path in modules_of(package)
        for module in imported_modules(path)
        if (layer := dagsync_package(module)) is not None and layer not in allowed
    }
    assert not upward


@pytest.mark.parametrize("package", sorted(NO_IO))
def test_the_model_and_the_run_use_no_io_library(package: str) -> None:
    used = {
        f"{path.name} imports {module}"
        for path in modules_of(package)
        for module in imported_modules(path)
        if module.split(".")[0] in IO_LIBRARIES
    }
    assert not used


def test_the_layer_rule_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from dagsync.sync.engine import SyncEngine\nimport dagsync.store.table\n")
    assert {dagsync_package(name) for name in imported_modules(module)} >= {"sync", "store"}


# Size gates (docs/architecture.md#layers): past these, a module or the run's class does more
# than one job, and it is split, not the limit raised.
MAX_MODULE_LINES = 450
MAX_SYNC_CLASS_LINES = 250


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", all_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_of_the_core_is_over_the_line_limit(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", modules_of("sync"), ids=lambda path: path.name)
def test_no_class_of_the_run_is_over_the_line_limit(path: Path) -> None:
    classes = [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    oversized = {
        node.name: node.end_lineno - node.lineno + 1
        for node in classes
        if node.end_lineno - node.lineno >= MAX_SYNC_CLASS_LINES
    }
    assert not oversized
