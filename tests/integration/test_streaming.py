"""Streamed command output and interrupts, over the console and over SSH, on the Linux
test guest (a test substrate, not SmartOS).  One guest boots for the module.

``on_output(text, stream)`` receives output as the guest prints it; a KeyboardInterrupt in
the caller (Jupyter's stop button) stops the guest command and leaves the shell usable.
"""
from __future__ import annotations

import _thread
import os
import threading
import time

import pytest

from smartos_lab.machine.guest import GuestShell
from smartos_lab.machine.shell import ConsoleShell
from tests.guest.machines import booted_guest

pytestmark = pytest.mark.guest

VIAS = ("console", "ssh")


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    with booted_guest(f"stream-{os.getpid()}", ssh=True) as b:
        g = GuestShell(ConsoleShell(b.console))
        g.enable_ssh(port=b.machine.ports["ssh"], key_path=tmp_path_factory.mktemp("k") / "id",
                     timeout=120)
        yield g
        g.close()


class Recorder:
    """An on_output callback that notes when each piece arrived."""

    def __init__(self):
        self.start = time.monotonic()
        self.pieces: list[tuple[float, str, str]] = []

    def __call__(self, text: str, stream: str) -> None:
        self.pieces.append((time.monotonic() - self.start, stream, text))

    def text(self, stream: str = "stdout") -> str:
        return "".join(t for _, s, t in self.pieces if s == stream)

    def first(self, needle: str) -> float:
        """When the text seen so far first contained ``needle``."""
        seen = ""
        for at, _, text in self.pieces:
            seen += text
            if needle in seen:
                return at
        raise AssertionError(f"{needle!r} never arrived: {self.pieces}")


@pytest.mark.parametrize("via", VIAS)
def test_the_first_line_arrives_long_before_the_command_ends(guest, via):
    rec = Recorder()
    r = guest.run("echo a; sleep 2; echo b", via=via, on_output=rec)
    ended = time.monotonic() - rec.start
    assert r.stdout == "a\nb\n" and r.exit_status == 0
    assert rec.first("a\n") < ended - 1.5          # 'a' came while the guest slept
    assert rec.first("b\n") > 1.5
    assert rec.text() == r.stdout


def test_over_ssh_stdout_and_stderr_stream_apart(guest):
    rec = Recorder()
    r = guest.run("echo out; echo err >&2; sleep 1; printf 'no newline'; printf E >&2; exit 4",
                  via="ssh", on_output=rec)
    assert (r.exit_status, r.stdout, r.stderr) == (4, "out\nno newline", "err\nE")
    assert (rec.text("stdout"), rec.text("stderr")) == (r.stdout, r.stderr)
    assert rec.first("err\n") < 0.9 * r.duration


def test_over_the_console_everything_streams_as_stdout_exactly_as_the_result(guest):
    rec = Recorder()
    r = guest.run("echo out; echo err >&2; printf 'a\\r\\nb\\rc'", via="console", on_output=rec)
    assert {s for _, s, _ in rec.pieces} == {"stdout"}
    assert rec.text() == r.stdout == "out\nerr\na\nb\rc"


@pytest.mark.parametrize("via", VIAS)
def test_multibyte_characters_are_never_split(guest, via):
    rec = Recorder()
    r = guest.run("for i in $(seq 300); do printf '\\303\\251\\342\\202\\254'; done; echo",
                  via=via, on_output=rec)
    assert r.stdout == "é€" * 300 + "\n"
    assert "\ufffd" not in rec.text() and rec.text() == r.stdout


@pytest.mark.parametrize("via", VIAS)
def test_an_interrupt_raised_by_the_callback_stops_the_guest_command(guest, via):
    def stop_at_first_output(text, stream):
        raise KeyboardInterrupt
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        guest.run("echo go; sleep 37; echo never", via=via, on_output=stop_at_first_output)
    assert time.monotonic() - t0 < 10
    r = guest.run("echo next; ps | grep -c '[s]leep 37'", via=via)
    assert r.stdout == "next\n0\n"                  # the shell answers and the sleep is gone


@pytest.mark.parametrize("via", VIAS)
def test_an_interrupt_from_another_thread_stops_the_guest_command(guest, via):
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            guest.run("sleep 38", via=via, timeout=60)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 10
    assert guest.run("ps | grep -c '[s]leep 38'", via=via).stdout == "0\n"
    assert guest.run("echo usable", via=via).stdout == "usable\n"


def test_a_clean_ssh_session_streams_too_and_is_stopped_on_interrupt(guest):
    rec = Recorder()
    r = guest.ssh.run("echo a; sleep 2; echo b >&2", on_output=rec, clean=True)
    assert rec.first("a\n") < r.duration - 1.5
    assert rec.text("stderr") == r.stderr == "b\n"

    def interrupt(text, stream):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        guest.ssh.run("echo go; sleep 39", on_output=interrupt, clean=True)
    assert guest.run("ps | grep -c '[s]leep 39'").stdout == "0\n"
