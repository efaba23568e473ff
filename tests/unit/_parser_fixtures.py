"""Load a real-output fixture from tests/fixtures without its header lines.

Fixture files start with ``# source: ...`` and ``# command: ...`` lines (and
optional ``# note: ...`` lines); the rest is the output exactly as published.
"""
from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_HEADER_KEYS = ("# source:", "# command:", "# note:")


def fixture(relpath: str, *, drop_elisions: bool = False) -> str:
    """The output text of ``tests/fixtures/<relpath>``.

    ``drop_elisions`` removes lines that are exactly ``...``: the way some
    man pages and comments mark output they left out (the fixture's notes say so).
    """
    lines = (FIXTURES / relpath).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith(_HEADER_KEYS):
        lines.pop(0)
    if drop_elisions:
        lines = [line for line in lines if line.strip() != "..."]
    return "".join(lines)


def fixture_command(relpath: str) -> str:
    """The ``# command:`` recorded in the fixture's header."""
    for line in (FIXTURES / relpath).read_text().splitlines():
        if line.startswith("# command:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{relpath} has no '# command:' line")


def fixtures_in(directory: str) -> list[str]:
    """Every fixture file of one command family, as relpaths."""
    return sorted(f"{directory}/{p.name}" for p in (FIXTURES / directory).glob("*.txt"))
