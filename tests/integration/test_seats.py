"""Workshop seats on one host, on the Linux test guest (a test substrate, not SmartOS).

Three seats cloned from a golden's checkpoint run at once on this 2-core
machine; reset puts one back on the checkpoint; admission control refuses a
fourth seat when (a small stand-in for) the host's available memory is short.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from smartos_lab import seats
from smartos_lab.errors import ConfigError, LabError
from smartos_lab.lab import Lab, LabDir, register_strategy
from smartos_lab.machine.registry import running_labs
from tests.guest.strategy import TestGuestStrategy

pytestmark = pytest.mark.guest

GOLDEN = f"sgold-{os.getpid()}"
PREFIX = f"s{os.getpid()}-"


def _strategy() -> TestGuestStrategy:
    return TestGuestStrategy(memory_mib=256)


@pytest.fixture(scope="module")
def golden():
    register_strategy("test-guest", _strategy)
    lab = Lab.up(GOLDEN, strategy=_strategy(), progress=False)
    lab.check("echo golden > /root/who")
    lab.checkpoint("ready")
    lab.down()
    yield lab.lab_dir.path
    for status in running_labs():
        if status.name.startswith(PREFIX):
            Lab.attach(status.name).down()


def test_seat_counts_of_0_or_10000_are_refused_and_nothing_is_made(golden):
    for count in (0, 10000):
        with pytest.raises(ConfigError, match=r"seat count must be a whole number from 1 to 500"):
            seats.create(golden, count, prefix=PREFIX, checkpoint="ready")
    assert seats.seats_of(golden) == []


def test_three_seats_start_from_the_checkpoint_on_this_host(golden):
    made = seats.create(golden, 3, prefix=PREFIX, checkpoint="ready")
    assert [m.name for m in made] == [f"{PREFIX}{i}" for i in (1, 2, 3)]
    started = seats.up(golden)
    assert sorted(s.name for s in started) == [m.name for m in made]
    assert all(s.resumed for s in started)
    for name in seats.seats_of(golden):
        lab = Lab.attach(name)
        assert lab.check("cat /root/who").stdout == "golden\n"
        lab.detach()
    rows = seats.status(golden)
    assert [r.state for r in rows] == ["running"] * 3
    assert all(r.ram_mib > 0 and r.last_activity for r in rows)


def test_status_on_the_command_line_has_one_line_per_seat(golden):
    out = subprocess.run([sys.executable, "-m", "smartos_lab.cli", "seats", "status", str(golden)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["SEAT", "STATE", "RAM", "CPU%"]
    assert [line.split()[1] for line in lines[1:]] == ["running"] * 3
    assert all(f"{GOLDEN}@ready" in line for line in lines[1:])


def test_reset_returns_every_seat_to_the_checkpoint_in_seconds(golden):
    seat = f"{PREFIX}1"
    lab = Lab.attach(seat)
    lab.check("echo changed > /root/who")
    lab.detach()
    started = time.monotonic()
    restarted = seats.reset(golden)
    seconds = time.monotonic() - started
    assert sorted(s.name for s in restarted) == seats.seats_of(golden)
    assert seconds < 60, f"reset took {seconds:.1f} s"
    lab = Lab.attach(seat)
    assert lab.check("cat /root/who").stdout == "golden\n"
    lab.detach()


def test_admission_refuses_a_fourth_seat_that_would_overcommit(golden, monkeypatch):
    seats.create(golden, 1, prefix=f"{PREFIX}x", checkpoint="ready")
    monkeypatch.setenv("SMARTOS_LAB_MEMAVAILABLE_MIB", "300")
    with pytest.raises(LabError, match=r"admission refused: starting 1 seat\(s\) needs \d+ MiB.*"
                                       r"allows 300 MiB.*room for 0"):
        seats.up(golden)
    assert f"{PREFIX}x1" not in {s.name for s in running_labs()}


def test_destroy_removes_every_seat_and_frees_the_golden(golden):
    names = seats.destroy(golden)
    assert len(names) == 4
    assert not any(LabDir(n).path.exists() for n in names)
    assert not any(s.name in names for s in running_labs())
    assert seats.seats_of(golden) == []
