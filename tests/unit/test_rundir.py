"""Run directories: private, owned by us, validated names, short socket paths."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError, LabInUse, LabNotFound, RunDirError
from smartos_lab.machine.rundir import RunDir, ensure_run_root, validate_name

NOBODY = 65534


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "run"
    r.mkdir(mode=0o700)
    return r


@pytest.mark.parametrize("name", ["a", "lab1", "my-lab_2.test", "A" * 40, "9lives"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-lab", ".hidden", "a" * 41, "a/b", "a b", "lab:1", "ü",
                                  "a,b", "../x"])
def test_invalid_names_are_config_errors(name):
    with pytest.raises(ConfigError, match="invalid lab name"):
        validate_name(name)


def test_create_makes_a_private_dir_with_the_expected_files(root):
    rd = RunDir.create("lab1", root)
    assert rd.path == root / "lab1"
    assert stat.S_IMODE(rd.path.stat().st_mode) == 0o700
    assert rd.qmp_socket.parent == rd.console_socket.parent == rd.pidfile.parent == rd.path
    assert {rd.serial_log.name, rd.stderr_log.name, rd.meta_file.name} == {
        "serial.log", "qemu.log", "machine.json"}


def test_create_makes_a_missing_run_root_private(tmp_path):
    rd = RunDir.create("lab1", tmp_path / "new" / "root")
    assert stat.S_IMODE((tmp_path / "new" / "root").stat().st_mode) == 0o700
    assert rd.path.is_dir()


def test_a_run_root_with_group_or_other_permissions_is_refused(root):
    root.chmod(0o755)
    with pytest.raises(RunDirError, match="mode 0755.*private"):
        RunDir.create("lab1", root)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_a_run_root_owned_by_another_user_is_refused(root):
    os.chown(root, NOBODY, NOBODY)
    with pytest.raises(RunDirError, match="owned by uid 65534"):
        RunDir.create("lab1", root)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_a_run_dir_owned_by_another_user_is_refused(root):
    (root / "lab1").mkdir(mode=0o700)
    os.chown(root / "lab1", NOBODY, NOBODY)
    with pytest.raises(RunDirError, match="owned by uid"):
        RunDir.create("lab1", root)
    with pytest.raises(RunDirError, match="owned by uid"):
        RunDir.open("lab1", root)


def test_an_open_run_dir_is_refused(root):
    (root / "lab1").mkdir(mode=0o755)
    with pytest.raises(RunDirError, match="0755"):
        RunDir.open("lab1", root)


def test_a_symlinked_run_root_is_refused(tmp_path, root):
    link = tmp_path / "link"
    link.symlink_to(root)
    with pytest.raises(RunDirError, match="not a directory"):
        ensure_run_root(link)


def test_a_stale_run_dir_of_a_dead_lab_is_reused(root):
    rd = RunDir.create("lab1", root)
    rd.pidfile.write_text("999999\n")
    (rd.path / "leftover").write_text("x")
    rd.release()                                    # that launch ended; its QEMU is gone
    rd2 = RunDir.create("lab1", root)
    assert rd2.path.is_dir() and not (rd2.path / "leftover").exists()


def test_a_name_being_launched_is_refused_and_its_run_dir_left_alone(root):
    first = RunDir.create("lab1", root)             # no pid yet: QEMU not started
    (first.path / "mine").write_text("x")
    assert first.launching() and RunDir(first.path).launching()
    with pytest.raises(LabInUse, match="being started by another process"):
        RunDir.create("lab1", root)
    assert (first.path / "mine").exists()
    first.release()
    assert not RunDir(first.path).launching()


def test_a_run_dir_holding_a_live_lab_is_refused(root):
    rd = RunDir.create("lab1", root)
    # a process whose command line carries our -name marker (it is not QEMU, but looks like one)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                             "-name", "smartos-lab:lab1,process=sl-lab1"])
    try:
        _wait_for_cmdline(proc.pid, b"smartos-lab:lab1")     # until the child has exec'd
        rd.pidfile.write_text(f"{proc.pid}\n")
        rd.release()                                         # as launch() does once QEMU runs
        assert rd.live_pid() == proc.pid
        with pytest.raises(RunDirError, match="already running"):
            RunDir.create("lab1", root)
    finally:
        proc.kill()
        proc.wait()
    assert rd.live_pid() is None


def test_a_pid_of_some_other_process_is_not_a_live_lab(root):
    rd = RunDir.create("lab1", root)
    rd.pidfile.write_text(f"{os.getpid()}\n")       # pytest itself: not lab1's QEMU
    assert rd.live_pid() is None


def test_too_long_socket_paths_are_refused_clearly(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 30)
    with pytest.raises(RunDirError, match="unix sockets allow 107"):
        RunDir.create("lab1", deep)


def test_open_of_an_unknown_lab_is_lab_not_found(root):
    with pytest.raises(LabNotFound, match="no lab named 'ghost'"):
        RunDir.open("ghost", root)


def test_meta_round_trips_and_remove_deletes_everything(root):
    rd = RunDir.create("lab1", root)
    rd.write_meta({"pid": 42, "ports": {"ssh": 2222}})
    assert json.loads(rd.meta_file.read_text())["ports"] == {"ssh": 2222}
    assert stat.S_IMODE(rd.meta_file.stat().st_mode) == 0o600
    assert rd.read_meta()["pid"] == 42
    assert rd.pid() == 42                       # no pid file yet: machine.json's pid
    rd.remove()
    assert not rd.path.exists()


def _wait_for_cmdline(pid: int, marker: bytes, timeout: float = 10.0) -> None:
    import time
    deadline = time.monotonic() + timeout
    while marker not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "child never exec'd"
        time.sleep(0.01)
