"""The ZFS toolkit builds exactly these zpool/zfs commands and reads their output."""
from __future__ import annotations

import shlex

import pytest

from smartos_lab.errors import CommandFailed, CommandTimeout, ConfigError, ParseError
from smartos_lab.toolkits import selfheal
from smartos_lab.toolkits.zfs import Zfs

from ._parser_fixtures import fixture
from ._runners import RecordingRunner


def argv(command: str) -> list[str]:
    return shlex.split(command)


@pytest.fixture
def runner():
    return RecordingRunner()


@pytest.fixture
def zfs(runner):
    return Zfs(runner)


# ------------------------------------------------------------------ pools
def test_create_mirror_pool_builds_zpool_create_with_layout_and_properties(zfs, runner):
    zfs.create_pool("tank", ["/dev/vdb1", "/dev/vdc1"], layout="mirror",
                    properties={"ashift": 12}, fs_properties={"compression": "lz4"},
                    mountpoint="/tank", force=True)
    assert argv(runner.commands[-1]) == ["zpool", "create", "-f", "-o", "ashift=12", "-O",
                                         "compression=lz4", "-m", "/tank", "tank", "mirror",
                                         "/dev/vdb1", "/dev/vdc1"]


@pytest.mark.parametrize("layout,n", [("stripe", 1), ("raidz", 3), ("raidz2", 4), ("raidz3", 5)])
def test_create_pool_layouts(zfs, runner, layout, n):
    disks = [f"c1t{i}d0" for i in range(n)]
    zfs.create_pool("tank", disks, layout=layout)
    expected = ["zpool", "create", "tank"] + ([] if layout == "stripe" else [layout]) + disks
    assert argv(runner.commands[-1]) == expected


def test_create_pool_refuses_too_few_devices_and_unknown_layouts(zfs, runner):
    with pytest.raises(ConfigError):
        zfs.create_pool("tank", ["/dev/vdb1"], layout="mirror")
    with pytest.raises(ConfigError):
        zfs.create_pool("tank", ["a", "b"], layout="raid10")
    assert runner.commands == []


@pytest.mark.parametrize("device", ["/dev/vdb1; reboot", "c1t0d0 c1t1d0", "mirror", "$(id)",
                                    "c1t0d0\n"])
def test_hostile_device_names_are_one_argument_or_rejected(zfs, runner, device):
    try:
        zfs.create_pool("tank", [device])
    except ConfigError:
        assert runner.commands == []
        return
    assert argv(runner.commands[-1])[-1] == device


def test_pool_lifecycle_commands(zfs, runner):
    zfs.export_pool("tank")
    zfs.import_pool("tank", search_dirs=["/dev"])
    zfs.clear("tank", "/dev/vdc1")
    zfs.scrub("tank")
    zfs.scrub("tank", stop=True)
    zfs.destroy_pool("tank", force=True)
    assert runner.commands == ["zpool export tank", "zpool import -d /dev tank",
                               "zpool clear tank /dev/vdc1", "zpool scrub tank",
                               "zpool scrub -s tank", "zpool destroy -f tank"]


def test_failed_commands_raise_command_failed_with_the_output():
    zfs = Zfs(RecordingRunner({"zpool destroy": ("", 1)}))
    with pytest.raises(CommandFailed) as info:
        zfs.destroy_pool("tank")
    assert info.value.result.exit_status == 1 and "zpool destroy tank" in str(info.value)


# ------------------------------------------------------------------ datasets & properties
def test_create_dataset_with_properties_and_parents(zfs, runner):
    zfs.create("tank/a b/c", properties={"compression": "lz4", "atime": False,
                                         "com.example:note": "it's; $(x)"}, parents=True)
    assert argv(runner.commands[-1]) == ["zfs", "create", "-p", "-o", "compression=lz4", "-o",
                                         "atime=off", "-o", "com.example:note=it's; $(x)",
                                         "tank/a b/c"]


def test_create_volume(zfs, runner):
    zfs.create("tank/vol", volume_size="64M", sparse=True)
    assert argv(runner.commands[-1]) == ["zfs", "create", "-s", "-V", "64M", "tank/vol"]
    with pytest.raises(ConfigError):
        zfs.create("tank/vol", volume_size="64 M; reboot")


def test_set_and_destroy(zfs, runner):
    zfs.set("tank/a", "quota", "1G")
    zfs.set("tank/a", compression="gzip-9", dedup=True)
    zfs.destroy("tank/a", recursive=True)
    assert [argv(c) for c in runner.commands] == [
        ["zfs", "set", "quota=1G", "tank/a"],
        ["zfs", "set", "compression=gzip-9", "dedup=on", "tank/a"],
        ["zfs", "destroy", "-r", "tank/a"]]


