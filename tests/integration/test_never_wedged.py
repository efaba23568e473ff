"""Faults a user meets that must never wedge a transport, on the Linux test guest (a test
substrate: busybox ash on ttyS0 and dropbear, not SmartOS).

Each test is a fault found by probing the lab as a user would: the console shell ending,
QEMU stopped mid-command, a process dying with a command running on the console, file
copies that cannot work, ``smartos-lab ssh`` and the host key.  (A NUL byte in a command
and several threads over SSH are in test_ssh_session.py.)
"""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from smartos_lab.errors import CommandTimeout, ConfigError, ShellExited, TransportError
from smartos_lab.lab import Lab, register_strategy
from smartos_lab.machine.guest import CONSOLE_COPY_LIMIT, GuestShell
from smartos_lab.machine.shell import INTERRUPT_BUDGET, ConsoleShell, login
from tests.guest.machines import booted_guest
from tests.guest.strategy import TestGuestStrategy

pytestmark = pytest.mark.guest

ROOT = Path(__file__).resolve().parents[2]
NAME = f"wedge-{os.getpid()}"


@pytest.fixture(scope="module")
def booted():
    with booted_guest(f"wedge-g-{os.getpid()}", ssh=True) as b:
        yield b


@pytest.fixture(scope="module")
def guest(booted, tmp_path_factory):
    relogin = functools.partial(login, booted.console, password=booted.guest.root_password,
                                timeout=60)
    shell = ConsoleShell(booted.console, relogin=relogin)
    shell.setup()
    g = GuestShell(shell)
    g.enable_ssh(port=booted.machine.ports["ssh"], key_path=tmp_path_factory.mktemp("k") / "id",
                 timeout=120)
    yield g
    g.close()


# --- the console shell ending ------------------------------------------------------------------
def test_exit_on_the_console_logs_in_again_and_raises_shell_exited(guest):
    t0 = time.monotonic()
    with pytest.raises(ShellExited) as exc:
        guest.run("echo bye; exit", via="console", timeout=20)
    assert time.monotonic() - t0 < 15
    assert exc.value.output == "bye\n" and "logged in again" in str(exc.value)
    t0 = time.monotonic()
    assert guest.run("echo back", via="console").stdout == "back\n"
    assert time.monotonic() - t0 < 2


def test_a_background_job_that_ends_the_shell_is_answered_by_a_new_login(guest):
    """On busybox ash at ttyS0 the shell ends when a background job it started ends."""
    guest.run("sleep 1 &", via="console")
    time.sleep(3)
    t0 = time.monotonic()
    assert guest.run("echo after-the-job", via="console", timeout=20).stdout == "after-the-job\n"
    assert time.monotonic() - t0 < 10
    assert guest.run("echo fast-again", via="console").duration < 2


# --- QEMU stopped -------------------------------------------------------------------------------
def test_qemu_stopped_during_a_console_command_returns_within_timeout_plus_a_little(booted, guest):
    pid = booted.machine.pid
    stopper = threading.Timer(1.0, os.kill, (pid, signal.SIGSTOP))
    stopper.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(CommandTimeout):
            guest.run("echo started; sleep 30", via="console", timeout=4)
        took = time.monotonic() - t0
    finally:
        stopper.cancel()
        os.kill(pid, signal.SIGCONT)
    assert took < 4 + INTERRUPT_BUDGET + 1
    assert guest.run("echo alive", via="console", timeout=30).stdout == "alive\n"


# --- file copies: one typed error per cause, whatever the transport -----------------------------
@pytest.mark.parametrize("via", ["console", "ssh"])
def test_put_of_what_cannot_be_copied_is_one_clear_error_per_cause(guest, via, tmp_path):
    with pytest.raises(ConfigError, match="no such local file"):
        guest.put(tmp_path / "missing", "/tmp/x", via=via)
    with pytest.raises(ConfigError, match="is a directory"):
        guest.put(tmp_path, "/tmp/x", via=via)
    small = tmp_path / "small"
    small.write_text("data\n")
    with pytest.raises(TransportError, match="cannot write /proc/no-such/x in the guest"):
        guest.put(small, "/proc/no-such/x", via=via)
    with pytest.raises(TransportError, match="cannot read /no/such/file in the guest"):
        guest.get("/no/such/file", tmp_path / "back", via=via)


def test_a_console_put_checks_the_size_before_reading_the_file(guest, tmp_path):
    huge = tmp_path / "huge"
    with open(huge, "wb") as f:
        f.truncate(64 << 30)                    # sparse: reading it would take minutes and 64 GiB
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="too big for the serial console"):
        guest.put(huge, "/tmp/huge", via="console")
    assert time.monotonic() - t0 < 1
    assert os.path.getsize(huge) > CONSOLE_COPY_LIMIT


# --- a lab whose holder died mid-command; smartos-lab ssh -----------------------------------------
@pytest.fixture(scope="module")
def lab():
    """The lab, as held by this process now (tests that attach again put theirs here)."""
    register_strategy("test-guest", TestGuestStrategy)
    held = {"lab": Lab.up(NAME, strategy=TestGuestStrategy(), progress=False)}
    yield held
    if held["lab"].machine.alive():
        held["lab"].down()


def test_a_command_left_running_by_a_dead_process_is_interrupted_at_the_next_attach(lab):
    lab["lab"].detach()
    script = textwrap.dedent(f"""
        from smartos_lab.lab import Lab, register_strategy
        from tests.guest.strategy import TestGuestStrategy
        register_strategy("test-guest", TestGuestStrategy)
        lab = Lab.attach({NAME!r})
        print("running", flush=True)
        lab.sh("sleep 600", via="console", timeout=900)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env=os.environ)
    try:
        assert child.stdout.readline() == "running\n"
        time.sleep(1.5)
    finally:
        child.kill()
        child.wait(10)
    said: list = []
    t0 = time.monotonic()
    again = lab["lab"] = Lab.up(NAME, strategy=TestGuestStrategy(), progress=said.append)
    assert time.monotonic() - t0 < 20
    assert any("interrupted (^C)" in event.message for event in said), said
    assert again.sh("ps | grep -c '[s]leep 600'", via="console").stdout == "0\n"


def test_smartos_lab_ssh_connects_with_the_pinned_host_key_only(lab):
    known = lab["lab"].lab_dir.ssh_key.with_name("ssh_key.known_hosts")
    cli = [sys.executable, "-m", "smartos_lab.cli", "ssh", NAME, "echo", "over-ssh"]
    ok = subprocess.run(cli, capture_output=True, text=True, timeout=60, cwd=ROOT, env=os.environ)
    assert (ok.returncode, ok.stdout) == (0, "over-ssh\n"), ok.stderr
    pinned = known.read_text()
    try:
        host, kind, _key = pinned.split()[:3]
        other = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPqM2ZIbN3qZlxVhbEIgl0bEJEYfTQ4r" \
                "5uGCtNvQ2UTuBCQIlPGTeIu2fKiHpWVQN7lJtiDsD0mbMlDJ0ggy0Sc="
        known.write_text(f"{host} {kind} {other}\n")           # another host's key
        bad = subprocess.run(cli, capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env=os.environ)
        assert bad.returncode != 0 and "over-ssh" not in bad.stdout
        assert "host key" in bad.stderr.lower() or "verification failed" in bad.stderr.lower()
    finally:
        known.write_text(pinned)
