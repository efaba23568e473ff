"""A typed description of one QEMU machine.

Pure data: :func:`smartos_lab.machine.argv.build_argv` turns a
:class:`MachineSpec` into a QEMU command line.  Nothing here touches the host.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DiskInterface = Literal["virtio", "ahci", "ide", "nvme", "usb"]
NicModel = Literal["virtio", "e1000"]
Accel = Literal["auto", "kvm", "tcg"]


@dataclass(frozen=True)
class PortForward:
    """Forward ``host_addr:host_port`` (TCP) to ``guest_port`` in the guest."""

    guest_port: int
    host_port: int = 0          # 0: pick a free port at launch
    host_addr: str = "127.0.0.1"
    name: str = ""              # e.g. "ssh"


@dataclass(frozen=True)
class Disk:
    """A disk attached to the guest.

    ``path`` is the file QEMU opens (for labs: a qcow2 overlay made by
    :mod:`smartos_lab.machine.disks`, never a pristine base image).
    ``readonly`` disks are opened read-only (e.g. an ISO).
    """

    path: Path
    interface: DiskInterface = "virtio"
    format: str = "qcow2"
    readonly: bool = False
    media: Literal["disk", "cdrom"] = "disk"
    serial: str = ""            # disk serial number seen by the guest
    id: str = ""                # QEMU node name; generated when empty


@dataclass(frozen=True)
class Nic:
    """A NIC on QEMU user-mode networking."""

    model: NicModel = "virtio"
    mac: str = ""
    forwards: tuple[PortForward, ...] = ()


@dataclass(frozen=True)
class DiskBoot:
    """Boot from the first bootable disk (BIOS)."""

    kind: Literal["disk"] = "disk"


@dataclass(frozen=True)
class KernelBoot:
    """Direct kernel boot: ``-kernel``, ``-append`` and Multiboot modules / initrd.

    ``modules`` are passed to ``-initrd`` comma-joined (each entry may carry
    Multiboot arguments after the path, e.g. ``"/p/boot_archive type=rootfs name=ramdisk"``);
    QEMU splits on commas, so paths must not contain them.
    """

    kernel: Path
    cmdline: str = ""
    modules: tuple[str, ...] = ()
    kind: Literal["kernel"] = "kernel"


BootSource = DiskBoot | KernelBoot


@dataclass(frozen=True)
class MachineSpec:
    """Everything needed to start one guest."""

    name: str
    memory_mib: int = 2048
    cpus: int = 1
    boot: BootSource = field(default_factory=DiskBoot)
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    accel: Accel = "auto"
    cpu_model: str = ""         # "" chooses per accelerator ("host" under KVM, "max" under TCG)
    machine_type: str = "q35"
    extra_args: tuple[str, ...] = ()   # appended verbatim (expert escape hatch)
    no_reboot: bool = True      # a guest reboot or crash ends QEMU so it is seen
    hotplug_slots: int = 2      # empty PCIe root ports (q35) for hotplugged virtio/nvme disks
    gdb: bool = False           # QEMU's gdb stub on the run dir's private gdb.sock (never TCP)
