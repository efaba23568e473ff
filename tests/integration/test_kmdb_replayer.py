"""The kmdb session object (lab.kmdb), run against a *transcript replayer* on a pty.

The replayer (tests/transcripts/replay.py) is a test substrate, not SmartOS: it
prints recorded real kmdb/mdb output (tests/transcripts/kmdb_session.transcript
names each source) and checks, line by line, the commands :class:`Kmdb` types,
through a real pty and the real :class:`~smartos_lab.machine.console.Console`
with the SmartOS console profile.

What this proves: the command sequence (``::stack``, ``::status``, ``::msgbuf``
through mdb's pager, ``zfs_read::bp``, ``:c``) and the parsing of what comes
back.  Not that SmartOS's kmdb answers this way on a lab (the ``smartos`` tests do).
"""
from __future__ import annotations

import time

import pytest

from smartos_lab import kmdb_stop
from smartos_lab.errors import ConfigError, GuestDebugger, GuestPanic, NotInKmdb
from smartos_lab.kmdb_stop import boot_stop
from smartos_lab.lab import LabConfig, LabDir
from smartos_lab.machine.accel import AccelChoice
from smartos_lab.machine.console import Console
from smartos_lab.machine.debugger import log_at_prompt
from smartos_lab.machine.guest import BootResult
from smartos_lab.smartos.answers import write_secret
from smartos_lab.smartos.bringup import SmartOSStrategy
from smartos_lab.smartos.milestones import FirstBootWatcher
from smartos_lab.smartos.profile import SMARTOS_PROFILE
from smartos_lab.steps import Steps
from smartos_lab.toolkits.kmdb import Kmdb
from tests.integration.test_firstboot_transcript import (
    FAST,
    replay,  # noqa: F401  (fixture)
)


def test_kmdb_commands_after_a_panic_are_typed_in_order_and_parsed(replay):  # noqa: F811
    r = replay("kmdb_session")
    r.console.expect(r"\[0\]> ", timeout=20, check_crash=False)
    kmdb = Kmdb(r.console, name="lab1", timeout=20)
    assert kmdb.active()
    frames = kmdb.stack()
    assert [f.function for f in frames][:2] == ["usb_console_input_enter", "hid_polled_input_enter"]
    status = kmdb.status()
    assert (status.target, status.host, status.os_release) == ("live kernel", "testsystem", "5.10")
    buf = kmdb.msgbuf()                                 # answered the pager in the middle
    assert buf.banner == "SunOS Release 5.11 Version joyent_20171012T151912Z 64-bit"
    assert buf.panic.panic_string == "microfind: could not calibrate delay loop"
    assert len(buf.panic.stack) == 5
    kmdb.set_breakpoint("zfs_read")
    kmdb.cont()
    assert not kmdb.active()
    with pytest.raises(NotInKmdb, match="not stopped in kmdb"):
        kmdb.run("::stack")
    assert kmdb.wait_stop(timeout=20).strip() == ""    # back at the prompt (a breakpoint)
    assert kmdb.active()
    assert r.finish() == 0, r.mismatch()               # every command was the expected one


def test_a_lab_that_is_not_in_kmdb_says_so_in_one_line(tmp_path):
    import os

    master, slave = os.openpty()
    console = Console.from_fd(master, name="quiet", profile=SMARTOS_PROFILE)
    try:
        os.write(slave, b"[root@lab1 ~]# ")
        kmdb = Kmdb(console, name="lab1")
        with pytest.raises(NotInKmdb) as err:
            kmdb.status()
        assert "\n" not in str(err.value) and "kernel_args='-kd'" in str(err.value)
        with pytest.raises(ConfigError, match="one line"):
            kmdb.run("::stack\n::status")
        with pytest.raises(ConfigError, match="bad breakpoint location"):
            kmdb.set_breakpoint("zfs_read; :c")
    finally:
        console.close()
        os.close(slave)


def test_the_panic_before_the_prompt_is_still_a_panic_for_the_shell(replay):  # noqa: F811
    r = replay("kmdb_session")
    r.console.expect(r"\[0\]> ", timeout=20, check_crash=False)
    assert isinstance(r.console.crash, GuestPanic)     # lab.sh keeps refusing with the panic
    assert Kmdb(r.console).active()


def test_dump_and_reboot_types_systemdump_and_reports_the_dump(replay):  # noqa: F811
    r = replay("kmdb_systemdump")
    r.console.expect(r"\[0\]> ", timeout=20, check_crash=False)
    kmdb = Kmdb(r.console, name="lab1", timeout=20)
    result = kmdb.dump_and_reboot(timeout=20)
    assert result.succeeded
    assert "dumping to /dev/dsk/c1t0d0s1, offset 107675648, content: kernel" in result.text
    assert not kmdb.active()
    assert r.finish() == 0, r.mismatch()


