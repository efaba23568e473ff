"""Machines for the integration tests: the Linux test guest (a test substrate, not SmartOS)
under :class:`smartos_lab.machine.qemu.QemuMachine`, and bare QEMU with no guest OS.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smartos_lab.machine.console import Console
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.shell import login
from smartos_lab.machine.spec import KernelBoot, MachineSpec, Nic, PortForward

from .build import READY_LINE, TestGuest, ensure_test_guest

GUEST_MEMORY_MIB = 384
BARE_MEMORY_MIB = 64
BOOT_TIMEOUT = 300.0         # launch to the ready line under TCG on a busy 2-core host
BOOT_IDLE_TIMEOUT = 120.0
LOGIN_TIMEOUT = 120.0


def guest_spec(name: str, guest: TestGuest, *, memory_mib: int = GUEST_MEMORY_MIB,
               **kw) -> MachineSpec:
    """A spec that boots ``guest`` directly (``-kernel``/``-initrd``); ``kw`` go to MachineSpec."""
    return MachineSpec(name=name, memory_mib=memory_mib,
                       boot=KernelBoot(guest.kernel, guest.cmdline, (str(guest.initrd),)), **kw)


def bare_spec(name: str, **kw) -> MachineSpec:
    """QEMU with no guest OS (SeaBIOS finds nothing to boot): cheap, for process and QMP tests."""
    return MachineSpec(name=name, memory_mib=BARE_MEMORY_MIB, **kw)


SSH_NICS = (Nic(forwards=(PortForward(22, name="ssh"),)),)


@dataclass
class BootedGuest:
    machine: QemuMachine
    guest: TestGuest
    boot_seconds: float          # launch to the ready line
    login_seconds: float

    @property
    def console(self) -> Console:
        return self.machine.console

    @property
    def serial_log(self) -> Path:
        return self.machine.serial_log


@contextmanager
def booted_guest(name: str, *, guest: TestGuest | None = None, ssh: bool = False,
                 serial_log: Path | None = None, **spec_kw) -> Iterator[BootedGuest]:
    """Boot the test guest (default: the base variant), log in as root on the console.

    ``ssh`` forwards guest port 22 to a free host port (``machine.ports["ssh"]``);
    ``spec_kw`` go to :func:`guest_spec`.  QEMU is always stopped at the end.
    """
    guest = guest or ensure_test_guest()
    spec = guest_spec(name, guest, nics=SSH_NICS if ssh else (), **spec_kw)
    started = time.monotonic()
    machine = QemuMachine.launch(spec, serial_log=serial_log)
    try:
        machine.console.expect_exact(READY_LINE, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_IDLE_TIMEOUT)
        booted = time.monotonic()
        login(machine.console, password=guest.root_password, timeout=LOGIN_TIMEOUT)
        yield BootedGuest(machine, guest, booted - started, time.monotonic() - booted)
    finally:
        machine.shutdown()
