"""An ISO's unix and boot_archive, copied out by SmartOSStrategy.prepare, reach the kernel.

The ISO is built here in the layout of a SmartOS ISO (tests/images_support/isos.py),
but its ``unix`` is NOT SmartOS: it is the Multiboot probe kernel of
``tests/multiboot_probe/`` (a test substrate, see test_direct_boot_multiboot.py), and
``boot_archive`` / ``boot_archive.hash`` are a small test file and its SHA-1.  The lab
is prepared by :class:`SmartOSStrategy` exactly as for a user's ISO (``boot="auto"``),
its :class:`MachineSpec` comes from ``SmartOSStrategy.spec`` and runs under
:meth:`QemuMachine.launch` with TCG.  The probe prints what QEMU handed it.

What this proves: an ISO is booted directly, with the files read out of the ISO
intact (same bytes and sizes as put in) and passed as the rootfs/hash/answers.json
modules on the command line dboot parses.  Not that SmartOS boots from an ISO.
"""
from __future__ import annotations

import hashlib
import os

import pytest

from smartos_lab.lab import LabConfig, LabDir
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.spec import KernelBoot
from smartos_lab.smartos.boot import MIN_MEMORY_MIB
from smartos_lab.smartos.bringup import SmartOSStrategy, state_of
from smartos_lab.steps import Steps
from tests.images_support.isos import TS, make_smartos_test_iso
from tests.integration.test_direct_boot_multiboot import (
    BOOT_TIMEOUT,
    MULTIBOOT_MAGIC,
    dboot_module,
    parse_report,
)
from tests.multiboot_probe.build import END_LINE, ensure_probe

BOOT_ARCHIVE = b"boot_archive test file in an ISO for the Multiboot probe (not SmartOS)\n" * 200


@pytest.mark.guest
def test_a_lab_from_an_iso_boots_the_unix_and_modules_read_out_of_it(tmp_path):
    sha1 = (hashlib.sha1(BOOT_ARCHIVE).hexdigest() + "\n").encode()
    iso = make_smartos_test_iso(tmp_path / "smartos.iso", unix=ensure_probe().read_bytes(),
                                boot_archive=BOOT_ARCHIVE, boot_archive_hash=sha1)

    name = f"isoprobe-{os.getpid()}"
    lab = LabDir(name, tmp_path / "labs")
    config = LabConfig(name=name, image=str(iso), boot="auto", memory_mib=MIN_MEMORY_MIB, cpus=1)
    strategy = SmartOSStrategy()
    strategy.prepare(lab, config, Steps("test"))
    assert state_of(config).boot_path == "direct" and config.release == TS
    spec = strategy.spec(lab, config, "tcg")
    assert isinstance(spec.boot, KernelBoot)

    machine = QemuMachine.launch(spec)
    try:
        machine.console.expect_exact(END_LINE, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_TIMEOUT)
        report = parse_report(machine.console.tail(1 << 16))
    finally:
        machine.shutdown()

    platform = lab.file("pi") / "platform"
    assert report.magic == MULTIBOOT_MAGIC           # the probe read out of the ISO ran
    assert report.cmdline.split()[0] == str(platform / "i86pc/kernel/amd64/unix")
    assert [m.cmdline.split()[0] for m in report.modules] == [
        str(platform / "i86pc/amd64/boot_archive"), str(platform / "i86pc/amd64/boot_archive.hash"),
        str(lab.file("answers.json"))]
    assert [dboot_module(m.cmdline) for m in report.modules] == [
        ("ramdisk", "rootfs"), ("ramdisk", "hash"), ("answers.json", "file")]
    expected = (BOOT_ARCHIVE, sha1, lab.file("answers.json").read_bytes())
    for module, data in zip(report.modules, expected, strict=True):
        assert module.end - module.start == len(data), module.cmdline
        assert module.head == data[:16], module.cmdline

