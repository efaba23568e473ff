"""Every fixture of real SmartOS/illumos output, every published example the package ships and
every setup transcript says where it came from."""
from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
EXAMPLES = ROOT / "smartos_lab" / "examples"
FILES = sorted(p for p in (TESTS / "fixtures").rglob("*") if p.is_file()) + \
    sorted(p for p in EXAMPLES.rglob("*") if p.is_file()) + \
    sorted((TESTS / "transcripts").glob("*.transcript"))


def test_there_are_fixtures_to_check():
    assert len(FILES) > 100
    assert any(p.is_relative_to(EXAMPLES) for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_first_line_names_the_source(path):
    first = path.read_text(errors="replace").splitlines()[0]
    assert first.startswith("# source: ") and len(first) > len("# source: ") + 10, first
