"""The toolkit base: one runner and timeout for every toolkit, and no import loops between them."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from smartos_lab.errors import CommandFailed
from smartos_lab.toolkits import DTrace, Images, SelfHealingDemo, SysInfo, Vms, Zfs, Zones
from smartos_lab.toolkits.base import Toolkit
from tests.unit._runners import LocalShell, RecordingRunner

TOOLKITS = Path(__file__).resolve().parents[2] / "smartos_lab" / "toolkits"


class TimedRunner(RecordingRunner):
    def __init__(self):
        super().__init__({"false": ("", 1)})
        self.timeouts: list[float] = []

    def run(self, command: str, timeout: float = 60.0):
        self.timeouts.append(timeout)
        return super().run(command, timeout)


@pytest.mark.parametrize("cls", [DTrace, Images, SysInfo, Vms, Zfs, Zones])
def test_every_toolkit_is_a_toolkit_with_the_runner_and_timeout_it_was_given(cls):
    runner = RecordingRunner()
    kit = cls(runner, timeout=7.0)
    assert isinstance(kit, Toolkit) and kit.runner is runner and kit.timeout == 7.0


def test_commands_use_the_toolkit_timeout_unless_given_their_own():
    runner = TimedRunner()
    kit = Toolkit(runner, timeout=9.0)
    kit._run("true")
    kit._ok("true", timeout=2.5)
    kit._run("true", timeout=0)
    assert runner.timeouts == [9.0, 2.5, 0]


def test_ok_raises_command_failed_and_run_returns_any_status():
    kit = Toolkit(TimedRunner())
    assert kit._run("false").exit_status == 1
    with pytest.raises(CommandFailed):
        kit._ok("false")


def test_a_guest_file_is_private_and_removed_afterwards_even_on_error(tmp_path):
    shell = LocalShell(tmp_path)
    kit = Toolkit(shell, timeout=30)
    with kit._guest_file("line 1\nit's line 2\n", prefix="smartos-lab-test", suffix=".txt") as path:
        assert Path(path).read_text() == "line 1\nit's line 2\n"
        assert Path(path).stat().st_mode & 0o777 == 0o600
    assert not Path(path).exists()
    with pytest.raises(RuntimeError):
        with kit._guest_file("x", prefix="smartos-lab-test") as path:
            raise RuntimeError("the command using it failed")
    assert not Path(path).exists()


def test_the_self_healing_demo_runs_through_the_zfs_toolkit_runner():
    zfs = Zfs(RecordingRunner(), timeout=5)
    demo = SelfHealingDemo(zfs, ("c1t1d0", "c1t2d0"), timeout=42)
    assert demo.runner is zfs.runner and demo.timeout == 42


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [a.name for a in node.names])
    return found


def test_the_toolkit_modules_import_each_other_without_loops():
    graph = {p.stem: _imports(p) & {q.stem for q in TOOLKITS.glob("*.py")}
             for p in TOOLKITS.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    loops = sorted(m for m in graph if reaches(m, m, {m}))
    assert not loops, f"import loops through: {loops}"
    assert "selfheal" not in graph["zfs"]
