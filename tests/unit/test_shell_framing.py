"""Command framing: marker parsing, and ConsoleShell/login driving real local shells on a pty.

The local shells (bash, and busybox ash: the same static busybox the Linux
test guest uses) run on a pseudo-terminal, so echo, line editing, ^C and
``stty`` behave as on a serial console; no VM is needed.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import termios
import threading
import time

import pytest

from smartos_lab.errors import (
    CommandFailed,
    CommandTimeout,
    ConfigError,
    ConsoleClosed,
    ConsoleTimeout,
    GuestPanic,
    LoginFailed,
    TransportError,
)
from smartos_lab.machine.console import Console
from smartos_lab.machine.guest import GuestShell
from smartos_lab.machine.result import CommandRunner
from smartos_lab.machine.shell import ConsoleShell, Frame, login, normalise_output
from smartos_lab.machine.ssh import SSHShell
from smartos_lab.toolkits import _cmd


# --- markers -------------------------------------------------------------------------
def test_markers_on_the_echoed_command_line_do_not_match():
    frame = Frame("abcd1234_7")
    line = frame.command_line("echo hello")
    assert not frame.begin_re.search(line)
    assert not frame.end_re.search(line)
    assert not Frame("abcd1234_8").sync_re.search(Frame("abcd1234_8").sync_line())


def test_markers_match_what_the_shell_prints():
    frame = Frame("abcd1234_7")
    transcript = ("printf ... echoed line ...\r\n"
                  "__sl_abcd1234_7_b__\r\nhello\r\nno newline__sl_abcd1234_7_e__:3:\r\nsl# ")
    begin = frame.begin_re.search(transcript)
    end = frame.end_re.search(transcript, begin.end())
    assert transcript[begin.end():end.start()] == "hello\r\nno newline"
    assert end.group(1) == "3"


def test_markers_of_another_command_do_not_match():
    old, new = Frame("abcd1234_7"), Frame("abcd1234_17")
    assert not new.end_re.search("__sl_abcd1234_7_e__:0:\r\n")
    assert not old.end_re.search("__sl_abcd1234_17_e__:0:\r\n")


def test_the_command_travels_as_one_quoted_word():
    line = Frame("t_1").command_line("echo 'a b'; cat <<EOF\nx\nEOF")
    assert "eval 'echo '\"'\"'a b'\"'\"'; cat <<EOF\nx\nEOF'" in line


def test_normalise_output_undoes_onlcr_only():
    assert normalise_output("a\r\nb\r\r\nc\rd") == "a\nb\nc\rd"


# --- real shells on a pty --------------------------------------------------------------
def _set_controlling_tty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


SHELLS = {
    "bash": ["bash", "--norc", "--noprofile", "-i"],
    "busybox-ash": ["busybox", "sh", "-i"],
}


@pytest.fixture(params=sorted(SHELLS))
def pty_console(request, tmp_path):
    argv = SHELLS[request.param]
    if not shutil.which(argv[0]):
        pytest.skip(f"{argv[0]} not installed")
    master, slave = os.openpty()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "TERM": "vt100", "PS1": "$ ", "ENV": "/dev/null"}
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            cwd=tmp_path, start_new_session=True, preexec_fn=_set_controlling_tty)
    os.close(slave)
    console = Console.from_fd(master, name=request.param)
    yield console
    console.close()
    proc.kill()
    proc.wait(5)


@pytest.fixture
def shell(pty_console):
    sh = ConsoleShell(pty_console)
    sh.setup(timeout=10)
    return sh


def test_echo_hello(shell):
    r = shell.run("echo hello", timeout=10)
    assert (r.exit_status, r.stdout, r.stderr, r.transport) == (0, "hello\n", "", "console")


def test_exit_statuses(shell):
    assert shell.run("false", timeout=10).exit_status == 1
    assert shell.run("(exit 3)", timeout=10).exit_status == 3
    assert shell.run("true", timeout=10).ok


def test_check_raises_command_failed(shell):
    with pytest.raises(CommandFailed) as exc:
        shell.check("echo oops >&2; exit_code=4; (exit $exit_code)", timeout=10)
    assert exc.value.result.exit_status == 4
    assert "oops" in exc.value.result.stdout          # stderr merged over the console


def test_output_without_a_trailing_newline(shell):
    assert shell.run("printf 'no newline'", timeout=10).stdout == "no newline"
    assert shell.run("printf ''", timeout=10).stdout == ""


def test_multi_line_command_and_heredoc(shell):
    r = shell.run("x=1\nif [ $x = 1 ]; then\n  echo one\nfi\ncat <<'EOF'\n$x stays\n  indented\nEOF",
                  timeout=10)
    assert r.stdout == "one\n$x stays\n  indented\n"


def test_quotes_and_special_characters_pass_unchanged(shell):
    r = shell.run("""printf '%s|' 'single' "double \\"q\\"" '$HOME' 'a;b' '#x'""", timeout=10)
    assert r.stdout == 'single|double "q"|$HOME|a;b|#x|'


def test_ansi_codes_in_output_are_stripped(shell):
    assert shell.run(r"printf '\033[31mred\033[0m\n'", timeout=10).stdout == "red\n"


def test_a_long_line(shell):
    r = shell.run("printf '%05000d\\n' 0", timeout=10)
    assert r.stdout == "0" * 5000 + "\n"


def test_a_syntax_error_returns_instead_of_hanging(shell):
    r = shell.run("echo 'unterminated", timeout=10)
    assert r.exit_status != 0
    assert shell.run("echo fine", timeout=10).stdout == "fine\n"


def test_variables_and_directory_persist_between_commands(shell, tmp_path):
    shell.run(f"cd {tmp_path} && kept=yes", timeout=10)
    assert shell.run("echo $kept $PWD", timeout=10).stdout == f"yes {tmp_path}\n"


def test_a_hanging_command_times_out_and_the_shell_recovers(shell):
    with pytest.raises(CommandTimeout) as exc:
        shell.run("echo started; sleep 600", timeout=1)
    assert exc.value.output == "started\n"
    assert "sleep 600" in str(exc.value)
    assert shell.run("echo ok", timeout=10).stdout == "ok\n"


def test_control_characters_in_a_command_are_refused_before_typing(shell, tmp_path):
    """^U in quoted content would erase the typed line and run the rest as a command."""
    pwned = tmp_path / "pwned"
    with pytest.raises(ConfigError) as exc:
        shell.run(f"printf %s 'hello\x15touch {pwned} #' > {tmp_path}/x", timeout=10)
    assert "use SSH or GuestShell.put" in str(exc.value)
    with pytest.raises(ConfigError):
        _cmd.write_file(shell, str(tmp_path / "x"), "a\r\nb\n")
    assert shell.run("printf 'tab\tok\n'", timeout=10).stdout == "tab\tok\n"
    assert not pwned.exists()


def test_a_command_line_too_long_for_the_tty_is_refused_at_once(shell):
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as exc:
        shell.run("echo " + "x" * 4100, timeout=10)
    assert time.monotonic() - t0 < 1 and "line limit" in str(exc.value)
    lines = "\n".join(["echo " + "y" * 3000] * 3)          # long, but each line fits
    assert shell.run(lines, timeout=10).stdout == ("y" * 3000 + "\n") * 3


def test_write_file_with_many_single_quotes_works_over_the_console(shell, tmp_path):
    content = "'" * 700 + "\n" + "it's" * 500 + "\n"
    _cmd.write_file(shell, str(tmp_path / "q"), content, timeout=20)
    assert (tmp_path / "q").read_text() == content


def test_panic_text_in_a_commands_output_is_not_a_crash(shell):
    r = shell.run("echo 'Kernel panic - not syncing: just text'; echo after", timeout=10)
    assert r.stdout == "Kernel panic - not syncing: just text\nafter\n"
    assert shell.console.crash is None
    assert shell.run("echo next", timeout=10).stdout == "next\n"


def test_panic_text_followed_by_silence_is_reported_as_a_panic(shell):
    """No end marker within crash_collect s: the kernel is taken as dead."""
    t0 = time.monotonic()
    with pytest.raises(GuestPanic):
        shell.run("echo 'Kernel panic - not syncing: Fatal exception'; sleep 30", timeout=60)
    assert time.monotonic() - t0 < 10
    assert isinstance(shell.console.crash, GuestPanic)


def test_framing_survives_terminal_echo_turned_back_on(shell):
    shell.run("stty echo", timeout=10)
    assert shell.run("echo hi", timeout=10).stdout == "hi\n"


def test_guest_shell_without_ssh_runs_on_the_console(shell):
    guest = GuestShell(shell)
    assert guest.transport == "console"
    assert guest.run("echo hi").transport == "console"
    with pytest.raises(TransportError):
        guest.run("echo hi", via="ssh")
    with pytest.raises(ConfigError):
        guest.run("echo hi", via="telnet")


def test_every_transport_is_a_command_runner(shell):
    assert isinstance(shell, CommandRunner)
    assert isinstance(GuestShell(shell), CommandRunner)
    assert isinstance(SSHShell("127.0.0.1", 22, "root", "/nonexistent"), CommandRunner)


def test_run_sets_up_the_shell_on_first_use(pty_console):
    assert ConsoleShell(pty_console).run("echo lazy", timeout=10).stdout == "lazy\n"


def test_setup_fails_clearly_when_no_shell_answers():
    a, b = socket.socketpair()
    console = Console.from_socket(a, name="silent")
    try:
        with pytest.raises(ConsoleTimeout) as exc:
            ConsoleShell(console).setup(timeout=0.5)
        assert "no shell answers on silent" in str(exc.value)
    finally:
        console.close()
        b.close()


# --- login against a scripted getty ------------------------------------------------------
class ScriptedGetty:
    """Plays a getty + login on the other end of a socketpair."""

    def __init__(self, sock: socket.socket, password: str, banner: bytes = b""):
        self.sock, self.password, self.banner = sock, password, banner
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _readline(self) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                raise EOFError
            line += chunk
        self.received.append(line)
        return line.strip()

    def _run(self):
        try:
            self.sock.sendall(self.banner)
            while True:
                user = self._readline()
                if not user:
                    self.sock.sendall(b"\r\ntestguest login: ")
                    continue
                for piece in (b"Pass", b"word", b":", b" "):    # as a slow guest prints it
                    self.sock.sendall(piece)
                    time.sleep(0.05)
                if self._readline() == self.password.encode() and user == b"root":
                    self.sock.sendall(b"\r\nLast login: Mon Nov 27 12:00\r\ntestguest:~# ")
                    return
                self.sock.sendall(b"\r\nLogin incorrect\r\ntestguest login: ")
        except (EOFError, OSError):
            pass


@pytest.fixture
def getty_pair():
    a, b = socket.socketpair()
    console = Console.from_socket(a, name="getty")
    yield console, b
    console.close()
    b.close()


def test_login_from_the_login_prompt(getty_pair):
    console, b = getty_pair
    getty = ScriptedGetty(b, "secret", banner=b"smartos-lab test guest: ready\r\ntestguest login: ")
    login(console, password="secret", timeout=10)
    assert getty.received == [b"root\n", b"secret\n"]


def test_login_pokes_a_silent_console_with_a_newline(getty_pair):
    console, b = getty_pair
    getty = ScriptedGetty(b, "secret")                 # prints nothing until it gets a newline
    login(console, password="secret", timeout=15)
    assert getty.received[0] == b"\n"


def test_login_with_a_wrong_password_fails_clearly(getty_pair):
    console, b = getty_pair
    ScriptedGetty(b, "secret", banner=b"testguest login: ")
    with pytest.raises(LoginFailed) as exc:
        login(console, password="wrong", timeout=10)
    assert "Login incorrect" in str(exc.value)


def test_login_times_out_when_no_prompt_ever_comes(getty_pair):
    console, _ = getty_pair
    with pytest.raises(ConsoleTimeout) as exc:
        login(console, password="x", timeout=1)
    assert "no shell prompt" in str(exc.value)


def test_login_reports_a_panic_instead_of_waiting(getty_pair):
    console, b = getty_pair
    b.sendall(b"testguest login: ")
    time.sleep(0.3)
    b.sendall(b"\r\n[    3.1] Kernel panic - not syncing: Attempted to kill init!\r\n")
    with pytest.raises(GuestPanic):
        login(console, password="x", timeout=10)


def test_login_reports_a_closed_console(getty_pair):
    console, b = getty_pair
    b.close()
    with pytest.raises(ConsoleClosed):
        login(console, password="x", timeout=10)


def test_login_on_a_real_shell_prompt_just_returns(pty_console):
    login(pty_console, password=None, timeout=10)
    assert ConsoleShell(pty_console).run("echo in", timeout=10).stdout == "in\n"