# --- a boot that stops in kmdb (Lab.up keeps such a lab: smartos_lab/kmdb_stop.py) ------------
def test_a_panic_that_kmdb_takes_over_during_boot_is_a_stop_in_kmdb(replay):  # noqa: F811
    r = replay("kmdb_session")
    with pytest.raises(GuestPanic) as err:              # what the SmartOS boot watcher raises
        FirstBootWatcher(timeouts=FAST).watch(r.console)
    stop = boot_stop(r.console, err.value)
    assert stop is not None and stop.cause == "panic" and not stop.from_log
    assert "forced crash dump initiated at user request" in stop.text
    assert stop.progress_message("lab1").startswith("lab lab1 stopped in kmdb after a panic")
    assert Kmdb(r.console, name="lab1", timeout=20).active()
    assert log_at_prompt(r.log, SMARTOS_PROFILE.debugger_patterns)   # what ps and an attach read


def test_a_panic_without_kmdb_is_not_a_stop_and_costs_only_a_short_wait(replay, monkeypatch):  # noqa: F811
    monkeypatch.setattr(kmdb_stop, "PROMPT_AFTER_PANIC_IDLE", 1.0)
    r = replay("kernel_panic")
    with pytest.raises(GuestPanic) as err:
        FirstBootWatcher(timeouts=FAST).watch(r.console)
    started = time.monotonic()
    assert boot_stop(r.console, err.value) is None
    assert time.monotonic() - started < 4.0
    assert not log_at_prompt(r.log, SMARTOS_PROFILE.debugger_patterns)


def test_a_prompt_that_comes_well_after_the_panic_is_waited_for():
    import os
    import threading

    master, slave = os.openpty()
    console = Console.from_fd(master, name="slow", profile=SMARTOS_PROFILE)
    # lines from tests/transcripts/kmdb_session.transcript (its sources are named there)
    later = threading.Timer(3.0, os.write, (slave, b"\r\nWelcome to kmdb\r\n[0]> "))
    try:
        os.write(slave, b"\r\npanic[cpu0]/thread=ffffffff83246ec0: forced crash dump initiated "
                        b"at user request\r\n\r\nfffffe80006bbd60 genunix:kadmin+4c1 ()\r\n")
        later.start()
        with pytest.raises(GuestPanic) as err:          # raised once the panic text settled
            console.expect("login: ", timeout=20)
        assert "[0]> " not in console.tail(200)         # the prompt is not there yet
        stop = boot_stop(console, err.value)
        assert stop is not None and stop.cause == "panic"
    finally:
        later.cancel()
        console.close()
        os.close(slave)


def test_an_attach_that_read_the_prompt_in_the_serial_log_holds_until_the_console_prints():
    import os

    master, slave = os.openpty()
    console = Console.from_fd(master, name="attached", profile=SMARTOS_PROFILE)
    try:                                                # a console connected after the prompt
        assert not Kmdb(console, name="lab1").active()  # sees nothing of it ...
        seeded = Kmdb(console, name="lab1", at_prompt=True)
        assert seeded.active()                          # ... unless the serial log showed it
        os.write(slave, b"\r\nsomething else\r\n")
        console.expect("something else", timeout=10)
        assert not seeded.active()                      # the guest printed again: not at the prompt
    finally:
        console.close()
        os.close(slave)


class _Machine:
    """What SmartOSStrategy.boot uses of a QemuMachine (here: a replayer's console)."""

    def __init__(self, console):
        self.console = console
        self.accel = AccelChoice("tcg", "TCG: test")


def test_the_smartos_boot_that_stopped_in_kmdb_goes_on_to_login_after_cont(replay, tmp_path):  # noqa: F811
    lab = LabDir("lab1", tmp_path / "labs")
    lab.create()
    write_secret(lab.file("root.password"), "s3cret-Passw0rd\n")
    config, strategy = LabConfig(name="lab1", hostname="lab1", set_up=True), SmartOSStrategy()
    steps = Steps("up lab1")
    r = replay("kmdb_at_boot")
    machine = _Machine(r.console)
    with pytest.raises(GuestDebugger) as err:           # what Lab._boot hands to boot_stop
        strategy.boot(machine, lab, config, steps)
    stop = boot_stop(r.console, err.value)
    assert stop is not None and stop.cause == "debugger" and "[0]>" in stop.text
    kmdb = Kmdb(r.console, name="lab1", timeout=20)
    assert kmdb.active()
    kmdb.cont()                                         # lab.resume(): :c, then the same boot goes on
    assert strategy.boot(machine, lab, config, steps) is BootResult.READY
    assert [m.name for m in strategy.milestones] == ["kernel", "login"]
    assert r.finish() == 0, r.mismatch()                # :c was what the replayer expected
