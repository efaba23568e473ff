"""``-kd`` on a real SmartOS (only when SMARTOS_LAB_IMAGE names an image).

The researcher's loop: boot with ``kernel_args="-kd"``; ``Lab.up`` returns the
lab stopped in kmdb at boot (QEMU running, ``ps`` says ``kmdb``, ``lab.sh``
refuses at once); a breakpoint on ``exec_common`` (genunix, loaded before kmdb
takes over) is set there; ``lab.resume()`` continues, the boot stops again at
the breakpoint (the first exec), ``:z`` deletes it, and resuming goes on to a
logged-in shell.  ``-kd`` stops every boot, so the reboot after first-boot
setup stops in kmdb once more.  Under TCG this takes hours.
"""
from __future__ import annotations

import os
import time

import pytest

from smartos_lab.errors import StoppedInKmdb
from smartos_lab.lab import Lab
from smartos_lab.machine.registry import running_labs
from smartos_lab.steps import StepEvent, StepKind
from tests.smartos.artifacts import keep_serial_log

pytestmark = [pytest.mark.smartos, pytest.mark.slow, pytest.mark.timeout(8 * 3600)]

NAME = "smartos-kd"


def test_kd_stops_the_boot_in_kmdb_and_resume_boots_and_logs_in(tmp_path):
    events: list[StepEvent] = []

    def progress(event: StepEvent) -> None:
        events.append(event)
        print(event.message, flush=True)

    lab = Lab.up(NAME, image=os.environ["SMARTOS_LAB_IMAGE"], boot="direct", kernel_args="-kd",
                 progress=progress, labs_root=tmp_path)
    try:
        assert lab.machine.alive() and lab.stopped_at_boot is not None
        assert StepKind.FAILED not in [e.kind for e in events]
        assert events[-1].kind is StepKind.FINISHED and "stopped in kmdb" in events[-1].message
        assert lab.status()["state"] == "kmdb"
        assert next(s.state for s in running_labs() if s.name == NAME) == "kmdb"
        started = time.monotonic()
        with pytest.raises(StoppedInKmdb):
            lab.sh("uname -v")
        assert time.monotonic() - started < 2.0

        lab.kmdb.set_breakpoint("exec_common")           # kmdb printed nothing: it is set
        lab.resume()
        assert lab.stopped_at_boot is not None, "the breakpoint stops the boot again"
        assert any("exec_common" in frame.function for frame in lab.kmdb.stack()[:2])
        lab.kmdb.run(":z")                                  # delete every breakpoint
        for _ in range(3):                                  # setup's reboot stops in kmdb again
            if lab.stopped_at_boot is None:
                break
            lab.resume()
        assert lab.stopped_at_boot is None
        assert lab.check("uname -v").stdout.startswith("joyent_")
        assert lab.status()["state"] == "running"
    finally:
        keep_serial_log(lab.serial_log, NAME)
        lab.destroy()
