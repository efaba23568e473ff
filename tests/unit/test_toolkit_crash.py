"""lab.crash: the command sequence (ls, savecore -vf, mdb per dcmd) and parsing, on real output."""
from __future__ import annotations

import pytest

from smartos_lab.errors import CommandFailed, ConfigError, DumpNotFound, TransportError
from smartos_lab.toolkits.crash import Crash
from tests.unit._parser_fixtures import fixture
from tests.unit._runners import RecordingRunner

# file names as savecore writes them (illumos savecore.c: "vmdump.%ld", "unix.%ld", "vmcore.%ld")
SAVED_COMPRESSED = "bounds\nvmdump.0\n"


def analyzing_runner(listing: str) -> RecordingRunner:
    return RecordingRunner({
        "ls -1 /var/crash/volatile": listing,
        "mdb -e ::status ": fixture("crash/status_omnios_issue632_x86.txt"),
        "mdb -e ::stack ": fixture("crash/stack_omnios_issue632_x86.txt"),
        "mdb -e ::msgbuf ": fixture("kmdb/msgbuf_smartos_gce_microfind.txt"),
    })


def test_dumps_lists_saved_dumps_by_number():
    crash = Crash(RecordingRunner({"ls -1 /var/crash/volatile": fixture("crash/ls_crashdir_mdbguide.txt")}))
    assert [(d.number, d.expanded) for d in crash.dumps()] == [(0, True), (1, True)]


def test_a_compressed_dump_is_expanded_with_savecore_vf_into_the_crash_directory():
    runner = RecordingRunner({"ls -1 /var/crash/volatile": SAVED_COMPRESSED})
    (dump,) = Crash(runner).dumps()
    assert dump.expanded and dump.vmdump
    assert runner.commands == ["ls -1 /var/crash/volatile",
                               "savecore -vf /var/crash/volatile/vmdump.0 /var/crash/volatile"]
    assert Crash(RecordingRunner({"ls": SAVED_COMPRESSED})).dumps(expand=False)[0].expanded is False


def test_no_crash_directory_means_no_dumps():
    missing = "ls: cannot access '/var/crash/volatile': No such file or directory"
    runner = RecordingRunner({"ls": (missing, 2)})
    assert Crash(runner).dumps() == []


def test_analyze_runs_mdb_per_dcmd_on_unix_and_vmcore_and_parses():
    runner = analyzing_runner(fixture("crash/ls_crashdir_wdd.txt"))
    result = Crash(runner).analyze(0)
    mdb = [c for c in runner.commands if c.startswith("mdb")]
    assert mdb == [f"mdb -e {dcmd} /var/crash/volatile/unix.0 /var/crash/volatile/vmcore.0"
                   for dcmd in ("::status", "::panicinfo", "::stack", "::msgbuf")]
    assert result.panic_message.startswith("BAD TRAP: type=e (#pf Page fault)")
    assert result.stack[0].function == "usb_console_input_enter"
    assert result.msgbuf.panic.panic_string == "microfind: could not calibrate delay loop"
    text = str(result)
    assert text.startswith("crash dump 0: BAD TRAP") and "usb_console_input_enter+13" in text


def test_analyze_defaults_to_the_newest_dump():
    runner = analyzing_runner(fixture("crash/ls_crashdir_mdbguide.txt"))
    assert Crash(runner).analyze().number == 1
    assert runner.commands[-1].endswith("/var/crash/volatile/unix.1 /var/crash/volatile/vmcore.1")


def test_a_dump_number_that_does_not_exist_is_one_line_naming_the_ones_that_do():
    runner = analyzing_runner(fixture("crash/ls_crashdir_mdbguide.txt"))
    with pytest.raises(DumpNotFound) as err:
        Crash(runner, name="lab1").analyze(7)
    assert str(err.value) == "no crash dump 7 in lab lab1:/var/crash/volatile (dumps there: 0, 1)"
    assert not any(c.startswith("mdb") for c in runner.commands)
    with pytest.raises(ConfigError, match="whole number"):
        Crash(runner).analyze(-1)


def test_no_dumps_at_all_is_one_line():
    with pytest.raises(DumpNotFound, match="^lab lab1 has no crash dumps in /var/crash/volatile$"):
        Crash(RecordingRunner({"ls": "bounds\n"}), name="lab1").analyze()


def test_a_failing_mdb_is_reported_with_its_command():
    runner = analyzing_runner(fixture("crash/ls_crashdir_wdd.txt"))
    runner.replies = {"ls": fixture("crash/ls_crashdir_wdd.txt"), "mdb": ("mdb: bad dump", 1)}
    with pytest.raises(CommandFailed, match="mdb -e ::status"):
        Crash(runner).analyze(0)


def test_fetching_a_dump_needs_ssh(tmp_path):
    runner = RecordingRunner({"ls": fixture("crash/ls_crashdir_wdd.txt")})
    runner.transport = "console"
    with pytest.raises(TransportError, match="too big for the serial console"):
        Crash(runner).fetch(0, tmp_path, getter=lambda remote, local: None)
    runner.transport = "ssh"
    got = []
    paths = Crash(runner).fetch(0, tmp_path, getter=lambda remote, local: got.append((remote, local)))
    assert [r for r, _ in got] == ["/var/crash/volatile/unix.0", "/var/crash/volatile/vmcore.0"]
    assert paths == [tmp_path / "unix.0", tmp_path / "vmcore.0"]
