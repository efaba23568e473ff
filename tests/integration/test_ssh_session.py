"""The persistent SSH shell (framed commands in long-lived session channels) on the Linux
test guest (a test substrate: busybox sh under dropbear, not SmartOS).

Mirrors the console shell's tests (tests/integration/test_shell.py), plus what only SSH
has: several threads at once, a lost connection, the fall-back to the console.
One guest boots for the module.
"""
from __future__ import annotations

import logging
import os
import time

import pytest

from smartos_lab.errors import CommandFailed, CommandTimeout, ConfigError
from smartos_lab.machine.guest import GuestShell
from smartos_lab.machine.shell import ConsoleShell
from tests.guest.machines import booted_guest
from tests.threads import run_in_threads

pytestmark = pytest.mark.guest

DROPBEAR = ("dropbear -E -p 22 -r /etc/dropbear/dropbear_ed25519_host_key "
            "-r /etc/dropbear/dropbear_ecdsa_host_key -r /etc/dropbear/dropbear_rsa_host_key")


@pytest.fixture(scope="module")
def booted():
    with booted_guest(f"sess-{os.getpid()}", ssh=True) as b:
        yield b


@pytest.fixture(scope="module")
def guest(booted, tmp_path_factory):
    g = GuestShell(ConsoleShell(booted.console))
    g.enable_ssh(port=booted.machine.ports["ssh"], key_path=tmp_path_factory.mktemp("k") / "id",
                 timeout=120)
    yield g
    g.close()


@pytest.fixture()
def ssh(guest):
    return guest.ssh


def test_echo_hello(ssh):
    r = ssh.run("echo hello")
    assert (r.exit_status, r.stdout, r.stderr, r.transport) == (0, "hello\n", "", "ssh")


def test_exit_statuses(ssh):
    assert ssh.run("false").exit_status == 1
    assert ssh.run("(exit 3)").exit_status == 3
    assert ssh.run("sh -c 'exit 255'").exit_status == 255


def test_stderr_comes_apart_from_stdout(ssh):
    r = ssh.run("echo to-out; echo to-err >&2; echo out2")
    assert (r.stdout, r.stderr) == ("to-out\nout2\n", "to-err\n")


def test_check_raises_command_failed(ssh):
    with pytest.raises(CommandFailed):
        ssh.check("ls /does-not-exist")


def test_a_5000_character_line_and_a_1_mb_one(ssh):
    assert ssh.run("printf '%05000d\\n' 7").stdout == "0" * 4999 + "7\n"
    assert len(ssh.run("head -c 1000000 /dev/zero | tr '\\0' x").stdout) == 1_000_000


def test_output_without_a_trailing_newline(ssh):
    r = ssh.run("printf 'no newline'; printf 'err' >&2")
    assert (r.stdout, r.stderr) == ("no newline", "err")
    assert ssh.run("true").stdout == ""


def test_binary_output_is_byte_exact(ssh):
    data = ssh.run_bytes("printf '\\000\\001\\377\\r\\n'; printf '\\200' >&2")
    assert (data.stdout, data.stderr) == (b"\x00\x01\xff\r\n", b"\x80")
    r = ssh.run("head -c 65536 /dev/urandom | od -An -v -tx1 | wc -l")
    assert r.stdout.strip() == "4096"


def test_multi_line_command_and_heredoc(ssh):
    r = ssh.run("for i in 1 2; do\n  echo line $i\ndone\n"
                "cat <<'EOF' > /tmp/heredoc\n$HOME is not expanded\n\ttab kept\nEOF\n"
                "cat /tmp/heredoc")
    assert r.stdout == "line 1\nline 2\n$HOME is not expanded\n\ttab kept\n"


def test_a_syntax_error_is_an_exit_status_not_a_stuck_session(ssh):
    r = ssh.run("if then fi (")
    assert r.exit_status != 0 and "syntax" in r.stderr.lower()
    assert ssh.run("echo fine").stdout == "fine\n"


def test_a_command_reading_stdin_gets_end_of_file_not_the_next_command(ssh):
    r = ssh.run("cat; echo after-cat")
    assert r.stdout == "after-cat\n"