@pytest.mark.parametrize("name", ["tank/a;reboot", "tank/$(id)", "tank/a\nb", "tank/`x`",
                                  "tank/'q'", "../etc"])
def test_dataset_names_zfs_would_refuse_are_rejected_before_running(zfs, runner, name):
    with pytest.raises(ConfigError):
        zfs.create(name)
    with pytest.raises(ConfigError):
        zfs.destroy(name)
    assert runner.commands == []


def test_property_values_with_newlines_are_rejected(zfs):
    with pytest.raises(ConfigError):
        zfs.set("tank/a", "com.example:note", "two\nlines")


def test_get_runs_the_documented_scripting_form_and_types_sizes():
    runner = RecordingRunner({"zfs get": fixture("zfs/get_H_value_p_illumos_zfsadmin.txt")})
    assert Zfs(runner).get("tank/home", "used") == 182983742
    assert runner.commands == ["zfs get -H -o value -p used tank/home"]


def test_properties_asks_for_name_property_value_source():
    runner = RecordingRunner()
    assert Zfs(runner).properties("tank/a", ["used", "compressratio"]) == {}
    assert argv(runner.commands[-1]) == ["zfs", "get", "-H", "-p", "-o",
                                         "name,property,value,source", "used,compressratio",
                                         "tank/a"]


def test_listing_commands_use_scripted_parseable_forms():
    runner = RecordingRunner()
    zfs = Zfs(runner)
    assert zfs.pools() == []
    assert zfs.datasets("tank") == []
    assert zfs.snapshots("tank/a") == []
    assert [argv(c) for c in runner.commands] == [
        ["zpool", "list", "-H", "-p", "-o", "name,size,allocated,free,capacity,dedupratio,health"],
        ["zfs", "list", "-H", "-p", "-o", "name,type,used,available,referenced,compressratio,"
         "mountpoint", "-t", "filesystem,volume", "-r", "tank"],
        ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,used,referenced,creation", "-s",
         "creation", "-r", "tank/a"]]


# ------------------------------------------------------------------ snapshots, clones, send
def test_snapshot_rollback_clone_promote(zfs, runner):
    assert zfs.snapshot("tank/a", "before upgrade") == "tank/a@before upgrade"
    zfs.rollback("tank/a@before upgrade", destroy_newer=True)
    zfs.clone("tank/a@before upgrade", "tank/b", properties={"mountpoint": "/b"})
    zfs.promote("tank/b")
    zfs.destroy_snapshot("tank/a@before upgrade")
    assert [argv(c) for c in runner.commands] == [
        ["zfs", "snapshot", "tank/a@before upgrade"],
        ["zfs", "rollback", "-r", "tank/a@before upgrade"],
        ["zfs", "clone", "-o", "mountpoint=/b", "tank/a@before upgrade", "tank/b"],
        ["zfs", "promote", "tank/b"],
        ["zfs", "destroy", "tank/a@before upgrade"]]


def test_snapshot_names_with_shell_syntax_are_rejected(zfs, runner):
    for snap in ("s;reboot", "s$(id)", "a@b", "s\n"):
        with pytest.raises(ConfigError):
            zfs.snapshot("tank/a", snap)
    assert runner.commands == []


def test_send_receive_is_one_guest_pipeline_with_quoted_names(zfs, runner):
    zfs.send_receive("tank/a b@s1", "tank/copy", force=True)
    zfs.send_receive("tank/a@s2", "tank/copy", incremental_from="@s1")
    full, incremental = runner.commands
    assert argv(full) == ["zfs", "send", "tank/a b@s1", "|", "zfs", "receive", "-F", "tank/copy"]
    assert argv(incremental) == ["zfs", "send", "-i", "@s1", "tank/a@s2", "|", "zfs", "receive",
                                 "tank/copy"]


# ------------------------------------------------------------------ scrub
def test_scrub_status_reads_the_scan_line_of_zpool_status():
    runner = RecordingRunner({"zpool status": fixture("zpool/status_scrub_repaired_omnios.txt")})
    scan = Zfs(runner).scrub_status("rpool")
    assert runner.commands == ["zpool status -v rpool"]
    assert (scan.function, scan.state, scan.repaired_bytes, scan.errors) == ("scrub", "finished",
                                                                             0, 0)


def test_wait_scrub_returns_once_the_scan_is_no_longer_in_progress():
    statuses = [fixture("zpool/status_scrub_in_progress_openzfs_issue.txt"),
                fixture("zpool/status_scrub_canceled_openzfs_issue.txt")]
    runner = RecordingRunner({"zpool status": statuses})
    seen = []
    final = Zfs(runner).wait_scrub("tank", timeout=5, poll=0.01, progress=seen.append)
    assert [s.state for s in seen] == ["in_progress", "canceled"]
    assert final.state == "canceled"


