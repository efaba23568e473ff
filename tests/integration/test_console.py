"""The serial console on the Linux test guest (a test substrate, not SmartOS) under QEMU.

One guest boots for the module; the panic test boots its own throwaway guest.
"""
from __future__ import annotations

import os
import time

import pytest

from smartos_lab.errors import ConsoleTimeout, GuestPanic, QemuExited
from smartos_lab.machine.shell import ConsoleShell
from tests.guest.build import READY_LINE
from tests.guest.machines import booted_guest

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    log = tmp_path_factory.mktemp("con") / "serial.log"
    with booted_guest(f"con-{os.getpid()}", serial_log=log) as b:
        print(f"\nboot to ready line: {b.boot_seconds:.1f} s, login: {b.login_seconds:.2f} s")
        yield b


def test_login_reaches_a_root_shell(booted):
    shell = ConsoleShell(booted.console)
    assert shell.run("id -u").stdout == "0\n"
    assert booted.login_seconds < 30


def test_a_timeout_on_the_real_console_names_what_and_where(booted):
    t0 = time.monotonic()
    with pytest.raises(ConsoleTimeout) as exc:
        booted.console.expect(r"this will not appear", timeout=1.0)
    assert time.monotonic() - t0 < 5
    err = exc.value
    assert "this will not appear" in str(err)
    assert err.log_path == str(booted.serial_log)
    assert "__sl_" in err.tail or "# " in err.tail


def test_idle_timeout_ends_a_wait_on_a_quiet_guest(booted):
    t0 = time.monotonic()
    with pytest.raises(ConsoleTimeout) as exc:
        booted.console.expect(r"this will not appear", timeout=60, idle_timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert "no console output" in str(exc.value)


def test_the_serial_log_holds_what_the_console_saw(booted):
    ConsoleShell(booted.console).run("echo logged-$((6 * 7))")
    deadline = time.monotonic() + 5
    while b"logged-42" not in booted.serial_log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = booted.serial_log.read_bytes()
    assert READY_LINE.encode() in log and b"logged-42" in log


def test_listeners_get_console_text(booted):
    seen: list[str] = []
    booted.console.add_listener(seen.append)
    try:
        ConsoleShell(booted.console).run("echo for-the-listener")
    finally:
        booted.console.remove_listener(seen.append)
    assert "for-the-listener" in "".join(seen)


def test_busybox_ash_cursor_queries_are_answered(booted):
    """At an interactive prompt with echo on, ash asks ESC[6n; the answer keeps it typing."""
    console = booted.console
    shell = ConsoleShell(console)
    shell.run("stty echo; PS1='q# '")          # line editing (and its queries) back on
    mark = console.mark()
    console.sendline("echo ans''wered")
    console.expect("answered", timeout=20)
    assert b"\x1b[6n" in console.raw_tail(4096)
    assert "answered" in console.text_since(mark)
    ConsoleShell(console).setup()                # echo off again for the other tests


def test_qemu_exiting_ends_waits_with_qemu_exited(booted):
    """Last in the module: the guest powers off, QEMU exits, the console says so."""
    console = booted.console
    console.sendline("poweroff -f")
    with pytest.raises(QemuExited) as exc:
        console.expect(r"this will not appear", timeout=60)
    assert "exited" in str(exc.value)


def test_a_guest_panic_raises_guest_panic_with_the_panic_text(tmp_path):
    """A throwaway guest: sysrq-c panics it (panic=0 keeps it halted)."""
    with booted_guest(f"panic-{os.getpid()}", serial_log=tmp_path / "serial.log") as b:
        shell = ConsoleShell(b.console)
        shell.setup()
        t0 = time.monotonic()
        with pytest.raises(GuestPanic) as exc:
            shell.run("echo c > /proc/sysrq-trigger", timeout=60)
        print(f"\npanic reported {time.monotonic() - t0:.2f} s after the command was typed")
        err = exc.value
        assert "Kernel panic" in err.panic
        assert "sysrq triggered crash" in err.panic
        assert err.log_path == str(b.serial_log)
        assert isinstance(b.console.crash, GuestPanic)
        assert b.machine.alive()                  # halted, not rebooted
