"""Toolkit calls the course notebooks use: commands built (quoted) and real output read.

The replies are the real published outputs of tests/fixtures; a RecordingRunner
stands in for the guest shell.
"""
from __future__ import annotations

import json
import shlex

import pytest

from smartos_lab.errors import CommandFailed, ConfigError, DTraceError, ParseError
from smartos_lab.toolkits.dtrace import DTrace
from smartos_lab.toolkits.sysinfo import SysInfo
from smartos_lab.toolkits.zfs import Zfs
from smartos_lab.toolkits.zones import Zones

from ._parser_fixtures import fixture
from ._runners import RecordingRunner
from .test_toolkit_zones import written_payload

UUID = "79809c3b-6c21-4eee-ba85-b524bcecfdb8"


# ------------------------------------------------------------------ dtrace -l
def test_probes_runs_dtrace_l_n_and_parses_the_listing():
    runner = RecordingRunner({"dtrace -l": fixture("dtrace/list_usdt_python_cpython_docs.txt")})
    probes = DTrace(runner).probes("python$target:::")
    assert runner.commands == ["dtrace -l -n 'python$target:::'"]
    assert probes[0].description == "python18035:python3.6:_PyEval_EvalFrameDefault:function-entry"


def test_probes_no_match_is_an_empty_list_and_other_failures_raise():
    nomatch = RecordingRunner()
    nomatch.run = lambda c, timeout=60: _result(c, 1, "", "dtrace: invalid probe specifier "
                                                "foo:::: probe description foo::: does not "
                                                "match any probes\n")
    assert DTrace(nomatch).probes("foo:::") == []
    denied = RecordingRunner()
    denied.run = lambda c, timeout=60: _result(c, 1, "", "dtrace: failed to initialize dtrace: "
                                               "DTrace requires additional privileges\n")
    with pytest.raises(DTraceError, match="additional privileges"):
        DTrace(denied).probes()


def _result(command, status, out, err):
    from smartos_lab.machine.result import CommandResult
    return CommandResult(command, status, out, err)


# ------------------------------------------------------------------ kstat
def test_kstat_quotes_patterns_and_adds_a_timestamp_per_interval():
    runner = RecordingRunner({"kstat": fixture("kstat/timestamp_date_illumos_man.txt")})
    samples = SysInfo(runner).kstat("caps::cpucaps_zone*", interval=5, count=2)
    assert runner.commands == ["kstat -p -T u 'caps::cpucaps_zone*' 5 2"]
    assert len(samples) == 2
    with pytest.raises(ConfigError):
        SysInfo(runner).kstat()


def test_arc_stats_reads_kstat_zfs_arcstats():
    runner = RecordingRunner({"kstat -p zfs:0:arcstats": fixture("kstat/arcstats_l2_spxops.txt")})
    assert Zfs(runner).arc_stats().l2_hits == 2832237


# ------------------------------------------------------------------ zfs part 2
def test_diff_asks_for_file_types_in_the_scripted_form():
    runner = RecordingRunner({"zfs diff": fixture("zfs/diff_F_openzfs_man.txt")})
    entries = Zfs(runner).diff("tank/test@before", "tank/test")
    assert runner.commands == ["zfs diff -F -H tank/test@before tank/test"]
    assert entries[2].new_path == "/tank/test/newname"
    with pytest.raises(ConfigError, match="snapshot name"):
        Zfs(runner).diff("tank/test")


def test_iostat_scripted_exact_with_interval_reports():
    text = "tank\t107374182400\t21474836480\t134\t0\t1372\t0\n"
    runner = RecordingRunner({"zpool iostat": text})
    (row,) = Zfs(runner).iostat("tank", vdevs=True, interval=2, count=3)
    assert runner.commands == ["zpool iostat -H -p -v tank 2 4"]
    assert (row.name, row.read_ops, row.read_bytes) == ("tank", 134, 1372)


