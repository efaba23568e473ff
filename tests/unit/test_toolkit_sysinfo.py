"""The sysinfo toolkit: sysinfo, diskinfo, dladm and svcs -x commands and their parsed results."""
from __future__ import annotations

import json

from smartos_lab.toolkits.sysinfo import SysInfo

from ._parser_fixtures import fixture
from ._runners import RecordingRunner


def test_sysinfo_parses_the_json_and_refresh_adds_dash_f():
    runner = RecordingRunner({"sysinfo": fixture("sysinfo/sysinfo_smartos_tips.txt")})
    kit = SysInfo(runner)
    info = kit.sysinfo()
    kit.sysinfo(refresh=True)
    assert runner.commands == ["sysinfo", "sysinfo -f"]
    raw = json.loads(fixture("sysinfo/sysinfo_smartos_tips.txt"))
    assert info.live_image == raw["Live Image"] == "20120726T184637Z"
    assert info.hostname == raw["Hostname"]


def test_services_in_trouble_reads_svcs_x():
    runner = RecordingRunner({"svcs -x": fixture("svcs/svcs_x_disabled_illumos_man.txt")})
    services = SysInfo(runner).services_in_trouble()
    assert runner.commands == ["svcs -x"]
    assert [(s.fmri, s.state) for s in services] == [
        ("svc:/application/print/server:default", "disabled")]


def test_hardware_commands_use_parseable_forms():
    runner = RecordingRunner()
    kit = SysInfo(runner)
    assert kit.disks() == [] and kit.links() == [] and kit.vnics() == []
    assert runner.commands == [
        "diskinfo -H -p",
        "dladm show-phys -p -o link,media,state,speed,duplex,device",
        "dladm show-vnic -p -o link,over,speed,macaddress,macaddrtype,vid,zone"]


def test_summary_combines_everything_and_prints_it():
    runner = RecordingRunner({"sysinfo": fixture("sysinfo/sysinfo_smartos_tips.txt"),
                              "svcs -x": fixture("svcs/svcs_x_disabled_illumos_man.txt")})
    summary = SysInfo(runner).summary()
    text = str(summary)
    assert summary.live_image == "20120726T184637Z"
    assert "svc:/application/print/server:default" in text
    assert runner.commands[0] == "sysinfo" and runner.commands[-1] == "svcs -x"
