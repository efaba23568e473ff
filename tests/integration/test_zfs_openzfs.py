"""The ZFS toolkit end to end on real OpenZFS (2.1, on Linux) in the ``zfs`` test guest.

This is OpenZFS-on-Linux, a test substrate: the zpool/zfs command-line
interface and its ``-H -p`` output are the same as illumos's for what is
tested here.  Device names are Linux partitions (``/dev/vda1``: whole-disk
vdevs wait for udev, which the guest does not run, so the disks are
partitioned with sfdisk first); illumos device names (``c1t0d0``) are covered
by the unit tests and the ``smartos`` tests.

One guest boots for the module, with four raw 128 MiB disks (raw so the host
can corrupt one side of a mirror directly in its image file).
"""
from __future__ import annotations

import os
import shlex
import time

import pytest

from smartos_lab.errors import CommandFailed, ConfigError
from smartos_lab.machine.disks import create_blank
from smartos_lab.machine.shell import ConsoleShell
from smartos_lab.machine.spec import Disk
from smartos_lab.toolkits.selfheal import SelfHealingDemo
from smartos_lab.toolkits.zfs import Zfs
from tests.guest.build import ensure_test_guest
from tests.guest.machines import booted_guest

pytestmark = [pytest.mark.zfs, pytest.mark.guest, pytest.mark.slow, pytest.mark.timeout(1800)]

DISKS = ("vda", "vdb", "vdc", "vdd")   # no root disk: the initramfs is the root
PARTS = tuple(f"/dev/{d}1" for d in DISKS)
DISK_SIZE = "128M"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def guest():
    return ensure_test_guest("zfs")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    base = tmp_path_factory.mktemp("zfs-disks")
    return [create_blank(base / f"{d}.raw", DISK_SIZE, fmt="raw") for d in DISKS]


@pytest.fixture(scope="module")
def shell(guest, images, tmp_path_factory):
    log = tmp_path_factory.mktemp("zfs-logs") / "serial.log"
    disks = tuple(Disk(p, interface="virtio", format="raw") for p in images)
    try:
        with booted_guest(f"zfs-{os.getpid()}", guest=guest, memory_mib=1024, cpus=1, disks=disks,
                          serial_log=log) as booted:
            TIMINGS["boot_s"] = booted.boot_seconds
            sh = ConsoleShell(booted.console)
            sh.setup()
            for disk in DISKS:         # one GPT partition over each disk (sfdisk's defaults)
                sh.check(f"printf 'label: gpt\\n,,\\n' | sfdisk -q /dev/{disk}", timeout=60)
            sh.check("for p in " + " ".join(PARTS) + "; do test -b $p || exit 1; done", timeout=30)
            yield sh
    finally:
        print(f"\nOpenZFS guest timings: {TIMINGS}")


@pytest.fixture(scope="module")
def zfs(shell):
    return Zfs(shell, timeout=300)


@pytest.fixture
def tank(zfs):
    """A fresh mirror pool 'tank' on the first two disks, destroyed afterwards."""
    zfs.create_pool("tank", PARTS[:2], layout="mirror", force=True)
    yield "tank"
    zfs.destroy_pool("tank", force=True)


def timed(name: str):
    class _T:
        def __enter__(self):
            self.t = time.monotonic()

        def __exit__(self, *exc):
            TIMINGS[name] = round(time.monotonic() - self.t, 2)
    return _T()


# ------------------------------------------------------------------ pools
def test_mirror_pool_is_listed_typed_and_survives_export_import(zfs, tank):
    pool = zfs.pool("tank")
    assert pool.name == "tank" and pool.health == "ONLINE"
    assert 100 * 2**20 < pool.size < 128 * 2**20 and pool.allocated < pool.size
    assert isinstance(pool.capacity, float) and zfs.dedup_ratio("tank") == 1.0
    status = zfs.status("tank")
    mirror = status.root.children[0]
    assert mirror.kind == "mirror" and [v.name for v in mirror.children] == ["vda1", "vdb1"]
    assert [v.checksum_errors for v in status.root.leaves()] == [0, 0]
    with timed("export_import_s"):
        zfs.export_pool("tank")
        assert "tank" not in [p.name for p in zfs.pools()]
        zfs.import_pool("tank", search_dirs=["/dev"])
    assert zfs.pool("tank").health == "ONLINE"


@pytest.mark.parametrize("layout,count,kind", [("raidz", 3, "raidz1"), ("raidz2", 4, "raidz2"),
                                               ("stripe", 2, None)])
def test_pool_layouts(zfs, layout, count, kind):
    zfs.create_pool("lay", PARTS[:count], layout=layout, force=True)
    try:
        root = zfs.status("lay").root
        if kind is None:
            assert [v.name for v in root.children] == [p[5:] for p in PARTS[:count]]
        else:
            assert root.children[0].name.startswith(kind) and len(root.leaves()) == count
    finally:
        zfs.destroy_pool("lay", force=True)
    assert "lay" not in [p.name for p in zfs.pools()]


