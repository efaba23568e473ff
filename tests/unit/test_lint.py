"""The code is lint-clean (ruff, configured in pyproject.toml)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests import needs

REPO = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing_in_the_package_the_tests_and_the_benchmarks():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                       capture_output=True).returncode != 0:
        needs.missing("ruff is not installed (it is in the test extra)")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "smartos_lab", "tests", "benchmarks"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
