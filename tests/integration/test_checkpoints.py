"""Whole-VM checkpoints (qcow2 internal snapshots) on the Linux test guest.

RAM state (a file in the guest's tmpfs root) and disk state (bytes on a qcow2
data disk) both go back to the checkpoint.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from smartos_lab.errors import CheckpointError, ConfigError
from smartos_lab.machine.disks import create_blank
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.shell import ConsoleShell
from smartos_lab.machine.spec import Disk
from tests.guest.machines import bare_spec, booted_guest

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    data = create_blank(tmp_path_factory.mktemp("ckpt") / "data.qcow2", "64M")
    with booted_guest(f"ckpt-{os.getpid()}", disks=(Disk(data),)) as b:
        yield b.machine


@pytest.fixture(scope="module")
def shell(machine):
    return ConsoleShell(machine.console)


def disk_head(shell) -> str:
    return shell.check("dd if=/dev/vda bs=16 count=1 2>/dev/null").stdout


def test_restore_brings_back_ram_and_disk_state(machine, shell):
    shell.check("echo before > /root/state; printf disk-before____ | dd of=/dev/vda conv=fsync")
    saved = machine.checkpoint("base")
    shell.check("echo after > /root/state; printf disk-after_____ | dd of=/dev/vda conv=fsync")
    assert shell.check("cat /root/state").stdout == "after\n"
    assert disk_head(shell).startswith("disk-after")

    restored = machine.restore("base")
    assert machine.qmp.status() == "running"
    assert shell.check("cat /root/state").stdout == "before\n"
    assert disk_head(shell).startswith("disk-before")
    print(f"\ncheckpoint save {saved:.3f} s, restore {restored:.3f} s "
          f"(384 MiB guest, TCG)")


def test_save_and_restore_times_are_measured_and_repeatable(machine, shell):
    saves, restores = [], []
    for _ in range(3):
        saves.append(machine.checkpoint("timing"))
        shell.check("echo touched > /root/t")
        restores.append(machine.restore("timing"))
        assert shell.run("cat /root/t").exit_status == 1
    print(f"\nsave {sorted(saves)[1]:.3f} s median of {[f'{s:.3f}' for s in saves]}, "
          f"restore {sorted(restores)[1]:.3f} s median of {[f'{r:.3f}' for r in restores]}")
    assert all(0 < t < 60 for t in saves + restores)
    machine.delete_checkpoint("timing")


def test_checkpoints_are_listed_with_size_date_and_clock(machine):
    machine.checkpoint("listed")
    infos = {c.name: c for c in machine.checkpoints()}
    info = infos["listed"]
    assert info.vm_state_size > 1 << 20                # RAM of a booted guest
    assert abs(info.date - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert info.vm_clock > 0
    assert "base" in infos                              # from the first test
    machine.delete_checkpoint("listed")
    assert "listed" not in {c.name for c in machine.checkpoints()}


def test_saving_under_an_existing_name_replaces_it(machine):
    machine.checkpoint("again")
    first = {c.name: c for c in machine.checkpoints()}["again"]
    machine.checkpoint("again")
    names = [c.name for c in machine.checkpoints()]
    assert names.count("again") == 1
    assert {c.name: c for c in machine.checkpoints()}["again"].date >= first.date
    machine.delete_checkpoint("again")


def test_a_paused_machine_stays_paused_after_restore(machine, shell):
    machine.qmp.pause()
    try:
        machine.restore("base")
        assert machine.qmp.status() == "paused"
    finally:
        machine.qmp.resume()
    assert shell.check("echo ok").stdout == "ok\n"


def test_unknown_checkpoints_are_clear_errors_and_leave_the_guest_running(machine):
    with pytest.raises(CheckpointError, match="no checkpoint named 'nope'.*base"):
        machine.restore("nope")
    with pytest.raises(CheckpointError, match="no checkpoint named 'nope'"):
        machine.delete_checkpoint("nope")
    assert machine.qmp.status() == "running"


@pytest.mark.parametrize("bad", ["", "a b", "-x", "123", "x;quit"])
def test_bad_checkpoint_names_are_config_errors(machine, bad):
    with pytest.raises(ConfigError, match="invalid checkpoint name"):
        machine.checkpoint(bad)


def test_a_machine_without_a_writable_qcow2_disk_cannot_checkpoint():
    with QemuMachine.launch(bare_spec(f"nodisk-{os.getpid()}")) as m:
        with pytest.raises(CheckpointError, match="need a writable qcow2 disk"):
            m.checkpoint("x")
        assert m.checkpoints() == []


def test_a_writable_raw_disk_blocks_checkpoints(tmp_path):
    raw = tmp_path / "raw.img"
    raw.write_bytes(bytes(1 << 20))
    data = create_blank(tmp_path / "data.qcow2", "8M")
    spec = bare_spec(f"rawdisk-{os.getpid()}", disks=(Disk(data), Disk(raw, format="raw")))
    with QemuMachine.launch(spec) as m:
        with pytest.raises(CheckpointError, match="every writable disk to be qcow2.*raw"):
            m.checkpoint("x")