def test_attach_replace_detach_hold_release_commands():
    runner = RecordingRunner()
    zfs = Zfs(runner)
    zfs.attach("tank", "c1t0d0", "c1t1d0")
    zfs.replace("tank", "c1t1d0", "/var/tmp/spare 1")
    zfs.replace("tank", "c1t1d0")
    zfs.detach("tank", "c1t1d0")
    zfs.hold("tank/test@before", "keep")
    zfs.release("tank/test@before", "keep")
    assert runner.commands == [
        "zpool attach tank c1t0d0 c1t1d0", "zpool replace tank c1t1d0 '/var/tmp/spare 1'",
        "zpool replace tank c1t1d0", "zpool detach tank c1t1d0",
        "zfs hold keep tank/test@before", "zfs release keep tank/test@before"]
    with pytest.raises(ConfigError):
        zfs.attach("tank", "c1t0d0", "mirror")
    with pytest.raises(ConfigError):
        zfs.hold("tank/test@before", "-r")


# ------------------------------------------------------------------ vmadm JSON update, snapshots
def test_update_json_writes_the_payload_and_reads_the_report():
    runner = RecordingRunner({"vmadm update": fixture("vmadm/update_json_add_nic_smartos_docs.txt")})
    payload = {"add_nics": [{"interface": "net1", "nic_tag": "external", "ips": ["dhcp"]}]}
    report = Zones(runner).update_json("54f1cc77-68f1-42ab-acac-5c4f64f5d6e0", payload)
    assert report.uuid == "54f1cc77-68f1-42ab-acac-5c4f64f5d6e0"
    update = next(c for c in runner.commands if c.startswith("vmadm update"))
    path = shlex.split(update)[-1]
    assert update == f"vmadm update 54f1cc77-68f1-42ab-acac-5c4f64f5d6e0 -f {path}"
    assert json.loads(written_payload(runner.commands, path)) == payload
    assert runner.commands[-1] == f"rm -f {path}"
    with pytest.raises(ConfigError):
        Zones(runner).update_json("54f1cc77-68f1-42ab-acac-5c4f64f5d6e0", {})


def test_create_snapshot_reads_the_report_and_checks_the_name():
    runner = RecordingRunner({"vmadm create-snapshot":
                              fixture("vmadm/create_snapshot_smartos_dev_upgrade.txt")})
    report = Zones(runner).create_snapshot(UUID, "2024.4-upgrade")
    assert runner.commands == [f"vmadm create-snapshot {UUID} 2024.4-upgrade"]
    assert report.snapshot == "2024.4-upgrade"
    with pytest.raises(ConfigError, match="invalid snapshot name"):
        Zones(runner).create_snapshot(UUID, "a b")
    with pytest.raises(ConfigError, match="invalid snapshot name"):
        Zones(runner).create_snapshot(UUID, "x" * 65)


def test_rollback_snapshot_without_its_report_is_a_parse_error():
    runner = RecordingRunner({"vmadm rollback-snapshot": ""})
    with pytest.raises(ParseError, match="snapshot rolled back"):
        Zones(runner).rollback_snapshot(UUID, "2024.4-upgrade")
    failing = RecordingRunner({"vmadm rollback-snapshot": ("", 1)})
    with pytest.raises(CommandFailed):
        Zones(failing).rollback_snapshot(UUID, "2024.4-upgrade")


# ------------------------------------------------------------------ mdata, zonememstat, prstat
def test_mdata_get_runs_in_the_zone_and_maps_not_found_to_none():
    runner = RecordingRunner({f"zlogin {UUID} '/usr/sbin/mdata-get key1'":
                              fixture("mdata/get_key1_smartos_docs.txt"),
                              f"zlogin {UUID} '/usr/sbin/mdata-get key9'": ("", 1)})
    zones = Zones(runner)
    assert zones.mdata_get(UUID, "key1") == "val1"
    assert zones.mdata_get(UUID, "key9") is None
    with pytest.raises(ConfigError):
        zones.mdata_get(UUID, "key; reboot")


def test_mdata_list_in_the_zone():
    runner = RecordingRunner({"zlogin": fixture("mdata/list_three_keys_smartos_docs.txt")})
    assert Zones(runner).mdata_list(UUID) == ["key1", "key2", "key3"]


def test_memstat_and_prstat_commands_and_parsing():
    runner = RecordingRunner({"zonememstat": fixture("zonememstat/default_smartos_tips.txt"),
                              "prstat": fixture("prstat/zones_smartos_tips.txt")})
    zones = Zones(runner)
    assert zones.memstat()[0].zone == "global"
    assert zones.prstat(top=5).zone("global").nproc == 88
    zones.memstat("global")
    assert runner.commands == ["zonememstat", "prstat -Z -c -n 5,500 1 1",
                               "zonememstat -z global"]