def test_zpool_errors_surface_as_command_failed(zfs):
    with pytest.raises(CommandFailed) as info:
        zfs.destroy_pool("nosuchpool")
    assert info.value.result.exit_status != 0 and "nosuchpool" in info.value.result.stdout


# ------------------------------------------------------------------ datasets & properties
HOSTILE_NOTE = "it's; $(reboot) `id` \"quoted\" & | > x"


def test_datasets_with_typed_properties_and_hostile_values(zfs, shell, tank):
    zfs.create("tank/data set/child", parents=True,
               properties={"compression": "lz4", "com.example:note": HOSTILE_NOTE})
    mount = zfs.get("tank/data set/child", "mountpoint")
    assert mount == "/tank/data set/child"
    shell.check(f"yes smartos-lab-compressible-text | head -c 8000000 > {shlex.quote(mount)}/f"
                f" && sync", timeout=300)
    props = zfs.properties("tank/data set/child", ["used", "compressratio", "compression",
                                                    "mounted", "com.example:note", "quota"])
    assert props["compression"] == "lz4" and props["mounted"] is True
    assert props["com.example:note"] == HOSTILE_NOTE
    assert isinstance(props["used"], int) and 0 < props["used"] < 8_000_000
    assert isinstance(props["compressratio"], float) and props["compressratio"] > 5
    assert zfs.compression_ratio("tank/data set/child") == props["compressratio"]
    zfs.set("tank/data set/child", quota="64M")
    assert zfs.get("tank/data set/child", "quota") == 64 * 2**20
    listed = {d.name: d for d in zfs.datasets("tank")}
    assert set(listed) == {"tank", "tank/data set", "tank/data set/child"}
    child = listed["tank/data set/child"]
    assert child.props["type"] == "filesystem" and child.used == props["used"]
    assert child.props["compressratio"] == props["compressratio"]
    zfs.create("tank/vol", volume_size="16M", sparse=True)
    assert zfs.get("tank/vol", "volsize") == 16 * 2**20
    zfs.destroy("tank/data set", recursive=True)
    assert not zfs.exists("tank/data set") and zfs.exists("tank/vol")


def test_names_zfs_would_refuse_never_reach_the_guest(zfs, tank):
    for name in ("tank/a;reboot", "tank/$(id)", "tank/a\nb"):
        with pytest.raises(ConfigError):
            zfs.create(name)


# ------------------------------------------------------------------ snapshots, clones, send
def write(shell, path: str, text: str) -> None:
    shell.check(f"printf %s {shlex.quote(text)} > {shlex.quote(path)} && sync")


def read(shell, path: str) -> str:
    return shell.check(f"cat {shlex.quote(path)}").stdout


def test_snapshot_rollback_and_clone(zfs, shell, tank):
    zfs.create("tank/app")
    write(shell, "/tank/app/version", "v1")
    assert zfs.snapshot("tank/app", "before upgrade") == "tank/app@before upgrade"
    write(shell, "/tank/app/version", "v2")
    zfs.snapshot("tank/app", "after")
    snaps = zfs.snapshots("tank/app")
    assert [s.name for s in snaps] == ["tank/app@before upgrade", "tank/app@after"]
    assert all(s.is_snapshot and isinstance(s.referenced, int) for s in snaps)
    with pytest.raises(CommandFailed):            # newer snapshots exist: needs -r
        zfs.rollback("tank/app@before upgrade")
    zfs.rollback("tank/app@before upgrade", destroy_newer=True)
    assert read(shell, "/tank/app/version") == "v1"
    assert [s.name for s in zfs.snapshots("tank/app")] == ["tank/app@before upgrade"]
    zfs.clone("tank/app@before upgrade", "tank/app-clone")
    assert zfs.origin("tank/app-clone") == "tank/app@before upgrade"
    assert read(shell, "/tank/app-clone/version") == "v1"
    zfs.promote("tank/app-clone")
    assert zfs.origin("tank/app") == "tank/app-clone@before upgrade"


def test_full_and_incremental_send_receive(zfs, shell, tank):
    zfs.create("tank/src")
    write(shell, "/tank/src/a", "first")
    zfs.snapshot("tank/src", "s1")
    with timed("send_full_s"):
        zfs.send_receive("tank/src@s1", "tank/dst")
    assert read(shell, "/tank/dst/a") == "first"
    write(shell, "/tank/src/b", "second")
    zfs.snapshot("tank/src", "s2")
    zfs.send_receive("tank/src@s2", "tank/dst", incremental_from="@s1", force=True)
    assert read(shell, "/tank/dst/b") == "second"
    assert [s.name for s in zfs.snapshots("tank/dst")] == ["tank/dst@s1", "tank/dst@s2"]
    with pytest.raises(CommandFailed):              # the target exists: a full stream fails
        zfs.send_receive("tank/src@s1", "tank/dst")


