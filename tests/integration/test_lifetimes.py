"""Labs outlive their Python process; dead, orphaned and foreign labs are found and stopped.

Uses QEMU with no guest OS: these tests are about processes, not guests.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from smartos_lab.errors import LabNotFound
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.registry import our_qemu_processes, running_labs, stop
from smartos_lab.machine.rundir import RunDir
from smartos_lab.paths import run_root
from tests.guest.machines import bare_spec

PID = os.getpid()

LAUNCHER = """
import sys, time
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.spec import MachineSpec
m = QemuMachine.launch(MachineSpec(name=sys.argv[1], memory_mib=64))
print("LAUNCHED", m.pid, flush=True)
time.sleep(600)
"""


def qemus_named(name: str) -> list[int]:
    return [p.pid for p in our_qemu_processes() if p.name == name]


def cli(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("smartos-lab")
    cmd = [exe] if exe else [sys.executable, "-m", "smartos_lab.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)


def launch_in_subprocess(name: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, name], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    assert line.startswith("LAUNCHED"), f"launcher said {line!r}"
    return proc, int(line.split()[1])


@pytest.fixture
def cleanup():
    """Names of labs to stop after the test, whatever happened."""
    names: list[str] = []
    procs: list[subprocess.Popen] = []
    yield names, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    for name in names:
        try:
            stop(name, timeout=3)
        except LabNotFound:
            pass
        for pid in qemus_named(name):
            os.kill(pid, signal.SIGKILL)


def test_a_lab_outlives_the_python_that_launched_it_and_the_cli_stops_it(cleanup):
    name = f"life-{PID}"
    cleanup[0].append(name)
    launcher, qemu_pid = launch_in_subprocess(name)
    cleanup[1].append(launcher)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(10)

    labs = {s.name: s for s in running_labs()}
    assert labs[name].state == "running" and labs[name].pid == qemu_pid
    assert qemus_named(name) == [qemu_pid]

    ps = cli("ps")
    assert ps.returncode == 0 and name in ps.stdout and "running" in ps.stdout

    down = cli("down", name)
    assert down.returncode == 0, down.stderr
    assert f"stopped {name}" in down.stdout
    assert qemus_named(name) == []
    assert not (run_root() / name).exists()
    assert name not in {s.name for s in running_labs()}


def test_another_process_can_attach_to_a_running_lab(cleanup):
    name = f"att-{PID}"
    cleanup[0].append(name)
    launcher, qemu_pid = launch_in_subprocess(name)     # still alive and holding the QMP socket
    cleanup[1].append(launcher)
    m = QemuMachine.attach(name)
    assert m.pid == qemu_pid and m.qmp.status() == "running"
    m.qmp.pause()
    assert {s.name: s for s in running_labs()}[name].state == "paused"
    m.shutdown()
    assert qemus_named(name) == [] and not (run_root() / name).exists()


def test_a_lab_whose_qemu_was_killed_is_reported_dead_once_and_cleaned_up(cleanup):
    name = f"dead-{PID}"
    cleanup[0].append(name)
    m = QemuMachine.launch(bare_spec(name))
    os.kill(m.pid, signal.SIGKILL)
    m._proc.wait(10)
    labs = [s for s in running_labs() if s.name == name]
    assert [s.state for s in labs] == ["dead"]
    assert not m.run_dir.path.exists()
    assert [s for s in running_labs() if s.name == name] == []
    with pytest.raises(LabNotFound):
        QemuMachine.attach(name)
    m.shutdown()                                         # harmless now


def test_a_qemu_without_its_run_dir_is_an_orphan_and_down_kills_it(cleanup):
    name = f"orph-{PID}"
    cleanup[0].append(name)
    m = QemuMachine.launch(bare_spec(name, nics=()))
    shutil.rmtree(m.run_dir.path)
    labs = [s for s in running_labs() if s.name == name]
    assert [(s.state, s.pid) for s in labs] == [("orphan", m.pid)]
    assert labs[0].accel in ("tcg", "kvm") and labs[0].started

    listed = json.loads(cli("ps", "--json").stdout)
    assert {"name": name, "state": "orphan"}.items() <= next(
        lab for lab in listed if lab["name"] == name).items()

    down = cli("down", name)
    assert down.returncode == 0, down.stderr
    m._proc.wait(10)
    assert qemus_named(name) == []
    m.shutdown()


def test_stop_unknown_lab_is_lab_not_found():
    with pytest.raises(LabNotFound, match="no lab named"):
        stop(f"ghost-{PID}")


def test_a_lab_in_another_run_root_is_neither_listed_nor_an_orphan(cleanup, tmp_path):
    name = f"other-{PID}"
    cleanup[0].append(name)
    root = tmp_path / "r"
    m = QemuMachine.launch(bare_spec(name), run_root=root)
    try:
        assert name not in {s.name for s in running_labs()}
        assert [s.state for s in running_labs(root) if s.name == name] == ["running"]
        assert RunDir.open(name, root).live_pid() == m.pid
    finally:
        m.shutdown()


def test_a_run_dir_being_created_is_not_mistaken_for_a_dead_lab():
    rd = RunDir.create(f"young-{PID}")
    try:
        assert f"young-{PID}" not in {s.name for s in running_labs()}
        assert rd.path.exists()
    finally:
        rd.remove()
