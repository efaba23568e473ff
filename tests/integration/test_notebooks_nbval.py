"""Notebooks run headless with nbval (``pytest --nbval-lax``), as CI and workshop hosts run them.

``00-start-here`` needs nothing.  ``07-magics-tour`` runs on any lab: here on
the Linux test guest (a test substrate, not SmartOS), booted by the test and
named to the notebook with ``$SMARTOS_LAB_NAME``.  The kernel learns the
test-guest strategy from an IPython startup file in a private IPYTHONDIR (the
notebook itself stays the one users run).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smartos_lab.lab import Lab, register_strategy

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def _nbval(notebook: Path, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=300", "-q",
            "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(notebook)]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTOS_LAB_IMAGE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_start_here_passes_nbval(tmp_path):
    out = _nbval(NOTEBOOKS / "00-start-here.ipynb",
                 _env(SMARTOS_LAB_CACHE=str(tmp_path / "cache")), tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


@pytest.mark.guest
@pytest.mark.timeout(900)
def test_magics_tour_passes_nbval_on_the_test_guest(tmp_path):
    from tests.guest.strategy import TestGuestStrategy
    register_strategy("test-guest", TestGuestStrategy)
    name = f"tour-{os.getpid()}"
    Lab.up(name, strategy=TestGuestStrategy(), progress=False).detach()   # the kernel attaches
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-test-guest.py").write_text(textwrap.dedent("""\
        from smartos_lab.lab import register_strategy
        from tests.guest.strategy import TestGuestStrategy
        register_strategy("test-guest", TestGuestStrategy)
        """))
    try:
        out = _nbval(NOTEBOOKS / "07-magics-tour.ipynb",
                     _env(SMARTOS_LAB_NAME=name, IPYTHONDIR=str(tmp_path / "ipython")), tmp_path)
        assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
        assert " passed" in out.stdout and "failed" not in out.stdout
    finally:
        Lab.attach(name).down()
