"""BackgroundLoad over the serial console of the Linux test guest (busybox sh, a test substrate).

The console shell must come back at once after starting the background loop,
a second start must find it running, and stop must end it and its child.
"""
from __future__ import annotations

import os
import time

import pytest

from smartos_lab.machine.shell import ConsoleShell
from smartos_lab.toolkits.workload import BackgroundLoad
from tests.guest.machines import booted_guest

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def shell():
    with booted_guest(f"load-{os.getpid()}") as booted:
        sh = ConsoleShell(booted.console)
        sh.setup()
        yield sh


def test_one_loop_per_name_over_the_console_and_stop_ends_it(shell):
    load = BackgroundLoad(shell, "guest", "sleep 2", rounds=100, directory="/tmp")
    started = time.monotonic()
    assert load.start() is True
    assert time.monotonic() - started < 10          # the shell did not wait for the loop
    assert load.start() is False and load.running()
    loops = shell.check("ps | grep -c '[s]martos-lab-load-guest'").stdout.strip()
    assert loops == "1"
    assert load.stop() is True
    time.sleep(0.5)
    assert not load.running()
    assert shell.run("ps | grep -c '[s]leep 2'").stdout.strip() == "0"
