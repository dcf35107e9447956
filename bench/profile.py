"""Sampling profiles of a run with py-spy (no instrumentation, so the run keeps its speed).

`command(...)` wraps a case's command line in `py-spy record`; `summarise(...)` reads the raw
(folded) output and gives each function's share of the wall time under the measured call, idle
time included, so waits on the PCE, the device and DynamoDB show as the calls that wait.
"""

import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 100  # samples per second
_LINE = re.compile(r":\d+\)$")


@dataclass(frozen=True)
class Share:
    function: str
    seconds: float
    percent: float


def available() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def command(py_spy: str, output: Path, inner: list[str]) -> list[str]:
    return [
        py_spy,
        "record",
        "--idle",
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--output",
        str(output),
        "--",
        *inner,
    ]


def summarise(path: Path, root: str, *, top: int = 25, keep: str = "dagsync/") -> list[Share]:
    """The `top` functions (of our package, by default) by inclusive time under frame `root`."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        start = next((i for i, frame in enumerate(frames) if _named(frame, root)), None)
        if start is None or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        for name in {_LINE.sub(")", frame) for frame in frames[start:]}:
            inclusive[name] += samples
    if not total:
        return []
    shares = [
        Share(name, samples / RATE, 100 * samples / total)
        for name, samples in inclusive.most_common()
        if keep in name or _named(name, root)
    ]
    return shares[:top]


def _named(frame: str, function: str) -> bool:
    """Whether a py-spy frame (`qualified.name (file:line)`) is the function `function`."""
    name = frame.split(" (", 1)[0]
    return name == function or name.endswith(f".{function}")
