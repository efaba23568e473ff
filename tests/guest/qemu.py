"""QEMU command lines for booting the test guest directly (no smartos_lab.machine)."""
from __future__ import annotations

import socket
from pathlib import Path

from .build import TestGuest


def qemu_argv(guest: TestGuest, *, ssh_port: int | None = None, disks: tuple[Path, ...] = (),
              memory_mb: int = 512, cmdline: str | None = None) -> list[str]:
    """TCG, serial console on stdio, virtio NIC (user net, optional SSH forward), virtio disks."""
    netdev = "user,id=n0" + (f",hostfwd=tcp:127.0.0.1:{ssh_port}-:22" if ssh_port else "")
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mb),
        "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
        "-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
        "-append", cmdline or guest.cmdline,
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=",   # no iPXE ROM
        "-device", "virtio-rng-pci",
    ]
    for i, disk in enumerate(disks):
        argv += ["-drive", f"file={disk},if=none,id=d{i},format=raw",
                 "-device", f"virtio-blk-pci,drive=d{i}"]
    return argv


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
