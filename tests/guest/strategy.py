"""A :class:`smartos_lab.lab.Strategy` for the Linux test guest (a test substrate, not SmartOS).

It lets the tests and benchmarks drive the real :class:`~smartos_lab.lab.Lab`
facade - launch, attach by name, commands over console and SSH, checkpoints,
down - on a guest that can be built here.  Nothing in it pretends to be SmartOS.
A lab's ``kernel_args`` go on the Linux command line; with
``debugger_standin.KERNEL_ARGS`` among them the boot stops in a stand-in for a
kernel debugger (tests/guest/debugger_standin.py: not kmdb).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator

from smartos_lab.lab import Lab, register_strategy
from smartos_lab.machine.disks import create_blank
from smartos_lab.machine.guest import BootResult, GuestShell
from smartos_lab.machine.shell import ConsoleShell, login
from smartos_lab.machine.spec import Disk, MachineSpec, Nic, PortForward
from smartos_lab.steps import Steps

from . import debugger_standin
from .build import LOGIN_PROMPT, TestGuest, ensure_test_guest
from .machines import guest_spec

BOOT_TIMEOUT = 180.0
DATA_DISK_SIZE = "1G"


class TestGuestStrategy:
    """Boot the test guest with one qcow2 data disk (so checkpoints work) and SSH forwarded."""

    __test__ = False
    name = "test-guest"

    def __init__(self, variant: str = "base", memory_mib: int = 384, ssh: bool = True,
                 guest: TestGuest | None = None):
        self.variant = variant
        self.memory_mib = memory_mib
        self.ssh = ssh
        self.guest = guest or ensure_test_guest(variant)

    def prepare(self, lab, config, steps: Steps) -> None:
        create_blank(lab.disks_dir / "data0.qcow2", DATA_DISK_SIZE, exist_ok=True)

    def spec(self, lab, config, accel: str) -> MachineSpec:
        forwards = (PortForward(guest_port=22, name="ssh"),) if self.ssh else ()
        guest = self.guest
        if config.kernel_args:
            guest = dataclasses.replace(guest, cmdline=f"{guest.cmdline} {config.kernel_args}")
        if debugger_standin.wanted(config.kernel_args):
            guest = dataclasses.replace(guest, initrd=debugger_standin.initrd_with_standin(
                guest.initrd, lab.file("initrd-debugger-standin.img")))
        return guest_spec(
            config.name, guest, memory_mib=self.memory_mib, cpus=1, accel=accel,
            disks=(Disk(lab.disks_dir / "data0.qcow2", interface="virtio", id="data0"),),
            nics=(Nic(model="virtio", forwards=forwards),))

    def console_factory(self):
        return debugger_standin.console

    def boot(self, machine, lab, config, steps: Steps) -> BootResult:
        steps.step("boot", "waiting for the test guest's login prompt")
        machine.console.expect_exact(LOGIN_PROMPT, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_TIMEOUT / 2)
        return BootResult.READY

    def login(self, machine, lab, config, steps: Steps) -> GuestShell:
        steps.step("login", "logging in as root on the console")
        relogin = functools.partial(login, machine.console, user="root",
                                    password=self.guest.root_password, timeout=60)
        for note in relogin():
            steps.info(note)
        shell = ConsoleShell(machine.console, relogin=relogin)
        shell.setup()
        guest = GuestShell(shell)
        port = machine.ports.get("ssh")
        if port:
            guest.enable_ssh("127.0.0.1", port, "root", lab.ssh_key, timeout=60)
        return guest


@contextlib.contextmanager
def booted_test_guest_lab(name: str) -> Iterator[Lab]:
    """A test-guest lab ``name`` for a test module: booted, yielded, stopped if still running."""
    register_strategy("test-guest", TestGuestStrategy)
    lab = Lab.up(name, strategy=TestGuestStrategy(), progress=False)
    try:
        yield lab
    finally:
        if lab.machine.alive():
            lab.down()
