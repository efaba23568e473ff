"""Streaming and framing pieces of the console and SSH shells, without a guest.

The transports themselves are tested on the test guest (tests/integration/test_streaming.py,
test_ssh_session.py, test_never_wedged.py); these pin the parsing they rely on.
"""
from __future__ import annotations

import os

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


# --- a dropped SSH connection ----------------------------------------------------------------
class _DeadClient:
    """A paramiko client whose transport the server has dropped."""

    def get_transport(self):
        return None

    def close(self) -> None:
        pass


def test_a_connection_the_server_dropped_is_connected_again_once(monkeypatch):
    from smartos_lab.machine.ssh import SSHShell

    shell = SSHShell("127.0.0.1", 22, "root", "/nonexistent")
    shell._client = _DeadClient()
    calls = []
    monkeypatch.setattr(shell, "connect", lambda timeout: calls.append(timeout) or shell)
    shell._reconnect_if_dropped(deadline=float("inf"))
    assert len(calls) == 1 and 1.0 <= calls[0] <= 15.0


def test_a_shell_never_connected_or_closed_is_not_connected_behind_the_callers_back(monkeypatch):
    from smartos_lab.errors import TransportError
    from smartos_lab.machine.ssh import SSHShell

    shell = SSHShell("127.0.0.1", 22, "root", "/nonexistent")
    monkeypatch.setattr(shell, "connect", lambda timeout: pytest.fail("must not connect"))
    with pytest.raises(TransportError, match="not connected"):
        shell._reconnect_if_dropped(deadline=float("inf"))