def test_the_shell_state_persists_between_commands(ssh):
    ssh.run("cd /tmp && export SL_TEST=kept")
    assert ssh.run("pwd; echo $SL_TEST").stdout == "/tmp\nkept\n"
    ssh.run("cd /")


def test_a_hanging_command_times_out_and_the_next_command_works(ssh):
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as exc:
        ssh.run("echo before-the-hang; sleep 600", timeout=2)
    assert time.monotonic() - t0 < 2 + 3
    assert exc.value.output == "before-the-hang\n"
    assert ssh.run("echo ok; ps | grep -c '[s]leep 600'").stdout == "ok\n0\n"


def test_a_busy_loop_in_the_shell_itself_is_stopped_with_its_session(ssh):
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout):
        ssh.run("while :; do :; done", timeout=2)
    assert time.monotonic() - t0 < 2 + 7          # INT, KILL, then the session shell is killed
    assert ssh.run("echo ok").stdout == "ok\n"


def test_exit_ends_the_session_with_its_status_and_the_next_command_gets_a_new_one(ssh):
    before = ssh.run("echo $$").stdout
    r = ssh.run("echo bye; echo err >&2; exit 7", timeout=10)
    assert (r.exit_status, r.stdout, r.stderr) == (7, "bye\n", "err\n")
    after = ssh.run("echo $$").stdout
    assert after != before


def test_a_nul_byte_is_refused_on_both_transports(guest):
    for via in ("ssh", "console"):
        with pytest.raises(ConfigError, match="NUL byte at offset 6"):
            guest.run("echo a\x00b", via=via)
    assert guest.run("echo still-fine", via="ssh").stdout == "still-fine\n"


def test_many_threads_all_succeed(ssh):
    results: list[str] = []

    def worker(n: int) -> None:
        for i in range(10):
            results.append(ssh.run(f"sleep 0.0{i}; echo {n}-{i}", timeout=60).stdout)

    assert run_in_threads(worker, 8, timeout=120) == []
    assert sorted(results) == sorted(f"{n}-{i}\n" for n in range(8) for i in range(10))


def test_clean_commands_from_several_threads_all_succeed_on_one_connection(ssh):
    """Each ends a process of dropbear's while others start channels: dropbear 2022.83 closes
    a channel it has not started a command in on every SIGCHLD ("Channel closed"), and
    asserts on the command's output if it starts it anyway: the connection is lost."""
    transport = ssh._client.get_transport()
    results: list[str] = []

    def worker(n: int) -> None:
        for i in range(20):
            results.append(ssh.run(f"echo {n}-{i}", timeout=60, clean=True).stdout)

    assert run_in_threads(worker, 3, timeout=180) == []
    assert sorted(results) == sorted(f"{n}-{i}\n" for n in range(3) for i in range(20))
    assert ssh._client.get_transport() is transport and transport.is_active()


def test_a_dropped_connection_is_reconnected_for_the_next_command(guest, ssh):
    # kill our connection's dropbear process (the parent of the session shells)
    pid = ssh.run("echo $PPID").stdout.strip()
    guest.run(f"kill {pid}", via="console")
    deadline = time.monotonic() + 10
    while ssh.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ssh.connected
    r = guest.run("echo back")
    assert (r.transport, r.stdout) == ("ssh", "back\n")


def test_without_ssh_commands_fall_back_to_the_console_and_say_so_once(booted, guest, caplog):
    guest.run("killall dropbear", via="console")
    try:
        deadline = time.monotonic() + 10
        while guest.ssh.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="smartos_lab.machine.guest"):
            first = guest.run("echo one")
            guest._retry_at = 0                 # try SSH again at once (it is still down)
            second = guest.run("echo two")
        assert (first.transport, second.transport) == ("console", "console")
        said = [rec.getMessage() for rec in caplog.records if "serial console" in rec.getMessage()]
        assert len(said) == 1 and "SSH to the guest is lost" in said[0]
    finally:
        guest.run(DROPBEAR, via="console")
    guest._retry_at = 0
    r = guest.run("echo ssh-again")
    assert (r.transport, r.stdout) == ("ssh", "ssh-again\n")
