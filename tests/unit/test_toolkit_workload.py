"""BackgroundLoad for real in a local /bin/sh: one loop per name, stoppable, self-ending."""
from __future__ import annotations

import subprocess
import time

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.toolkits.workload import CPU_SPIN, BackgroundLoad

from ._runners import LocalShell, RecordingRunner


def _alive(pid: int) -> bool:
    """Running (a zombie left for a container's init to reap does not count)."""
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return state.returncode == 0 and not state.stdout.strip().startswith("Z")


@pytest.fixture
def load(tmp_path):
    made = BackgroundLoad(LocalShell(), "unit-test", "sleep 1", rounds=30, directory=str(tmp_path))
    yield made
    made.stop()


def test_a_second_start_does_not_start_a_second_loop(load, tmp_path):
    assert load.start() is True
    pid = int((tmp_path / "smartos-lab-load-unit-test.pid").read_text())
    assert load.start() is False and load.running()
    assert int((tmp_path / "smartos-lab-load-unit-test.pid").read_text()) == pid


def test_stop_ends_the_loop_and_its_current_command(load, tmp_path):
    load.start()
    pid = int((tmp_path / "smartos-lab-load-unit-test.pid").read_text())
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    assert load.stop() is True
    time.sleep(0.3)
    assert not _alive(pid) and not any(_alive(int(c)) for c in children)
    assert not load.running() and load.stop() is False
    assert load.start() is True                        # and it can be started again


def test_the_loop_ends_by_itself_after_its_rounds(tmp_path):
    quick = BackgroundLoad(LocalShell(), "quick", "sleep 1", rounds=2, directory=str(tmp_path))
    assert quick.start()
    deadline = time.monotonic() + 10
    while quick.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not quick.running()
    assert not (tmp_path / "smartos-lab-load-quick.pid").exists()


def test_in_a_zone_it_runs_through_zlogin():
    runner = RecordingRunner({"zlogin": "started\n"})
    zone = "54f1cc77-68f1-42ab-acac-5c4f64f5d6e0"
    assert BackgroundLoad(runner, "hog", CPU_SPIN, zone=zone).start()
    assert runner.commands[0].startswith(f"zlogin {zone} 'sh -c ")


@pytest.mark.parametrize("kw", [{"name": "Bad Name"}, {"rounds": 0}, {"zone": "web01"},
                                {"body": "a\nb"}])
def test_bad_arguments_are_refused(kw):
    args = {"name": "ok", "body": "true", "rounds": 1, **kw}
    with pytest.raises(ConfigError):
        BackgroundLoad(RecordingRunner(), args.pop("name"), args.pop("body"), **args)
