"""Two processes launching one lab name at the same instant: exactly one wins.

Found by probing: with a 0.5 s pause after ``RunDir.create`` the second launch
took the first one's run dir (no pid yet) for a dead lab's, removed it, and
returned "OK" with QMP connected to the first one's QEMU.  Here each process
pauses there the same way (the pause is patched in by the test script, not
the package); the loser must get :class:`LabInUse` and the winner's VM must
run on untouched.  The machine is the Linux test guest (a test substrate).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartos_lab.errors import LabNotFound
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.registry import our_qemu_processes, stop
from tests.guest.build import ensure_test_guest

pytestmark = pytest.mark.guest

REPO = Path(__file__).resolve().parents[2]
PAUSE_AFTER_CREATE = 0.5

RACER = """
import json, sys, time
from smartos_lab.errors import LabError
from smartos_lab.machine import rundir
from smartos_lab.machine.qemu import QemuMachine
from tests.guest.build import ensure_test_guest
from tests.guest.machines import guest_spec

name, pause = sys.argv[1], float(sys.argv[2])
create = rundir.RunDir.create.__func__

def slow_create(cls, *args, **kwargs):
    rd = create(cls, *args, **kwargs)
    time.sleep(pause)               # the window in which the race was lost
    return rd

rundir.RunDir.create = classmethod(slow_create)
spec = guest_spec(name, ensure_test_guest(), memory_mib=128)
print("ready", flush=True)
sys.stdin.readline()                # the test starts both racers at once, past their imports
try:
    m = QemuMachine.launch(spec)
except LabError as exc:
    print(json.dumps({"won": False, "error": type(exc).__name__, "message": str(exc)}), flush=True)
    sys.exit(0)
print(json.dumps({"won": True, "pid": m.pid, "status": m.qmp.status()}), flush=True)
sys.stdin.readline()                # hold the lab until the test has looked at it
m.shutdown()
"""


def test_two_launches_of_one_name_at_once_have_exactly_one_winner(tmp_path):
    ensure_test_guest()
    name = f"race-{os.getpid()}"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, name, str(PAUSE_AFTER_CREATE)],
                               cwd=REPO, env=dict(os.environ), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    try:
        assert [r.stdout.readline() for r in racers] == ["ready\n"] * 2
        for r in racers:                # go: both within a millisecond, however loaded the host
            r.stdin.write("\n")
            r.stdin.flush()
        results = [json.loads(r.stdout.readline() or '{"won": null}') for r in racers]
        assert sorted(r["won"] for r in results) == [False, True], results
        winner = next(r for r in results if r["won"])
        loser = next(r for r in results if not r["won"])
        assert loser["error"] == "LabInUse" and "being started by another process" in loser["message"]
        assert winner["status"] == "running"

        # the loser has exited; the winner's VM runs on, untouched, and is the only QEMU
        racers[[r["won"] for r in results].index(False)].wait(30)
        assert [p.pid for p in our_qemu_processes() if p.name == name] == [winner["pid"]]
        look = QemuMachine.attach(name, tool=True)
        try:
            assert (look.pid, look.qmp.status()) == (winner["pid"], "running")
        finally:
            look.detach()
    finally:
        for r in racers:
            if r.poll() is None:
                r.stdin.write("\n")
                r.stdin.flush()
        for r in racers:
            try:
                r.wait(60)
            except subprocess.TimeoutExpired:
                r.kill()
        try:
            stop(name, timeout=5)
        except LabNotFound:
            pass
