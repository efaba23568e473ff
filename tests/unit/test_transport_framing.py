"""Streaming and framing pieces of the console and SSH shells, without a guest.

The transports themselves are tested on the test guest (tests/integration/test_streaming.py,
test_ssh_session.py, test_never_wedged.py); these pin the parsing they rely on.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.machine.result import refuse_nul
from smartos_lab.machine.shell import _OutputStream, check_typable
from smartos_lab.machine.ssh import _Frame, _kill_tree_command, check_local_file

END = "__sl_ab12_3_e__"


def stream_pieces(feeds: list[str]) -> tuple[list[str], _OutputStream]:
    got: list[str] = []
    s = _OutputStream(END, lambda text, stream: got.append(text))
    for piece in feeds:
        s.feed(piece)
    return got, s


def test_console_stream_passes_text_on_and_stops_at_the_end_marker():
    got, s = stream_pieces(["hello\r\n", "wor", "ld\r", "\n__sl_ab", "12_3_e__:0:\r\nprompt# "])
    assert "".join(got) == "hello\nworld\n"
    s.finish("hello\nworld\n")
    assert "".join(got) == "hello\nworld\n"


def test_console_stream_holds_back_what_may_start_the_marker_and_sends_it_when_it_was_not():
    got, s = stream_pieces(["x__sl_", "ab"])
    assert "".join(got) == "x"                      # "__sl_ab" may still become the marker
    s.finish("x__sl_ab")                            # the final output says it was not
    assert "".join(got) == "x__sl_ab"


def test_console_stream_never_splits_a_crlf():
    got, _ = stream_pieces(["a\r", "\r", "\nb"])
    assert got == ["a", "\nb"]


def test_console_stream_ignores_text_after_the_marker():
    got, s = stream_pieces([f"out{END}:3:\r\n", "late text"])
    assert "".join(got) == "out" and s.done


def frame_run(pieces: list[bytes], stream="stdout"):
    got: list[tuple[str, str]] = []
    f = _Frame(b"__sl_t_b__\n", b"__sl_t_e__:", stream, lambda t, s: got.append((t, s)))
    for p in pieces:
        f.feed(p)
    return f, got


def test_ssh_frame_skips_what_precedes_the_begin_marker_and_reads_the_status():
    f, got = frame_run([b"stale\n__sl_t_", b"b__\nbody\nno newline", b"__sl_t_e__:4", b"2:\n"])
    assert (bytes(f.body), f.status, f.done) == (b"body\nno newline", 42, True)
    assert "".join(t for t, _ in got) == "body\nno newline"
    assert {s for _, s in got} == {"stdout"}


def test_ssh_frame_keeps_binary_bytes_exactly_and_streams_utf8_whole():
    f, got = frame_run([b"__sl_t_b__\n\x00\xff\xc3", b"\xa9\r\n__sl_t_e__:0:\n"], "stderr")
    assert bytes(f.body) == b"\x00\xff\xc3\xa9\r\n"
    assert "".join(t for t, _ in got) == "\x00\ufffdé\r\n"


def test_ssh_frame_is_not_done_until_the_status_line_is_complete():
    f, _ = frame_run([b"__sl_t_b__\nx__sl_t_e__:1"])
    assert not f.done and bytes(f.body) == b"x"


def test_kill_tree_command_walks_descendants_with_posix_tools_only():
    cmd = _kill_tree_command(1234, "INT", include_root=False)
    assert "ps -e -o pid= -o ppid=" in cmd and "awk -v r=1234 -v a=0" in cmd
    assert "kill -s INT $pids" in cmd
    assert "-v a=1" in _kill_tree_command(5, "KILL", include_root=True)


def test_a_nul_byte_is_refused_with_its_offset():
    with pytest.raises(ConfigError, match="NUL byte at offset 6"):
        refuse_nul("echo a\x00b")
    with pytest.raises(ConfigError, match="NUL byte"):
        check_typable("a\x00", "framed a\x00")
    refuse_nul("echo fine")


def test_check_local_file_names_each_cause(tmp_path):
    with pytest.raises(ConfigError, match="no such local file"):
        check_local_file(tmp_path / "missing")
    with pytest.raises(ConfigError, match="is a directory"):
        check_local_file(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ConfigError, match="not a regular file"):
        check_local_file(tmp_path / "fifo")
    (tmp_path / "f").write_bytes(b"12345")
    assert check_local_file(tmp_path / "f") == 5


def test_doctor_says_which_guest_network_is_used_and_why(monkeypatch):
    from smartos_lab import doctor
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    check = doctor.check_network()
    assert check.ok and "slirp" in check.detail and "passt is not installed" in check.detail
    monkeypatch.setattr(doctor.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert "passt (/usr/bin/passt) is installed but not used" in doctor.check_network().detail


def test_ssh_falls_back_to_exec_channels_once_when_a_session_cannot_start(monkeypatch, caplog):
    from smartos_lab.errors import TransportError
    from smartos_lab.machine import ssh as ssh_mod
    shell = ssh_mod.SSHShell("127.0.0.1", 22, "root", "/nonexistent")
    monkeypatch.setattr(ssh_mod.SSHShell, "connected", property(lambda self: True))

    def no_session(command, deadline):
        err = TransportError("SSH: the guest's /bin/sh did not start as a command session")
        err.startup = True
        raise err
    ran: list[str] = []

    def fake_exec(command, timeout, sink, source=None, *, on_output=None):
        ran.append(command)
        sink.write(b"out\n")
        return 0, b"", 0.01
    monkeypatch.setattr(shell, "_acquire", no_session)
    monkeypatch.setattr(shell, "_exec", fake_exec)
    with caplog.at_level("WARNING", logger="smartos_lab.machine.ssh"):
        assert shell.run("echo out").stdout == "out\n"
        assert shell.run("echo again").stdout == "out\n"
    assert ran == ["echo out", "echo again"]
    assert len([r for r in caplog.records if "exec channel each" in r.getMessage()]) == 1


# --- a dropped or stale SSH connection -----------------------------------------------------
class _FakeTransport:
    """What SSHShell uses of a paramiko Transport; ``open_session`` does what the test says."""

    def __init__(self, open_session=None):
        self.active = True
        self._open_session = open_session

    def is_active(self) -> bool:
        return self.active

    def open_session(self, timeout=None):
        return self._open_session(timeout)


class _FakeClient:
    def __init__(self, transport=None):
        self.transport = transport
        self.closed = False

    def get_transport(self):
        return self.transport

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.active = False


def _shell_with(client, monkeypatch, connects: list):
    """An SSHShell on ``client`` whose connect() installs a new healthy fake client."""
    from smartos_lab.machine.ssh import SSHShell

    shell = SSHShell("127.0.0.1", 22, "root", "/nonexistent")
    shell._client = client

    def connect(timeout):
        connects.append(timeout)
        old, shell._client = shell._client, _FakeClient(_FakeTransport())
        old.close()
        return shell
    monkeypatch.setattr(shell, "connect", connect)
    return shell


def test_a_connection_the_server_dropped_is_connected_again_once(monkeypatch):
    connects: list[float] = []
    shell = _shell_with(_FakeClient(None), monkeypatch, connects)
    shell._enter(deadline=float("inf"))
    shell._leave()
    assert len(connects) == 1 and 1.0 <= connects[0] <= 15.0
    assert shell.connected


def test_a_shell_never_connected_or_closed_is_not_connected_behind_the_callers_back(monkeypatch):
    from smartos_lab.errors import TransportError
    from smartos_lab.machine.ssh import SSHShell

    shell = SSHShell("127.0.0.1", 22, "root", "/nonexistent")
    monkeypatch.setattr(shell, "connect", lambda timeout: pytest.fail("must not connect"))
    with pytest.raises(TransportError, match="not connected"):
        shell._enter(deadline=float("inf"))


def test_a_channel_open_that_timed_out_gets_a_new_connection_once_no_command_uses_it(monkeypatch):
    """paramiko forgets a channel whose open timed out; the server may still open it."""
    import paramiko

    from smartos_lab.errors import TransportError

    def open_times_out(timeout):
        raise paramiko.SSHException("Timeout opening channel.")
    old = _FakeClient(_FakeTransport(open_times_out))
    connects: list[float] = []
    shell = _shell_with(old, monkeypatch, connects)
    shell._enter(deadline=float("inf"))             # another command holds the connection
    with pytest.raises(TransportError, match="Timeout opening channel"):
        shell._channel("true", deadline=time.monotonic() + 5)
    shell._enter(deadline=float("inf"))             # still in use: not replaced under it
    assert connects == [] and shell._client is old
    shell._leave()
    shell._leave()
    shell._enter(deadline=float("inf"))             # idle now: a new connection
    shell._leave()
    assert len(connects) == 1 and old.closed and shell._client is not old
    shell._enter(deadline=float("inf"))             # and only once
    shell._leave()
    assert len(connects) == 1


class _SlowRequestChannel:
    """A channel whose exec request leaves ``delay`` s after the call (the thread lost the CPU
    between paramiko's open check and the send); records what went to the server, in order."""

    def __init__(self, delay: float):
        self.delay = delay
        self.sent: list[str] = []
        self.answer = threading.Event()
        self.closed = False

    def exec_command(self, command: str) -> None:
        if self.closed:
            raise paramiko_exception("Channel is not open")
        time.sleep(self.delay)
        self.sent.append("exec")
        if not self.answer.wait(5):
            raise paramiko_exception("no answer")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sent.append("close")


def paramiko_exception(text: str):
    import paramiko
    return paramiko.SSHException(text)


def test_a_channel_given_up_on_is_closed_only_after_its_exec_request_went_out():
    """dropbear ends the whole connection on a request for a channel it already closed."""
    from smartos_lab.errors import CommandTimeout
    from smartos_lab.machine.ssh import _ExecRequest

    chan = _SlowRequestChannel(delay=0.4)
    request = _ExecRequest(chan, "true")
    with pytest.raises(CommandTimeout):
        request.wait(time.monotonic() + 0.1, None)
    assert not request.answered and chan.sent == []
    time.sleep(0.6)
    assert chan.sent == ["exec"]                    # not closed before the server answers
    chan.answer.set()                               # the server answers late
    deadline = time.monotonic() + 5
    while "close" not in chan.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert chan.sent == ["exec", "close"]


def test_an_exec_request_answered_in_time_leaves_the_channel_open():
    from smartos_lab.machine.ssh import _ExecRequest

    chan = _SlowRequestChannel(delay=0.0)
    chan.answer.set()
    request = _ExecRequest(chan, "true")
    request.wait(time.monotonic() + 5, None)
    assert request.answered and chan.sent == ["exec"] and not chan.closed


def test_a_reader_waiting_on_a_channel_is_woken_by_either_stream_without_an_fd():
    """select() on a paramiko channel makes a pipe that Channel.close() closes under the
    transport thread's feet (EBADF there ends the connection); the wake-up has no fd."""
    from paramiko.buffered_pipe import BufferedPipe

    from smartos_lab.machine.ssh import _Wakeup

    class Chan:
        in_buffer, in_stderr_buffer = BufferedPipe(), BufferedPipe()
    chan = Chan()
    wakeup = _Wakeup.of(chan)
    assert _Wakeup.of(chan) is wakeup
    wakeup.reset()
    chan.in_buffer.feed(b"out")
    chan.in_stderr_buffer.feed(b"err")
    chan.in_buffer.read(10)                         # the stdout buffer is empty again ...
    t0 = time.monotonic()
    wakeup.wait(2)                                  # ... but stderr still holds data
    assert time.monotonic() - t0 < 0.5
    wakeup.reset()
    threading.Timer(0.2, chan.in_stderr_buffer.close).start()
    t0 = time.monotonic()
    wakeup.wait(5)                                  # the end of a stream wakes it too
    assert 0.1 < time.monotonic() - t0 < 2


def test_a_new_channel_waits_until_the_server_reaped_processes_that_may_end(monkeypatch):
    """dropbear < 2024.86 closes a channel still starting when it handles a SIGCHLD."""
    from smartos_lab.machine import ssh as ssh_mod

    class Map(dict):
        pass

    class Transport:
        _channels = Map()

        def is_active(self):
            return True

    class Chan:
        def __init__(self, chanid):
            self.chanid = chanid
            Transport._channels[chanid] = self

        def get_transport(self):
            return Transport()

        def get_id(self):
            return self.chanid

    shell = ssh_mod.SSHShell("127.0.0.1", 22, "root", "/nonexistent")
    ending, own = Chan(1), Chan(2)
    shell._may_end(ending)
    shell._may_end(own)
    threading.Timer(0.3, Transport._channels.pop, args=(1,)).start()   # the server closes it
    t0 = time.monotonic()
    shell._wait_quiet(time.monotonic() + 10, own=own)
    assert 0.2 < time.monotonic() - t0 < 2
    monkeypatch.setattr(ssh_mod, "QUIET_WAIT", 0.2)
    t0 = time.monotonic()
    shell._wait_quiet(time.monotonic() + 10)          # ``own`` never ends here: bounded
    assert 0.1 < time.monotonic() - t0 < 1
