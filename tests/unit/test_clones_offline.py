"""Linked clones without a VM: qemu-img overlays, checkpoint bases, guards, flatten.

The lab folders here are made by hand (lab.json + qcow2 disks made with qemu-img and
written with qemu-io); no QEMU runs.  Clones of a running guest and from a checkpoint
with RAM are tested for real in tests/integration/test_clones.py.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from smartos_lab import clones
from smartos_lab.errors import CheckpointError, ConfigError, LabError, LabNotFound
from smartos_lab.lab import LabConfig, LabDir
from smartos_lab.machine import qcow2
from smartos_lab.machine.disks import convert_snapshot, image_info

pytestmark = pytest.mark.skipif(not shutil.which("qemu-io"), reason="needs qemu-img/qemu-io")


def _io(path: Path, *commands: str, fmt: str = "qcow2") -> str:
    args = ["qemu-io", "-f", fmt]
    for c in commands:
        args += ["-c", c]
    out = subprocess.run(args + [str(path)], capture_output=True, text=True, check=True)
    assert "failed" not in out.stdout, out.stdout
    return out.stdout


def _golden(root: Path, name: str = "golden") -> Path:
    """A stopped lab folder: one 1 MiB qcow2 disk holding 0xaa, secrets, a big plain file."""
    lab = root / name
    (lab / "disks").mkdir(parents=True)
    disk = lab / "disks" / "data0.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    _io(disk, "write -P 0xaa 0 1M")
    (lab / "ssh_key").write_text("PRIVATE KEY\n")
    (lab / "ssh_key").chmod(0o600)
    (lab / "ssh_key.known_hosts").write_text("[127.0.0.1]:2222 ssh-ed25519 AAAA\n")   # host-key pin
    (lab / "platform.bin").write_bytes(b"\0" * (clones.COPY_LIMIT + 1))
    (lab / "serial.log").write_text("boot noise\n")
    config = LabConfig(name=name, strategy="test-guest", memory_mib=256,
                       strategy_state={"unix": str(lab / "platform.bin"), "other": "/elsewhere"})
    (lab / "lab.json").write_text(json.dumps(asdict(config)))
    return lab


def test_a_clone_overlays_the_disks_copies_secrets_and_links_big_files(tmp_path):
    golden = _golden(tmp_path)
    info = clones.clone(golden, "c1", labs_root=tmp_path)
    disk = info.path / "disks" / "data0.qcow2"
    assert image_info(disk).backing_file == golden / "disks" / "data0.qcow2"
    _io(disk, "read -P 0xaa 0 1M")
    assert (info.path / "ssh_key").read_text() == "PRIVATE KEY\n"
    assert (info.path / "ssh_key").stat().st_mode & 0o777 == 0o600
    assert (info.path / "ssh_key.known_hosts").read_text() == \
        (golden / "ssh_key.known_hosts").read_text()
    assert (info.path / "platform.bin").resolve() == golden / "platform.bin"
    assert not (info.path / "serial.log").exists()
    config = LabDir("c1", tmp_path).load()
    assert config.name == "c1" and config.memory_mib == 256
    assert config.strategy_state == {"unix": str(info.path / "platform.bin"), "other": "/elsewhere"}
    assert clones.Origin.of(config).label() == "golden"
    assert clones.origin_label("c1", tmp_path) == "golden"


def test_clone_refuses_an_existing_name_and_a_missing_source(tmp_path):
    golden = _golden(tmp_path)
    with pytest.raises(ConfigError, match="a lab named 'golden' already exists"):
        clones.clone(golden, "golden", labs_root=tmp_path)
    with pytest.raises(LabNotFound, match="no lab at"):
        clones.clone(tmp_path / "nope", "c1", labs_root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden"]


def test_a_checkpoint_without_ram_is_refused_and_nothing_is_left(tmp_path):
    golden = _golden(tmp_path)
    subprocess.run(["qemu-img", "snapshot", "-c", "diskonly", str(golden / "disks/data0.qcow2")],
                   check=True)
    with pytest.raises(CheckpointError, match="'diskonly' of lab 'golden' holds no RAM"):
        clones.clone(golden, "c1", checkpoint="diskonly", labs_root=tmp_path)
    with pytest.raises(CheckpointError, match=r"no checkpoint named 'x' \(checkpoints: diskonly\)"):
        clones.clone(golden, "c1", checkpoint="x", labs_root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden"]
    assert not (golden / clones.BASES_DIR).exists() or \
        list((golden / clones.BASES_DIR).iterdir()) == []


def test_the_vmstate_reader_lists_snapshots_and_refuses_what_it_cannot_read(tmp_path):
    golden = _golden(tmp_path)
    disk = golden / "disks" / "data0.qcow2"
    subprocess.run(["qemu-img", "snapshot", "-c", "one", str(disk)], check=True)
    snaps = qcow2.snapshots(disk)
    assert [(s.name, s.vm_state_size, s.disk_size) for s in snaps] == [("one", 0, 1 << 20)]
    assert qcow2.is_qcow2(disk) and not qcow2.is_qcow2(golden / "ssh_key")
    with pytest.raises(CheckpointError, match="no checkpoint named 'two'"):
        qcow2.save_vmstate(disk, "two", tmp_path / "ram")
    with pytest.raises(CheckpointError, match="not a qcow2 image"):
        qcow2.save_vmstate(golden / "platform.bin", "one", tmp_path / "ram")


def test_a_checkpoint_copy_keeps_the_backing_file_and_only_the_snapshots_clusters(tmp_path):
    base = tmp_path / "base.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(base), "1M"], check=True)
    _io(base, "write -P 0xaa 0 1M", fmt="raw")
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(top)], check=True)
    _io(top, "write -P 0xbb 64k 64k")
    subprocess.run(["qemu-img", "snapshot", "-c", "s1", str(top)], check=True)
    _io(top, "write -P 0xcc 64k 64k", "write -P 0xdd 128k 64k")     # after the snapshot
    out = convert_snapshot(top, "s1", tmp_path / "s1.qcow2")
    assert image_info(out).backing_file == base
    _io(out, "read -P 0xaa 0 64k", "read -P 0xbb 64k 64k", "read -P 0xaa 128k 64k")


def test_a_source_with_clones_is_guarded_and_force_makes_them_standalone(tmp_path):
    golden = _golden(tmp_path)
    clones.clone(golden, "c1", labs_root=tmp_path)
    _io(tmp_path / "c1/disks/data0.qcow2", "write -P 0x11 0 4k")
    assert [n for n, _ in clones.dependants(golden)] == ["c1"]
    for action in ("up", "destroy"):
        with pytest.raises(LabError, match=rf"cannot {action} lab 'golden': it is read-only "
                                           r"while clones depend on it \(c1\)"):
            clones.guard_source(golden, action)
    assert clones.release_source(golden) == ["c1"]
    clones.guard_source(golden, "destroy")
    shutil.rmtree(golden)
    disk = tmp_path / "c1/disks/data0.qcow2"
    assert image_info(disk).backing_file is None
    _io(disk, "read -P 0x11 0 4k", "read -P 0xaa 4k 1020k")
    assert not (tmp_path / "c1/platform.bin").is_symlink()
    assert clones.origin_label("c1", tmp_path) == "golden (standalone)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_shared_golden_is_a_clear_error(tmp_path):
    golden = _golden(tmp_path / "shared")
    golden.chmod(0)
    try:
        with pytest.raises(LabError, match="cannot read lab folder .* permission denied"):
            clones.clone(golden, "c1", labs_root=tmp_path / "mine")
    finally:
        golden.chmod(0o700)
    assert not (tmp_path / "mine").exists() or list((tmp_path / "mine").iterdir()) == []


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    import sys
    env = dict(os.environ, SMARTOS_LAB_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "smartos_lab.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_seats_and_clones_on_the_command_line_all_or_nothing(tmp_path):
    home = tmp_path / "home"
    golden = _golden(home / "labs")
    out = _cli("seats", "create", "golden", "2", "--prefix", "p", home=home)
    assert out.returncode == 0 and "made 2 seats: p1, p2" in out.stdout, out.stderr
    again = _cli("seats", "create", "golden", "3", "--prefix", "p", home=home)
    assert again.returncode == 1
    assert "seat name(s) already used by other labs: p1, p2; choose another --prefix" in again.stderr
    assert not (home / "labs" / "p3").exists()
    status = _cli("seats", "status", "golden", home=home)
    assert [line.split()[:2] for line in status.stdout.splitlines()[1:]] == [
        ["p1", "stopped"], ["p2", "stopped"]]
    ps = _cli("ps", "--all", home=home)
    assert [line.split()[-1] for line in ps.stdout.splitlines()[1:]] == ["-", "golden", "golden"]
    refused = _cli("destroy", "golden", "--yes", home=home)
    assert refused.returncode == 1 and "(p1, p2)" in refused.stderr
    gone = _cli("seats", "destroy", "golden", home=home)
    assert gone.returncode == 0 and "destroyed: p1, p2" in gone.stdout
    assert sorted(p.name for p in (home / "labs").iterdir()) == ["golden"]
    clone = _cli("clone", "golden", "mine", home=home)
    assert clone.returncode == 0 and "cloned golden (its disks) as mine" in clone.stdout
    assert _cli("clone", "golden", "mine", home=home).stderr.strip().endswith(
        "choose another name or destroy it first")
    assert golden.is_dir()
