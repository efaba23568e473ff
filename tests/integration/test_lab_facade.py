"""The Lab facade end to end on the Linux test guest (a test substrate, not SmartOS).

The test-guest strategy (tests/guest/strategy.py) stands in for the SmartOS
strategy; everything else - lab directory, QEMU launch, attach by name,
console + SSH transports, checkpoints, down and up again - is the real code.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from smartos_lab.errors import CheckpointError, ConfigError, LabNotFound
from smartos_lab.lab import Lab, LabDir
from smartos_lab.machine.registry import running_labs
from smartos_lab.steps import StepKind
from tests.guest.strategy import TestGuestStrategy, booted_test_guest_lab

pytestmark = pytest.mark.guest

NAME = f"facade-{os.getpid()}"


@pytest.fixture(scope="module")
def lab():
    with booted_test_guest_lab(NAME) as lab:
        yield lab


def test_up_returns_a_logged_in_lab_that_runs_commands_over_ssh(lab):
    result = lab.sh("echo hello; echo oops >&2; exit 3")
    assert result.transport == "ssh"
    assert (result.stdout, result.stderr, result.exit_status) == ("hello\n", "oops\n", 3)


def test_the_console_transport_can_be_forced(lab):
    result = lab.sh("echo $((6 * 7))", via="console")
    assert (result.transport, result.stdout, result.exit_status) == ("console", "42\n", 0)


def test_up_again_in_the_same_process_returns_the_lab_it_already_holds(lab):
    assert Lab.up(NAME, strategy=TestGuestStrategy(), progress=False) is lab
    assert Lab.attach(NAME) is lab


def test_a_second_process_is_told_the_console_is_held_instead_of_waiting(lab):
    script = textwrap.dedent(f"""
        import sys, time
        from smartos_lab.errors import LabError
        from smartos_lab.lab import Lab, register_strategy
        from tests.guest.strategy import TestGuestStrategy, booted_test_guest_lab
        register_strategy("test-guest", TestGuestStrategy)
        started = time.monotonic()
        try:
            Lab.attach({NAME!r})
        except LabError as exc:
            print(round(time.monotonic() - started), exc)
            sys.exit(0)
        sys.exit(1)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                         env=os.environ)
    assert out.returncode == 0, out.stderr
    seconds, message = out.stdout.split(" ", 1)
    assert int(seconds) < 10 and "held by another process" in message


def test_restoring_an_unknown_checkpoint_is_refused_and_keeps_ssh(lab):
    with pytest.raises(CheckpointError, match="no-such"):
        lab.restore("no-such")
    assert lab.sh("echo still-ssh").transport == "ssh"


def test_lab_state_is_kept_in_the_lab_directory(lab):
    lab_dir = LabDir(NAME)
    assert lab_dir.load().strategy == "test-guest"
    assert (lab_dir.disks_dir / "data0.qcow2").is_file()
    assert lab.serial_log == lab_dir.serial_log and "login" in lab.serial_log.read_text()


def test_a_running_lab_is_listed_and_up_attaches_to_it(lab):
    assert any(s.name == NAME and s.state == "running" for s in running_labs())
    lab.detach()
    again = Lab.up(NAME, strategy=TestGuestStrategy(), progress=False)
    assert again.machine.pid == lab.machine.pid
    assert again.sh("echo attached").stdout == "attached\n"
    lab.machine, lab.shell = again.machine, again.shell      # the module fixture goes on with it


def test_another_process_attaches_by_name_after_we_let_go(lab):
    lab.detach()
    script = textwrap.dedent(f"""
        from smartos_lab.lab import Lab, register_strategy
        from tests.guest.strategy import TestGuestStrategy, booted_test_guest_lab
        register_strategy("test-guest", TestGuestStrategy)
        lab = Lab.attach({NAME!r})
        print(lab.sh("echo from-another-process").stdout, end="")
        lab.detach()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=180, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                         env=os.environ)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "from-another-process\n"
    again = Lab.attach(NAME)
    lab.machine, lab.shell = again.machine, again.shell


def test_restore_brings_back_ram_and_disk_state_and_the_shell_works_after(lab):
    lab.check("echo before > /tmp/before; "
              "echo disk-before | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null")
    lab.checkpoint("known-good")
    lab.check("echo after > /tmp/after; "
              "echo disk-after | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null")
    seconds = lab.restore("known-good")
    assert seconds < 30
    assert lab.sh("cat /tmp/before").stdout == "before\n"
    assert lab.sh("test -e /tmp/after").exit_status == 1
    assert lab.sh("head -c 11 /dev/vda").stdout == "disk-before"
    assert lab.sh("echo ok", via="console").stdout == "ok\n"
    assert [c.name for c in lab.checkpoints()] == ["known-good"]


def test_down_stops_qemu_and_up_boots_again_with_the_same_disks(lab):
    lab.check("echo persisted | dd of=/dev/vda bs=512 seek=8 count=1 conv=sync 2>/dev/null; sync")
    lab.down()
    assert not any(s.name == NAME for s in running_labs())
    with pytest.raises(LabNotFound, match="is stopped"):
        Lab.attach(NAME)
    events = []
    again = Lab.up(NAME, strategy=TestGuestStrategy(), progress=events.append)
    assert again.sh("dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -c 9").stdout == "persisted"
    lab.machine, lab.shell = again.machine, again.shell
    # progress arrives as typed events: the milestones, then one FINISHED
    assert [e.step for e in events if e.kind is StepKind.STARTED] == [
        "prepare", "start QEMU", "boot", "login"]
    assert [e.kind for e in events].count(StepKind.FINISHED) == 1
    assert (events[-1].kind, events[-1].message) == (StepKind.FINISHED, f"lab {NAME} is ready")


def test_bad_arguments_are_refused_before_anything_starts():
    with pytest.raises(ConfigError):
        Lab.up("bad name!", strategy=TestGuestStrategy(), progress=False)
    with pytest.raises(ConfigError):
        Lab.up(f"x-{os.getpid()}", memory="12", strategy=TestGuestStrategy(), progress=False)
    with pytest.raises(ConfigError):
        Lab.up(f"x-{os.getpid()}", cpus=0, strategy=TestGuestStrategy(), progress=False)


def test_up_names_an_orphaned_qemu_of_the_same_lab_instead_of_failing_on_its_disks():
    import shutil

    from smartos_lab.errors import LabError
    from smartos_lab.machine.registry import stop

    name = f"orph-{os.getpid()}"
    first = Lab.up(name, strategy=TestGuestStrategy(ssh=False), progress=False)
    try:
        first.detach()
        shutil.rmtree(first.machine.run_dir.path)          # e.g. $XDG_RUNTIME_DIR wiped at logout
        with pytest.raises(LabError, match=f"smartos-lab down {name}"):
            Lab.up(name, strategy=TestGuestStrategy(ssh=False), progress=False)
    finally:
        stop(name)
    assert not any(s.name == name for s in running_labs())
