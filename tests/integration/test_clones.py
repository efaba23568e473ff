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
MARK_OFFSET = 4096


def _strategy() -> TestGuestStrategy:
    return TestGuestStrategy(memory_mib=256)


def _up(name: str, messages: list[str] | None = None) -> Lab:
    return Lab.up(name, strategy=_strategy(), progress=(messages.append if messages is not None
                                                        else False))


def _write_mark(lab: Lab, text: str) -> None:
    lab.check(f"printf %s {text} | dd of=/dev/vda bs=512 seek={MARK_OFFSET // 512} "
              "conv=notrunc 2>/dev/null && sync")


def _disk_bytes(path: Path, tmp_path: Path, offset: int, length: int) -> bytes:
    raw = tmp_path / f"{path.parent.parent.name}.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(path), str(raw)], check=True)
    with open(raw, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def golden():
    register_strategy("test-guest", _strategy)
    lab = _up(GOLDEN)
    _write_mark(lab, "golden-mark")
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
        assert any("checkpoint's RAM" in m for m in messages)
        assert lab.sh("echo via-$((1+1))").stdout == "via-2\n"
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
        _write_mark(c2, "mark-of-c2")
        _write_mark(c3, "mark-of-c3")
        read = f"dd if=/dev/vda bs=1 skip={MARK_OFFSET} count=10 2>/dev/null"
        assert c2.check(read).stdout == "mark-of-c2"
        assert c3.check(read).stdout == "mark-of-c3"
    finally:
        c2.down()
        c3.down()
    assert _disk_bytes(LabDir("c2").disks_dir / "data0.qcow2", tmp_path, MARK_OFFSET, 10) == \
        b"mark-of-c2"
    assert _disk_bytes(LabDir("c3").disks_dir / "data0.qcow2", tmp_path, MARK_OFFSET, 10) == \
        b"mark-of-c3"
    assert _disk_bytes(golden_disk, tmp_path, MARK_OFFSET, 11) == b"golden-mark"
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
        assert c3.check(f"dd if=/dev/vda bs=1 skip={MARK_OFFSET} count=10 2>/dev/null").stdout \
            == "mark-of-c3"
    finally:
        c3.down()
