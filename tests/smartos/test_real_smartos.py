"""Boot a real SmartOS image end to end (only when SMARTOS_LAB_IMAGE names one).

SMARTOS_LAB_IMAGE: a SmartOS USB image (.img/.img.gz), an ISO, a platform tarball
or a build's platform folder.  The first boot runs SmartOS's own setup unattended,
the lab reboots the guest, logs in as root, and the second boot must reach
the shell faster (no setup).  Under TCG (no usable KVM) this takes a long time.
"""
from __future__ import annotations

import os
import time

import pytest

from smartos_lab.lab import Lab
from smartos_lab.steps import StepEvent, StepKind
from tests.smartos.artifacts import keep_serial_log

pytestmark = [pytest.mark.smartos, pytest.mark.slow, pytest.mark.timeout(6 * 3600)]

SETUP_STEPS = ["pool", "dump_zvol", "zones_config", "config_dataset", "cores_dataset",
               "opt_dataset", "var_dataset", "swap_zvol"]


def test_first_boot_setup_login_and_a_faster_second_boot(tmp_path):
    image = os.environ["SMARTOS_LAB_IMAGE"]
    events: list[StepEvent] = []

    def progress(event: StepEvent) -> None:
        events.append(event)
        print(event.message, flush=True)

    started = time.monotonic()
    lab = Lab.up(name="smartos-real", image=image, progress=progress, labs_root=tmp_path)
    first = time.monotonic() - started
    try:
        names = [m.name for m in lab.strategy.milestones]
        assert "kernel" in names and "login" in names
        assert [n for n in names if n in SETUP_STEPS] == SETUP_STEPS
        assert names.count("kernel") >= 2                   # setup rebooted into a second boot
        assert (events[-1].kind, events[-1].message) == (StepKind.FINISHED, "lab smartos-real is ready")

        uname = lab.check("uname -v").stdout.strip()
        assert uname.startswith("joyent_"), uname
        pools = lab.check("zpool list -H -o name").stdout.split()
        assert "zones" in pools
        svcs = lab.sh("svcs -x", timeout=120)
        assert svcs.exit_status == 0, svcs.stdout
    finally:
        keep_serial_log(lab.serial_log, "real-first-boot")
        lab.down()

    started = time.monotonic()
    lab = Lab.up(name="smartos-real", progress=progress, labs_root=tmp_path)
    second = time.monotonic() - started
    try:
        names = [m.name for m in lab.strategy.milestones]
        assert not set(SETUP_STEPS) & set(names)
        assert lab.check("zpool list -H -o name").stdout.split().count("zones") == 1
        assert second < first, (first, second)
    finally:
        keep_serial_log(lab.serial_log, "real-second-boot")
        lab.destroy()
