"""smartos-lab crash / compare / gdb: output and one-line errors (runners stand in for SSH)."""
from __future__ import annotations

import pytest

from smartos_lab import cli, debug
from tests.unit._parser_fixtures import fixture
from tests.unit._runners import RecordingRunner


class Session(RecordingRunner):
    """A RecordingRunner used like the SSH shell (a context manager)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def lab_with_dumps() -> Session:
    return Session({"ls -1 /var/crash/volatile": fixture("crash/ls_crashdir_mdbguide.txt"),
                    "mdb -e ::status ": fixture("crash/status_omnios_issue632_x86.txt"),
                    "mdb -e ::stack ": fixture("crash/stack_omnios_issue632_x86.txt"),
                    "mdb -e ::msgbuf ": fixture("kmdb/msgbuf_smartos_gce_microfind.txt")})


def test_crash_lists_the_dumps_and_prints_the_newest(monkeypatch, capsys):
    monkeypatch.setattr(debug, "ssh_runner", lambda name: lab_with_dumps())
    assert cli.main(["crash", "lab1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dumps: 0, 1\ncrash dump 1: BAD TRAP: type=e (#pf Page fault)")
    assert "usb_console_input_enter+13" in out


def test_crash_with_a_dump_number_that_does_not_exist_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(debug, "ssh_runner", lambda name: lab_with_dumps())
    assert cli.main(["crash", "lab1", "5"]) == 1
    err = capsys.readouterr().err
    assert err == ("smartos-lab crash: error: no crash dump 5 in lab lab1:/var/crash/volatile "
                   "(dumps there: 0, 1)\n")


def test_compare_prints_both_sides(monkeypatch, capsys):
    labs = {"stock": Session({"uname -v": "joyent_A\n", "zpool": "zones\n"}),
            "mine": Session({"uname -v": "joyent_B\n", "zpool": "zones\n"})}
    monkeypatch.setattr(debug, "ssh_runner", lambda name: labs[name])
    assert cli.main(["compare", "stock", "mine", "--", "zpool", "list", "-H", "-o", "name"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "$ zpool list -H -o name"
    assert out[1].startswith("stock: joyent_A") and out[1].endswith("mine: joyent_B")
    assert labs["mine"].commands == ["uname -v", "zpool list -H -o name"]


def test_compare_without_a_command_says_how(capsys):
    assert cli.main(["compare", "a", "b"]) == 2
    assert "give the command after --" in capsys.readouterr().err


def test_gdb_on_a_lab_that_does_not_run_is_one_line(capsys):
    assert cli.main(["gdb", "nosuchlab"]) == 1
    assert capsys.readouterr().err == "smartos-lab gdb: error: lab 'nosuchlab' is not running\n"


@pytest.mark.parametrize("command", ["gdb", "crash", "compare"])
def test_the_new_commands_have_help(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "usage: smartos-lab " + command in capsys.readouterr().out
