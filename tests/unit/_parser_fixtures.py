"""Load a real-output fixture without its header lines.

Fixtures live in ``tests/fixtures/<family>/``, except the examples the notebooks
show, which ship with the package in ``smartos_lab/examples/<family>/`` (one
copy; the tests read them from there).

Fixture files start with ``# source: ...`` and ``# command: ...`` lines (and
optional ``# note: ...`` lines); the rest is the output exactly as published.
"""
from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXAMPLES = Path(__file__).resolve().parents[2] / "smartos_lab" / "examples"
ROOTS = (FIXTURES, EXAMPLES)
_HEADER_KEYS = ("# source:", "# command:", "# note:")


def fixture(relpath: str, *, drop_elisions: bool = False) -> str:
    """The output text of ``tests/fixtures/<relpath>``.

    ``drop_elisions`` removes lines that are exactly ``...``: the way some
    man pages and comments mark output they left out (the fixture's notes say so).
    """
    lines = fixture_path(relpath).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith(_HEADER_KEYS):
        lines.pop(0)
    if drop_elisions:
        lines = [line for line in lines if line.strip() != "..."]
    return "".join(lines)


def fixture_command(relpath: str) -> str:
    """The ``# command:`` recorded in the fixture's header."""
    for line in fixture_path(relpath).read_text().splitlines():
        if line.startswith("# command:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{relpath} has no '# command:' line")


def fixture_path(relpath: str) -> Path:
    """Where fixture ``relpath`` (``family/name.txt``) is: tests/fixtures or the package's examples."""
    for root in ROOTS:
        if (root / relpath).is_file():
            return root / relpath
    raise FileNotFoundError(f"no fixture {relpath} in {' or '.join(map(str, ROOTS))}")


def fixture_files(directory: str) -> list[Path]:
    """Every fixture file of one command family, in either place, sorted by name."""
    return sorted((p for root in ROOTS for p in (root / directory).glob("*.txt")), key=lambda p: p.name)


def fixtures_in(directory: str) -> list[str]:
    """Every fixture file of one command family, as relpaths."""
    return [f"{directory}/{p.name}" for p in fixture_files(directory)]
