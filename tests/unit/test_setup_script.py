"""setup.sh: valid bash, shellcheck-clean, and its Python environment goes where the README says.

``python_env`` is run for real by bash (setup.sh sourced, so only its functions are
defined) with a stand-in ``python3`` first on PATH that records how it is called and
creates a minimal ``.venv``: the choice of environment is what is checked here, not
pip.  The real venv path was tried by hand with Debian's /usr/bin/python3 as root.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [REPO / "setup.sh", REPO / ".ci" / "run"]

# Records "<argv0> <args> | PIP_ROOT_USER_ACTION=... PIP_BREAK_SYSTEM_PACKAGES=..." per call;
# "-m venv" makes a .venv whose python3 is this same stand-in; FAIL_PIP=1 fails pip install -e.
FAKE_PYTHON = r"""#!/bin/sh
echo "$0 $* | root=${PIP_ROOT_USER_ACTION:-} break=${PIP_BREAK_SYSTEM_PACKAGES:-}" >> "$CALLS"
case "$*" in
    "-m venv --clear .venv")
        mkdir -p .venv/bin
        cp "$0" .venv/bin/python3
        printf 'VIRTUAL_ENV="%s/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV PATH\n' \
            "$PWD" > .venv/bin/activate ;;
    "-c "*) echo /usr ;;
    "-m pip install -e "*) [ "${FAIL_PIP:-}" = 1 ] && { echo "pip: no such distribution" >&2; exit 1; } ;;
esac
exit 0
"""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_scripts_are_valid_bash(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (./setup.sh test installs it)")
def test_shellcheck_finds_nothing():
    proc = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def _python_env(tmp_path: Path, extras: str = "test",
                **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    work = tmp_path / "repo"
    work.mkdir(exist_ok=True)
    shutil.copy(REPO / "setup.sh", work / "setup.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    (bin_dir / "python3").chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("VIRTUAL_ENV", "SMARTOS_LAB_NO_VENV") and not k.startswith("PIP_")}
    clean.update(PATH=f"{bin_dir}:/usr/bin:/bin", CALLS=str(calls), TMPDIR=str(tmp_path), **env)
    proc = subprocess.run(["bash", "-c", f'. ./setup.sh && python_env "{extras}"'], cwd=work, env=clean,
                          capture_output=True, text=True, timeout=60)
    return proc, [line.replace(str(tmp_path), "T") for line in calls.read_text().splitlines()]


def test_by_default_the_packages_go_into_a_venv_here_and_the_last_line_says_so(tmp_path):
    proc, calls = _python_env(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [c for c in calls if "-m venv" in c] == ["T/bin/python3 -m venv --clear .venv | root= break="]
    pip = [c for c in calls if "-m pip install -e" in c]
    assert pip == ["T/repo/.venv/bin/python3 -m pip install -e .[test] | root=ignore break="]
    assert "T/repo/.venv/bin/python3 -m pip install --upgrade pip | root=ignore break=" in calls
    assert proc.stdout.splitlines()[-1] == (f"setup: Python environment: {tmp_path}/repo/.venv "
                                            "(activate it with: . .venv/bin/activate)")


def test_a_venv_that_works_is_reused(tmp_path):
    _python_env(tmp_path)
    proc, calls = _python_env(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if "-m venv" in c]


def test_an_active_virtualenv_is_used_as_it_is(tmp_path):
    proc, calls = _python_env(tmp_path, VIRTUAL_ENV="/opt/myenv")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if "-m venv" in c]
    assert proc.stdout.splitlines()[-1] == "setup: Python environment: the active virtualenv /opt/myenv"


def test_no_venv_installs_into_the_python3_found_even_when_externally_managed(tmp_path):
    proc, calls = _python_env(tmp_path, SMARTOS_LAB_NO_VENV="1")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if "-m venv" in c]
    assert "T/bin/python3 -m pip install -e .[test] | root=ignore break=1" in calls
    assert not [c for c in calls if "--upgrade pip" in c]       # a Debian pip cannot be upgraded
    assert proc.stdout.splitlines()[-1] == "setup: Python environment: /usr (SMARTOS_LAB_NO_VENV=1, no venv)"


def test_pip_output_is_shown_only_when_pip_fails(tmp_path):
    ok, _ = _python_env(tmp_path)
    assert "pip:" not in ok.stdout + ok.stderr
    failed, _ = _python_env(tmp_path, FAIL_PIP="1")
    assert failed.returncode == 1
    assert "pip: no such distribution" in failed.stderr
    assert "setup: pip failed; the whole log is" in failed.stderr
