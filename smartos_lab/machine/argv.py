"""Turn a :class:`MachineSpec` into a QEMU command line (pure: touches nothing)."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .accel import AccelChoice
from .rundir import RunDir, lab_name_arg
from .spec import Disk, DiskBoot, KernelBoot, MachineSpec, Nic, PortForward

AHCI_PORTS = 6              # q35's built-in ICH9 AHCI: buses ide.0 .. ide.5
_NIC_DEVICES = {"virtio": "virtio-net-pci", "e1000": "e1000"}

SERIAL_CHARDEV = "serial0"      # the serial console chardev (QMP query-chardev label)
GDB_CHARDEV = "gdb"             # QEMU's gdb stub chardev (a unix socket in the run dir)


def q(value: str | Path) -> str:
    """Escape a value for QEMU's ``key=value,...`` option syntax (a comma is written ``,,``)."""
    return str(value).replace(",", ",,")


def forward_key(fw: PortForward) -> str:
    """The name a forward goes by in ``host_ports`` and ``QemuMachine.ports``."""
    return fw.name or f"tcp/{fw.guest_port}"


def disk_node_id(disk: Disk, index: int) -> str:
    return disk.id or f"disk{index}"


def build_argv(spec: MachineSpec, *, qemu_binary: str, accel: AccelChoice, run_dir: RunDir,
               host_ports: dict[str, int], serial_log: Path | None = None) -> list[str]:
    """The full QEMU argv for ``spec``.

    QEMU starts paused (``-S``) with QMP on ``run_dir.qmp_socket`` (plus
    ``attach_socket`` for a second handle and ``control_socket`` for tools:
    a QMP socket serves one client at a time), the serial port on
    ``run_dir.console_socket`` (everything also logged to ``serial_log``),
    no window but a VGA device (so screendumps work).  ``spec.gdb`` adds
    QEMU's gdb stub on ``run_dir.gdb_socket`` (a unix socket, never TCP).  ``host_ports`` gives
    the host port of each forward by :func:`forward_key`; forwards with a
    fixed ``host_port`` may be left out.
    """
    if spec.memory_mib < 16:
        raise ConfigError(f"memory_mib={spec.memory_mib} is too small")
    if spec.cpus < 1:
        raise ConfigError(f"cpus={spec.cpus}: need at least 1")
    log = serial_log or run_dir.serial_log
    argv = [
        qemu_binary,
        "-name", lab_name_arg(spec.name),
        "-machine", spec.machine_type,
        "-accel", accel.accel,
        "-cpu", spec.cpu_model or ("host" if accel.accel == "kvm" else "max"),
        "-smp", str(spec.cpus),
        "-m", str(spec.memory_mib),
        "-nodefaults",
        "-display", "none",
        "-vga", "std",
        "-S",
        "-qmp", f"unix:{q(run_dir.qmp_socket)},server=on,wait=off",
        "-qmp", f"unix:{q(run_dir.attach_socket)},server=on,wait=off",
        "-qmp", f"unix:{q(run_dir.control_socket)},server=on,wait=off",
        "-chardev", (f"socket,id={SERIAL_CHARDEV},path={q(run_dir.console_socket)},server=on,"
                     f"wait=off,logfile={q(log)},logappend=on"),
        "-serial", f"chardev:{SERIAL_CHARDEV}",
        "-pidfile", str(run_dir.pidfile),
    ]
    if spec.no_reboot:
        argv.append("-no-reboot")
    if spec.gdb:
        argv += ["-chardev", f"socket,id={GDB_CHARDEV},path={q(run_dir.gdb_socket)},server=on,wait=off",
                 "-gdb", f"chardev:{GDB_CHARDEV}"]
    argv += _hotplug_ports(spec)
    argv += _boot_args(spec.boot)
    argv += _disk_args(spec)
    argv += _nic_args(spec.nics, host_ports)
    argv += list(spec.extra_args)
    return argv


def _hotplug_ports(spec: MachineSpec) -> list[str]:
    """Empty PCIe root ports: q35's root bus takes no hotplugged devices."""
    if not spec.machine_type.startswith("q35"):
        return []
    args: list[str] = []
    for i in range(spec.hotplug_slots):
        args += ["-device", f"pcie-root-port,id=hp{i},bus=pcie.0,chassis={i + 1}"]
    return args