def test_dedup_ratio_rises_with_duplicate_blocks(zfs, shell, tank):
    zfs.create("tank/dd", properties={"dedup": "on", "recordsize": "128K"})
    shell.check("dd if=/dev/urandom of=/tmp/blob bs=131072 count=32 2>/dev/null && "
                "for i in 1 2 3 4; do cp /tmp/blob /tank/dd/copy$i; done && sync && "
                "rm /tmp/blob", timeout=300)
    ratio = zfs.dedup_ratio("tank")
    assert ratio > 2.0, ratio


# ------------------------------------------------------------------ scrub
def test_scrub_progress_until_finished(zfs, shell, tank):
    shell.check("dd if=/dev/urandom of=/tank/fill bs=1048576 count=24 2>/dev/null && sync",
                timeout=300)
    seen = []
    with timed("scrub_s"):
        zfs.scrub("tank")
        final = zfs.wait_scrub("tank", timeout=600, poll=0.5, progress=seen.append)
    assert seen and final.function == "scrub" and final.state == "finished"
    assert final.errors == 0 and final.repaired_bytes == 0
    assert zfs.scrub_status("tank").state == "finished"


# ------------------------------------------------------------------ self-healing
def test_self_healing_walkthrough_corrupting_from_the_guest(zfs):
    demo = SelfHealingDemo(zfs, PARTS[:2], pool="heal", data_mib=16, corrupt_mib=64,
                           import_dirs=("/dev",))
    try:
        with timed("selfheal_guest_s"):
            report = demo.run(side=1)
    finally:
        demo.destroy()
    TIMINGS["selfheal_guest_cksum"] = report.errors_detected
    TIMINGS["selfheal_guest_repaired"] = report.scrub.repaired_bytes
    print(report.status_after_scrub)
    assert report.data_intact, (report.checksum_written, report.checksum_read_back)
    assert report.errors_detected > 0
    assert report.checksum_errors_after_scrub["vda1"] == 0
    assert report.scrub.state == "finished" and report.scrub.errors == 0
    assert report.scrub.repaired_bytes > 0
    assert "repaired" in report.status_after_scrub
    assert report.healed
    assert all(v == 0 for v in demo_errors_after_clear(report).values())


def demo_errors_after_clear(report) -> dict[str, int]:
    from smartos_lab.parsers.zpool import parse_zpool_status

    root = parse_zpool_status(report.status_after_clear)[0].root
    return {leaf.name: leaf.checksum_errors for leaf in root.leaves()}


def test_self_healing_walkthrough_corrupting_the_raw_image_from_the_host(zfs, shell, images):
    start = int(shell.check("cat /sys/block/vdc/vdc1/start").stdout.strip())   # 512 B sectors
    demo = SelfHealingDemo(zfs, (PARTS[2], PARTS[3]), pool="hostheal", data_mib=16,
                           corrupt_mib=64, import_dirs=("/dev",))
    try:
        with timed("selfheal_host_s"):
            report = demo.run(side=0, host_image=images[2], vdev_offset=start * 512)
    finally:
        demo.destroy()
    TIMINGS["selfheal_host_cksum"] = report.errors_detected
    assert report.corrupted == "/dev/vdc1"
    assert report.data_intact and report.errors_detected > 0 and report.healed


def test_self_healing_walkthrough_on_file_vdevs_counts_the_files_errors(zfs, shell):
    """Notebook 02's set-up: a mirror of two files.  ``zpool status`` prints a file vdev by
    its full path (only disks are shortened), so the demo must find the errors under it."""
    base = "/var/tmp/vdevs"
    files = (f"{base}/h0", f"{base}/h1")
    shell.check(f"mkdir -p {base} && mount -t tmpfs -o size=200m tmpfs {base} && "
                + " && ".join(f"dd if=/dev/zero of={f} bs=1048576 count=0 seek=80 2>/dev/null"
                              for f in files), timeout=60)
    demo = SelfHealingDemo(zfs, files, pool="fileheal", data_mib=8, corrupt_mib=48,
                           import_dirs=(base,))
    try:
        with timed("selfheal_files_s"):
            report = demo.run(side=1)
    finally:
        try:
            demo.destroy()
        finally:
            shell.check(f"umount {base}", timeout=60)
    TIMINGS["selfheal_files_cksum"] = report.errors_detected
    print(report.status_after_read)
    assert set(report.checksum_errors_after_read) == set(files)
    assert report.corrupted == files[1] and report.errors_detected > 0
    assert report.data_intact and report.healed
