"""ZFS part 2 toolkit calls end to end on real OpenZFS (2.1, Linux) in the ``zfs`` test guest.

zfs diff, zpool iostat -H -p, attach/replace/detach onto spare devices (what
notebook 02's spare files are for), holds and zpool history: real output of
the real commands, parsed by the same parsers the SmartOS lab uses (the
OpenZFS command-line output of these is the one illumos prints).
"""
from __future__ import annotations

import os
import shlex
import time

import pytest

from smartos_lab.errors import CommandFailed
from smartos_lab.machine.disks import create_blank
from smartos_lab.machine.shell import ConsoleShell
from smartos_lab.machine.spec import Disk
from smartos_lab.toolkits.zfs import Zfs
from tests.guest.build import ensure_test_guest
from tests.guest.machines import booted_guest

pytestmark = [pytest.mark.zfs, pytest.mark.guest, pytest.mark.slow, pytest.mark.timeout(1800)]

DISKS = ("vda", "vdb", "vdc")
PARTS = tuple(f"/dev/{d}1" for d in DISKS)


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    guest = ensure_test_guest("zfs")
    base = tmp_path_factory.mktemp("zfs2-disks")
    images = [create_blank(base / f"{d}.raw", "128M", fmt="raw") for d in DISKS]
    disks = tuple(Disk(p, interface="virtio", format="raw") for p in images)
    with booted_guest(f"zfs2-{os.getpid()}", guest=guest, memory_mib=1024, cpus=1, disks=disks,
                      serial_log=base / "serial.log") as booted:
        sh = ConsoleShell(booted.console)
        sh.setup()
        for disk in DISKS:
            sh.check(f"printf 'label: gpt\\n,,\\n' | sfdisk -q /dev/{disk}", timeout=60)
        sh.check("for p in " + " ".join(PARTS) + "; do test -b $p || exit 1; done", timeout=30)
        yield sh


@pytest.fixture(scope="module")
def zfs(shell):
    return Zfs(shell, timeout=300)


@pytest.fixture
def tank(zfs):
    zfs.create_pool("tank", PARTS[:1], force=True)
    yield "tank"
    zfs.destroy_pool("tank", force=True)


def write(shell, path: str, text: str) -> None:
    shell.check(f"printf %s {shlex.quote(text)} > {shlex.quote(path)} && sync")


def test_zfs_diff_reports_created_modified_removed_and_renamed_files(zfs, shell, tank):
    zfs.create("tank/app")
    for name in ("config", "old name", "doomed"):
        write(shell, f"/tank/app/{name}", "v1")
    zfs.snapshot("tank/app", "before")
    write(shell, "/tank/app/config", "v2")
    shell.check("mv '/tank/app/old name' /tank/app/renamed && rm /tank/app/doomed && "
                "echo new > /tank/app/created && sync")
    changes = {(e.change, e.path, e.new_path, e.file_type) for e in zfs.diff("tank/app@before")}
    zfs.snapshot("tank/app", "after")
    between = {(e.change, e.path, e.new_path, e.file_type)
               for e in zfs.diff("tank/app@before", "tank/app@after")}
    assert between == changes
    assert ("M", "/tank/app/config", None, "F") in changes
    assert ("R", "/tank/app/old name", "/tank/app/renamed", "F") in changes   # \0040 unescaped
    assert ("-", "/tank/app/doomed", None, "F") in changes
    assert ("+", "/tank/app/created", None, "F") in changes


def test_zpool_iostat_Hp_exact_counters_and_interval_samples(zfs, shell, tank):
    shell.check("dd if=/dev/urandom of=/tank/blob bs=64k count=64 2>/dev/null && sync", timeout=120)
    (row,) = [r for r in zfs.iostat("tank") if r.name == "tank"]
    assert row.alloc > 4 * 2**20 and row.free > 0 and row.write_ops >= 0
    rows = zfs.iostat("tank", vdevs=True, interval=1, count=2)
    assert sorted({r.sample for r in rows}) == [0, 1, 2]
    assert {"tank", "vda1"} <= {r.name for r in rows}


def test_attach_makes_a_mirror_replace_swaps_a_side_detach_ends_it(zfs, tank):
    zfs.attach("tank", PARTS[0], PARTS[1], force=True)
    zfs.wait_scrub("tank", timeout=300)
    mirror = zfs.status("tank").root.children[0]
    assert mirror.kind == "mirror" and [v.name for v in mirror.children] == ["vda1", "vdb1"]
    zfs.replace("tank", PARTS[1], PARTS[2], force=True)
    zfs.wait_scrub("tank", timeout=300)
    deadline = time.monotonic() + 120         # the old side leaves once the resilver is done
    while (leaves := [v.name for v in zfs.status("tank").root.leaves()]) != ["vda1", "vdc1"] \
            and time.monotonic() < deadline:
        time.sleep(2)
    assert leaves == ["vda1", "vdc1"]
    zfs.detach("tank", PARTS[2])
    assert [v.name for v in zfs.status("tank").root.leaves()] == ["vda1"]
    history = zfs.history("tank")
    assert "zpool attach" in history and "zpool replace" in history


def test_a_held_snapshot_cannot_be_destroyed_until_released(zfs, tank):
    zfs.create("tank/data")
    snap = zfs.snapshot("tank/data", "keep")
    zfs.hold(snap, "workshop")
    with pytest.raises(CommandFailed):
        zfs.destroy_snapshot(snap)
    zfs.release(snap, "workshop")
    zfs.destroy_snapshot(snap)
    assert zfs.snapshots("tank/data") == []
