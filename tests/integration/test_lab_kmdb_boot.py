"""A boot that stops in the kernel debugger (illumos ``-kd``), through the real Lab facade.

The Linux test guest stands in (tests/guest/strategy.py); its kernel has no
debugger, so a *stand-in* stops its boot: a script run as PID 1 that prints
``stand-in debugger> `` and goes on with the boot when it reads ``:c``
(tests/guest/debugger_standin.py; it is not kmdb).  The test guest's console
profile declares that prompt as its debugger prompt, as SmartOS's declares
kmdb's ``[0]> ``.  QEMU, the console, the serial log, ``ps``, attach from
another process, login and SSH are the real code; kmdb's own commands are
tested on a replayer of recorded kmdb output (test_kmdb_replayer.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from smartos_lab.errors import NotInKmdb, StoppedInKmdb
from smartos_lab.lab import Lab, register_strategy
from smartos_lab.machine.registry import running_labs, stop
from smartos_lab.notebook.panel import lab_facts
from smartos_lab.steps import StepKind
from tests.guest import debugger_standin
from tests.guest.strategy import TestGuestStrategy

pytestmark = [pytest.mark.guest, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
NAME = f"kmdbboot-{os.getpid()}"


def ps_state(name: str) -> str:
    return next(s.state for s in running_labs() if s.name == name)


def in_another_process(script: str, labs_root: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        from pathlib import Path
        from smartos_lab.lab import Lab, register_strategy
        from tests.guest.strategy import TestGuestStrategy
        register_strategy("test-guest", TestGuestStrategy)
        ROOT, NAME = Path({str(labs_root)!r}), {NAME!r}
    """) + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture(scope="module")
def labs_root(tmp_path_factory):
    register_strategy("test-guest", TestGuestStrategy)
    root = tmp_path_factory.mktemp("labs")
    yield root
    if any(s.name == NAME for s in running_labs()):
        stop(NAME)                                  # a test failed half way: no QEMU left behind


@pytest.fixture(scope="module")
def stopped(labs_root):
    """Lab.up with the stand-in's kernel args, and the progress events it sent."""
    events = []
    lab = Lab.up(NAME, strategy=TestGuestStrategy(), kernel_args=debugger_standin.KERNEL_ARGS,
                 progress=events.append, labs_root=labs_root)
    return lab, events


def test_up_returns_the_lab_stopped_in_the_debugger_with_qemu_running(stopped):
    lab, events = stopped
    assert lab.machine.alive()
    assert lab.stopped_at_boot is not None and lab.stopped_at_boot.cause == "debugger"
    assert "stand-in debugger> " in lab.console.tail(200)
    assert lab.kmdb.active()
    # the last event says where it stopped; nothing failed
    assert StepKind.FAILED not in [e.kind for e in events]
    assert [e.step for e in events if e.kind is StepKind.STARTED] == [
        "prepare", "start QEMU", "boot", "kmdb"]
    assert events[-1].kind is StepKind.FINISHED
    assert events[-1].message.startswith(f"lab {NAME} stopped in kmdb: lab.kmdb")
    assert "lab.resume()" in events[-1].message


def test_commands_fail_at_once_with_a_typed_error_that_says_what_to_do(stopped):
    lab, _ = stopped
    started = time.monotonic()
    with pytest.raises(StoppedInKmdb) as err:
        lab.sh("uname -a")
    message = str(err.value)
    assert message.startswith(f"lab {NAME} is stopped in kmdb and not logged in yet")
    assert "lab.resume()" in message and "\n" not in message
    with pytest.raises(StoppedInKmdb, match="not logged in"):
        lab.shell.run("true")                       # what the toolkits use
    with pytest.raises(StoppedInKmdb):
        lab.zfs.pools()
    assert time.monotonic() - started < 2.0


def test_status_and_ps_show_the_kmdb_state(stopped):
    lab, _ = stopped
    status = lab.status()
    assert (status["state"], status["transport"]) == ("kmdb", "none")
    assert lab_facts(lab).state == "kmdb"           # the notebook's lab panel
    assert ps_state(NAME) == "kmdb"                 # from the serial log, as another process sees it
    listed = smartos_lab_cli("ps", "--json")
    assert {"name": NAME, "state": "kmdb"}.items() <= next(
        s for s in json.loads(listed) if s["name"] == NAME).items()
    assert f"note: lab {NAME!r} is stopped in kmdb" in smartos_lab_cli("ps")


def smartos_lab_cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "smartos_lab.cli", *args], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_another_process_attaches_to_the_stopped_lab_and_continues_the_debugger(stopped, labs_root):
    lab, _ = stopped
    lab.detach()
    out = in_another_process("""
        from smartos_lab.errors import StoppedInKmdb
        lab = Lab.attach(NAME, labs_root=ROOT)
        print("stopped:", lab.stopped_at_boot.from_log, lab.kmdb.active())
        try:
            lab.sh("true")
        except StoppedInKmdb as exc:
            print("refused:", str(exc).split(":")[0])
        lab.kmdb.cont()
        print("after cont:", lab.kmdb.active())
        lab.detach()
    """, labs_root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "stopped: True True", f"refused: lab {NAME} is stopped in kmdb and not logged in yet",
        "after cont: False"]


def test_up_after_the_debugger_was_continued_finishes_the_boot_and_logs_in(stopped, labs_root):
    events = []
    lab = Lab.up(NAME, strategy=TestGuestStrategy(), progress=events.append, labs_root=labs_root)
    assert lab.stopped_at_boot is None
    result = lab.sh("cat /proc/cmdline")
    assert result.transport == "ssh" and debugger_standin.KERNEL_ARGS in result.stdout
    assert lab.status()["state"] == "running" and ps_state(NAME) == "running"
    assert events[-1].message == f"lab {NAME} is ready"
    with pytest.raises(NotInKmdb):
        lab.kmdb.run("::stack")
    lab.down()


def test_the_next_boot_stops_again_and_resume_continues_it_and_logs_in(labs_root):
    lab = Lab.up(NAME, strategy=TestGuestStrategy(), progress=False, labs_root=labs_root)
    assert lab.stopped_at_boot is not None            # kernel_args are kept for later boots
    assert Lab.up(NAME, progress=False, labs_root=labs_root) is lab   # still there: as it is
    assert lab.stopped_at_boot is not None and lab.kmdb.active()
    events = []
    assert lab.resume(progress=events.append) is lab
    assert [e.step for e in events if e.kind is StepKind.STARTED] == ["kmdb", "boot", "login"]
    assert events[-1].message == f"lab {NAME} is ready"
    assert lab.stopped_at_boot is None and lab.status()["state"] == "running"
    assert lab.sh("echo resumed").stdout == "resumed\n"
    assert lab.check("echo console", via="console").stdout == "console\n"
    lab.down()


def test_kmdb_cont_then_up_in_the_same_process_logs_in(labs_root):
    lab = Lab.up(NAME, strategy=TestGuestStrategy(), progress=False, labs_root=labs_root)
    assert lab.stopped_at_boot is not None
    lab.kmdb.cont()
    assert Lab.up(NAME, progress=False, labs_root=labs_root) is lab
    assert lab.stopped_at_boot is None
    assert lab.sh("echo up").stdout == "up\n"
    lab.down()
    lab = Lab.up(NAME, strategy=TestGuestStrategy(), kernel_args="", progress=False,
                 labs_root=labs_root)              # kernel_args="" clears the flag again
    try:
        assert lab.stopped_at_boot is None and lab.sh("echo plain").stdout == "plain\n"
    finally:
        lab.down()
