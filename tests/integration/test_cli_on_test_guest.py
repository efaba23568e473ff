"""The `smartos-lab` commands that act on a running lab, on the Linux test guest
(a test substrate, not SmartOS).

The interactive console runs in a real pty (pexpect), types into the guest's
serial console, shows its output, leaves with Ctrl-] and leaves the lab running.
Checkpoints are taken and restored by the CLI while the lab is held by this
process (the CLI uses its own QMP socket).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pexpect
import pytest

from smartos_lab.lab import Lab
from tests.guest.strategy import TestGuestStrategy

pytestmark = pytest.mark.guest

NAME = f"cons-{os.getpid()}"


@pytest.fixture(scope="module")
def lab():
    lab = Lab.up(NAME, strategy=TestGuestStrategy(ssh=False), progress=False)
    yield lab
    lab.down()


def _console() -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "smartos_lab.cli", "console", NAME],
                         env=dict(os.environ), encoding="utf-8", timeout=30)


def test_a_console_held_by_a_lab_is_reported_not_silently_waited_on(lab):
    child = _console()
    child.expect("in use by another process")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_the_interactive_console_types_into_the_guest_and_ctrl_bracket_leaves(lab):
    lab.detach()                      # let go of the console so the CLI can have it
    child = _console()
    child.expect(r"connected to the serial console of")
    child.sendline("echo $((40 + 2))xyz")
    child.expect("42xyz")
    child.sendcontrol("]")
    child.expect("the lab keeps running")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    again = Lab.attach(NAME, strategy=TestGuestStrategy(ssh=False))
    assert again.sh("echo still-here").stdout == "still-here\n"
    lab.machine, lab.shell = again.machine, again.shell


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartos_lab.cli", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))


def test_checkpoint_list_and_restore_from_the_command_line(lab):
    lab.check("echo one > /tmp/state")
    saved = _cli("checkpoint", NAME, "cli-ckpt")
    assert saved.returncode == 0 and "saved checkpoint 'cli-ckpt'" in saved.stdout
    listed = _cli("checkpoints", NAME)
    assert listed.returncode == 0 and "cli-ckpt" in listed.stdout
    lab.check("echo two > /tmp/state")
    restored = _cli("restore", NAME, "cli-ckpt")
    assert restored.returncode == 0, restored.stderr
    assert lab.sh("cat /tmp/state").stdout == "one\n"
    unknown = _cli("restore", NAME, "no-such-checkpoint")
    assert unknown.returncode == 1 and "no-such-checkpoint" in unknown.stderr
    assert _cli("checkpoints", NAME, "--delete", "cli-ckpt").returncode == 0
    assert "cli-ckpt" not in _cli("checkpoints", NAME).stdout
