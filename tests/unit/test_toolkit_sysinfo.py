"""The sysinfo toolkit: sysinfo, diskinfo, dladm and svcs -x commands and their parsed results."""
from __future__ import annotations

import json
from pathlib import Path

from smartos_lab.machine.result import CommandResult
from smartos_lab.toolkits.sysinfo import SysInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class RecordingRunner:
    def __init__(self, replies: dict[str, str] | None = None):
        self.replies = replies or {}
        self.commands: list[str] = []

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        self.commands.append(command)
        for prefix, out in self.replies.items():
            if command.startswith(prefix):
                return CommandResult(command, 0, out)
        return CommandResult(command, 0, "")


def fixture(relative: str) -> str:
    lines = (FIXTURES / relative).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


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
