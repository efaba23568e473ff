"""Golden lab and linked clones on the Linux test guest (a test substrate, not SmartOS).

The golden is a real test-guest lab; clones are real qcow2 overlays started by
the real Lab facade, from its disks (a boot) or from a checkpoint (QEMU loads
the RAM the checkpoint saved: no boot).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartos_lab import clones
from smartos_lab.errors import ConfigError, LabError
from smartos_lab.lab import Lab, LabDir, lab_names, register_strategy
from smartos_lab.machine.disks import image_info
from tests.guest.build import READY_LINE
from tests.guest.strategy import TestGuestStrategy

pytestmark = pytest.mark.guest

GOLDEN = f"golden-{os.getpid()}"
MNT = "/mnt/data"           # the data disk, an ext2 file system the golden made


def _strategy() -> TestGuestStrategy:
    return TestGuestStrategy(memory_mib=256)


def _up(name: str, messages: list | None = None) -> Lab:
    return Lab.up(name, strategy=_strategy(), progress=(messages.append if messages is not None
                                                        else False))


def _mount(lab: Lab) -> None:
    lab.check(f"mkdir -p {MNT} && (grep -q ' {MNT} ' /proc/mounts || mount -t ext2 /dev/vda {MNT})")


def _write(lab: Lab, name: str) -> None:
    lab.check(f"echo {name} > {MNT}/{name}.txt && sync")


def _files_on_disk(path: Path, tmp_path: Path) -> set[str]:
    """The files in the ext2 file system on qcow2 disk ``path``, read on the host."""
    raw = tmp_path / f"{path.parent.parent.name}.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(path), str(raw)], check=True)
    out = subprocess.run(["debugfs", "-R", "ls -p /", str(raw)], capture_output=True, text=True,
                         check=True).stdout
    names = {line.split("/")[5] for line in out.splitlines() if line.count("/") >= 6}
    return names - {".", "..", "lost+found"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def golden():
    register_strategy("test-guest", _strategy)
    lab = _up(GOLDEN)
    lab.check("mke2fs -q /dev/vda")
    _mount(lab)
    _write(lab, "golden")
    lab.checkpoint("ready")
    lab.uptime_at_checkpoint = float(lab.check("cut -d' ' -f1 /proc/uptime").stdout)
    yield lab
    for name in lab_names():
        try:
            Lab.attach(name).down()
        except LabError:
            pass


def test_a_running_lab_is_not_cloned_without_a_checkpoint_and_nothing_is_made(golden):
    with pytest.raises(LabError, match="is running.*take a checkpoint and clone that"):
        golden.clone("nockpt")
    assert not LabDir("nockpt").path.exists()
    assert _leftovers(golden.lab_dir.path.parent) == []


def test_a_clone_to_an_existing_name_is_refused(golden):
    with pytest.raises(ConfigError, match=f"a lab named {GOLDEN!r} already exists"):
        golden.clone(GOLDEN, from_checkpoint="ready")


def test_an_unknown_checkpoint_is_refused_before_anything_is_made(golden):
    with pytest.raises(LabError, match="no checkpoint named 'nope'.*ready"):
        golden.clone("c-nope", from_checkpoint="nope")
    assert not LabDir("c-nope").path.exists()


def test_a_clone_from_a_checkpoint_reaches_a_shell_without_booting(golden):
    info = golden.clone("c1", from_checkpoint="ready")
    assert info.base is not None and info.base.ram.is_file()
    messages: list[str] = []
    lab = _up("c1", messages)
    try:
        uptime = float(lab.check("cut -d' ' -f1 /proc/uptime").stdout)
        assert uptime >= golden.uptime_at_checkpoint          # the golden's uptime continues
        assert READY_LINE not in lab.serial_log.read_text(errors="replace")   # no boot
        assert any("checkpoint's RAM" in m.message for m in messages)
        assert lab.sh("echo via-$((1+1))").stdout == "via-2\n"
        assert lab.check(f"cat {MNT}/golden.txt").stdout == "golden\n"     # still mounted
        assert lab.machine.ports["ssh"] != golden.machine.ports["ssh"]
        key = lab.lab_dir.ssh_key
        assert key.read_bytes() == golden.lab_dir.ssh_key.read_bytes()
        assert key.stat().st_mode & 0o077 == 0
        assert _leftovers(golden.lab_dir.path.parent) == []
    finally:
        lab.down()


def test_two_clones_run_at_once_and_neither_sees_the_others_writes(golden, tmp_path):
    golden.down()
    golden_disk = golden.lab_dir.disks_dir / "data0.qcow2"
    before = _sha256(golden_disk)
    golden.clone("c2", from_checkpoint="ready")
    clones.clone(golden.lab_dir.path, "c3")                 # the stopped golden's disks: a boot
    c2, c3 = _up("c2"), _up("c3")
    try:
        _mount(c3)                                      # c3 booted; c2 resumed with it mounted
        _write(c2, "c2")
        _write(c3, "c3")
        assert c2.check(f"ls {MNT}").stdout.split() == ["c2.txt", "golden.txt", "lost+found"]
        assert c3.check(f"ls {MNT}").stdout.split() == ["c3.txt", "golden.txt", "lost+found"]
    finally:
        c2.down()
        c3.down()
    assert _files_on_disk(LabDir("c2").disks_dir / "data0.qcow2", tmp_path) == \
        {"golden.txt", "c2.txt"}
    assert _files_on_disk(LabDir("c3").disks_dir / "data0.qcow2", tmp_path) == \
        {"golden.txt", "c3.txt"}
    assert _files_on_disk(golden_disk, tmp_path) == {"golden.txt"}
    assert _sha256(golden_disk) == before
    assert image_info(LabDir("c3").disks_dir / "data0.qcow2").backing_file == golden_disk


def test_a_golden_with_clones_is_not_destroyed_or_booted(golden):
    cli = [sys.executable, "-m", "smartos_lab.cli"]
    out = subprocess.run(cli + ["destroy", GOLDEN, "--yes"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "read-only while clones depend on it (c1, c2, c3)" in out.stderr
    assert golden.lab_dir.exists()
    with pytest.raises(LabError, match=r"cannot up .*\(c3\)"):
        _up(GOLDEN)
    ps = subprocess.run(cli + ["ps", "--all"], capture_output=True, text=True, timeout=60)
    assert f"{GOLDEN}@ready" in ps.stdout and "c3" in ps.stdout


def test_force_makes_the_clones_standalone_before_the_golden_goes(golden):
    cli = [sys.executable, "-m", "smartos_lab.cli"]
    out = subprocess.run(cli + ["destroy", GOLDEN, "--yes", "--force"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert not golden.lab_dir.path.exists()
    assert image_info(LabDir("c3").disks_dir / "data0.qcow2").backing_file is None
    c3 = _up("c3")
    try:
        _mount(c3)
        assert c3.check(f"cat {MNT}/c3.txt").stdout == "c3\n"
    finally:
        c3.down()
