"""The emulators are split by concern (docs/architecture.md#layers): no module past 500 lines."""

from pathlib import Path

import pytest

EMULATORS = Path(__file__).resolve().parents[2] / "emulators"
MAX_LINES = 500


@pytest.mark.parametrize(
    "module", sorted(EMULATORS.rglob("*.py")), ids=lambda path: str(path.relative_to(EMULATORS))
)
def test_no_emulator_module_is_longer_than_the_limit(module: Path) -> None:
    assert len(module.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_pan_os_emulator_is_a_package_of_concerns() -> None:
    assert not (EMULATORS / "panos.py").exists()
    assert {path.stem for path in (EMULATORS / "panos").glob("*.py")} >= {
        "wire",
        "state",
        "faults",
        "auth",
        "user_id",
        "op",
        "config",
        "ha",
        "server",
    }