def _boot_args(boot: DiskBoot | KernelBoot) -> list[str]:
    if isinstance(boot, DiskBoot):
        return []
    if not isinstance(boot, KernelBoot):
        raise ConfigError(f"unknown boot source {boot!r}")
    args = ["-kernel", str(boot.kernel)]
    if boot.cmdline:
        args += ["-append", boot.cmdline]
    if boot.modules:
        for module in boot.modules:
            if "," in module:
                raise ConfigError(
                    f"kernel module {module!r} contains a comma; QEMU's -initrd splits on commas")
            if not module.strip():
                raise ConfigError("empty kernel module entry")
        args += ["-initrd", ",".join(boot.modules)]
    return args


def _disk_args(spec: MachineSpec) -> list[str]:
    args: list[str] = []
    ahci_port = 0
    have_xhci = False
    disk_boot = isinstance(spec.boot, DiskBoot)
    seen: set[str] = set()
    for index, disk in enumerate(spec.disks):
        node = disk_node_id(disk, index)
        if node in seen:
            raise ConfigError(f"two disks share the id {node!r}")
        seen.add(node)
        if disk.media == "cdrom" and disk.interface not in ("ahci", "ide"):
            raise ConfigError(f"disk {node}: a cdrom must use interface 'ahci' or 'ide', "
                              f"not {disk.interface!r}")
        blockdev = (f"driver={q(disk.format)},node-name={node},"
                    f"file.driver=file,file.filename={q(disk.path)}")
        if disk.readonly or disk.media == "cdrom":
            blockdev += ",read-only=on"
        device = _device_for(disk, node)
        if disk.interface in ("ahci", "ide"):
            if ahci_port >= AHCI_PORTS:
                raise ConfigError(f"too many ahci/ide disks: q35 has {AHCI_PORTS} AHCI ports")
            if disk.readonly and disk.media == "disk":
                raise ConfigError(f"disk {node}: a read-only ahci/ide disk must be media='cdrom'")
            device += f",bus=ide.{ahci_port}"
            ahci_port += 1
        elif disk.interface == "usb":
            if not have_xhci:
                args += ["-device", "qemu-xhci,id=xhci"]
                have_xhci = True
            device += ",bus=xhci.0"
        if disk.serial:
            device += f",serial={q(disk.serial)}"
        elif disk.interface == "nvme":
            device += f",serial={node}"          # nvme requires one
        if disk_boot:
            device += f",bootindex={index}"
        args += ["-blockdev", blockdev, "-device", device]
    return args


def _device_for(disk: Disk, node: str) -> str:
    if disk.interface == "virtio":
        driver = "virtio-blk-pci"
    elif disk.interface in ("ahci", "ide"):
        driver = "ide-cd" if disk.media == "cdrom" else "ide-hd"
    elif disk.interface == "nvme":
        driver = "nvme"
    elif disk.interface == "usb":
        driver = "usb-storage"
    else:
        raise ConfigError(f"unknown disk interface {disk.interface!r}")
    return f"{driver},drive={node},id=dev-{node}"


def _nic_args(nics: tuple[Nic, ...], host_ports: dict[str, int]) -> list[str]:
    args: list[str] = []
    keys: set[str] = set()
    for i, nic in enumerate(nics):
        if nic.model not in _NIC_DEVICES:
            raise ConfigError(f"unknown NIC model {nic.model!r}: use one of {sorted(_NIC_DEVICES)}")
        netdev = f"user,id=net{i}"
        for fw in nic.forwards:
            key = forward_key(fw)
            if key in keys:
                raise ConfigError(f"two port forwards are both named {key!r}")
            keys.add(key)
            port = host_ports.get(key, fw.host_port)
            if not port:
                raise ConfigError(f"no host port chosen for forward {key!r}")
            if not (0 < port < 65536 and 0 < fw.guest_port < 65536):
                raise ConfigError(f"forward {key!r}: ports must be 1-65535")
            netdev += f",hostfwd=tcp:{fw.host_addr}:{port}-:{fw.guest_port}"
        device = f"{_NIC_DEVICES[nic.model]},netdev=net{i},id=nic{i}"
        if nic.mac:
            device += f",mac={nic.mac}"
        args += ["-netdev", netdev, "-device", device]
    return args