def test_wait_scrub_times_out_with_a_typed_error_when_the_scan_never_ends():
    status = fixture("zpool/status_scrub_in_progress_openzfs_issue.txt")
    zfs = Zfs(RecordingRunner({"zpool status": status}))
    with pytest.raises(CommandTimeout) as info:
        zfs.wait_scrub("tank", timeout=0.05, poll=0.01)
    assert "100.33% done" in str(info.value)


def test_status_of_a_pool_missing_from_the_output_is_a_parse_error():
    runner = RecordingRunner({"zpool status": fixture("zpool/status_scrub_repaired_omnios.txt")})
    with pytest.raises(ParseError):
        Zfs(runner).status("tank")


# ------------------------------------------------------------------ self-healing helpers
def test_selfheal_dd_targets_the_raw_slice_of_illumos_disks_and_skips_the_labels():
    runner = RecordingRunner()
    demo = selfheal.SelfHealingDemo(Zfs(runner), ("c1t1d0", "c1t2d0"), corrupt_offset_mib=4,
                                    corrupt_mib=8, mountpoint="/healdemo")
    demo.create()
    demo.corrupt(side=1)
    dd = next(c for c in runner.commands if c.startswith("dd "))
    assert shlex.split(dd.split(" 2>")[0]) == ["dd", "if=/dev/urandom", "of=/dev/rdsk/c1t2d0s0",
                                                "bs=1048576", "seek=4", "count=8", "conv=notrunc"]
    assert runner.commands.index("zpool export healdemo") < runner.commands.index(dd) \
        < runner.commands.index("zpool import healdemo")


def test_selfheal_reads_checksum_errors_per_leaf_device_from_zpool_status():
    status = fixture("zpool/status_cksum_errors_persistent_illumos_zfsadmin.txt")
    demo = selfheal.SelfHealingDemo(Zfs(RecordingRunner({"zpool status": status})),
                                    ("c1t0d0", "c1t1d0"), pool="tank")
    assert demo.checksum_errors() == {"c1t0d0": 2, "c1t1d0": 0}


@pytest.mark.parametrize("device,shown", [
    ("c1t1d0", "c1t1d0"),                       # an illumos whole disk: as given
    ("/dev/dsk/c1t1d0s0", "c1t1d0s0"),          # illumos strips /dev/dsk/ only
    ("/dev/vdb1", "vdb1"),                      # OpenZFS on Linux strips /dev/
    ("/dev/disk/by-id/ata-WDC_1-part1", "ata-WDC_1-part1"),
    ("/var/tmp/vdevs/h1", "/var/tmp/vdevs/h1"),  # a file vdev keeps its full path
])
def test_leaf_name_is_the_name_zpool_status_prints(device, shown):
    """libzfs zpool_vdev_name(): illumos-joyent usr/src/lib/libzfs/common/libzfs_pool.c
    strips ZFS_DISK_ROOTD ("/dev/dsk/"); OpenZFS strips a disk's search path (zfs_strip_path)."""
    assert selfheal.leaf_name(device) == shown


def test_selfheal_counts_the_errors_of_a_file_vdev_printed_by_its_full_path():
    status = fixture("zpool/status_file_vdevs_cksum_openzfs_issue.txt")
    demo = selfheal.SelfHealingDemo(Zfs(RecordingRunner({"zpool status": status})),
                                    ("/hdd/junk/zfstest/vdb.img", "/hdd/junk/zfstest/vda.img"),
                                    pool="ztest")
    demo.report.checksum_errors_after_read = demo.checksum_errors()
    assert demo.report.corrupted == "/hdd/junk/zfstest/vda.img"
    assert demo.report.errors_detected == 1


def test_selfheal_refuses_to_corrupt_the_label_area():
    with pytest.raises(ConfigError):
        selfheal.SelfHealingDemo(Zfs(RecordingRunner()), ("a", "b"), corrupt_offset_mib=1)


def test_corrupt_image_region_overwrites_exactly_the_region(tmp_path):
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(8 * selfheal.MIB))
    selfheal.corrupt_image_region(image, 2 * selfheal.MIB, selfheal.MIB)
    data = image.read_bytes()
    assert data[:2 * selfheal.MIB] == bytes(2 * selfheal.MIB)
    assert data[3 * selfheal.MIB:] == bytes(5 * selfheal.MIB)
    assert data[2 * selfheal.MIB:3 * selfheal.MIB] != bytes(selfheal.MIB)


def test_corrupt_image_region_refuses_qcow2_and_out_of_range(tmp_path):
    qcow = tmp_path / "disk.qcow2"
    qcow.write_bytes(b"QFI\xfb" + bytes(100))
    with pytest.raises(ConfigError):
        selfheal.corrupt_image_region(qcow, 10, 10)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(100))
    with pytest.raises(ConfigError):
        selfheal.corrupt_image_region(raw, 90, 20)
