"""A :class:`smartos_lab.lab.Strategy` that boots the Multiboot probe kernel (a test substrate,
not SmartOS) as a lab: a kernel with symbols for the gdb tests, booted directly like a
researcher's ``unix``.  The probe has no shell: commands in it fail with TransportError.
"""
from __future__ import annotations

from smartos_lab.errors import TransportError
from smartos_lab.machine.guest import BootResult
from smartos_lab.machine.spec import KernelBoot, MachineSpec

from .build import END_LINE, ensure_probe

BOOT_TIMEOUT = 120.0


class NoShell:
    """The probe's "shell": it has none."""

    transport = "none"

    def run(self, command: str, timeout: float = 60.0, *, via: str | None = None, on_output=None):
        raise TransportError(f"the Multiboot probe kernel has no shell (asked to run {command!r})")

    def close(self) -> None:
        pass


class ProbeStrategy:
    __test__ = False
    name = "multiboot-probe"

    def prepare(self, lab, config, steps) -> None:
        pass

    def spec(self, lab, config, accel: str) -> MachineSpec:
        return MachineSpec(name=config.name, memory_mib=64, cpus=1, accel=accel,
                           boot=KernelBoot(kernel=ensure_probe()))

    def console_factory(self):
        return None

    def boot(self, machine, lab, config, steps) -> BootResult:
        machine.console.expect_exact(END_LINE, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_TIMEOUT)
        return BootResult.READY

    def login(self, machine, lab, config, steps) -> NoShell:
        return NoShell()
