"""Machine specs that boot SmartOS, and the timeouts that go with them (pure, except
:func:`prepare_usb_image`, which writes one per-lab file).

Two ways in:

- **Direct platform boot** (:func:`direct_boot_spec`): QEMU loads ``unix`` as a
  Multiboot kernel and passes ``boot_archive`` and ``answers.json`` as Multiboot
  modules.  The module strings follow the loader/iPXE lines SmartOS uses
  (``<file> type=rootfs name=ramdisk``, ``<file> type=hash name=ramdisk``,
  ``<file> type=file name=<name>``; smartos-docs ``docs/pxe-booting-smartos.md``
  and ``docs/non-interactive-install.md``); a ``type=file`` module named
  ``answers.json`` appears in the guest as ``/system/boot/answers.json``,
  where setup looks for it (``smartos_prompt_config.sh:1092-1093``).  QEMU
  (``hw/i386/multiboot.c``) splits ``-initrd`` at commas, takes each module's
  file name up to the first space, and passes the kernel command line as
  ``<kernel path> <-append text>``, so paths may contain neither commas nor
  spaces.  krtld needs the kernel path to contain
  ``/platform/i86pc/kernel/amd64/unix`` (smartos-docs ``pxe-booting-smartos.md``):
  illumos ``fakebop.c`` ``build_boot_properties`` sets ``whoami`` from the first
  ``/platform/`` of the command line's first word, which krtld then opens, so no
  directory above may be named ``platform``; and dboot (``dboot_startkern.c``
  ``startup_kernel``) panics if the command line contains ``multiboot``.
  What QEMU hands the kernel is checked with a Multiboot probe kernel
  (``tests/integration/test_direct_boot_multiboot.py``); that SmartOS's ``unix``
  then boots is UNVERIFIED here.
- **USB image boot** (:func:`prepare_usb_image` + :func:`usb_boot_spec`): a
  per-lab copy of the USB image, whose ``SMARTOSBOOT`` FAT partition gets
  ``/boot/loader.conf.local`` (read after ``loader.conf``: illumos
  ``usr/src/boot/forth/loader.conf``, ``loader_conf_files``) with
  ``os_console="ttya"`` so the kernel and setup use the serial port (the
  shipped ``loader.conf`` says ``os_console="text"``: smartos-live
  ``tools/build_boot_image`` lines 190-201), and ``/private/answers.json``,
  which setup finds on the mounted boot key (``smartos_prompt_config.sh:1090``).

Hardware: q35 and SeaBIOS, a virtio zones disk, SSH forwarded from
127.0.0.1.  Under TCG the settings smartos-docs ``smartos-as-a-utm-guest.md``
reports working (CPU model Haswell, e1000 NIC); under KVM the host CPU and
a virtio NIC.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..machine.spec import Disk, DiskBoot, KernelBoot, MachineSpec, Nic, PortForward

if TYPE_CHECKING:
    from ..images.local import LocalImage

MIB = 1 << 20
GIB = 1 << 30
MIN_MEMORY_MIB = 2048
DEFAULT_MEMORY_MIB = 4096
KERNEL_SUFFIX = "platform/i86pc/kernel/amd64/unix"
SERIAL_MODE = "115200,8,n,1,-"          # ttya-mode in the shipped loader.conf
ANSWERS_MODULE_NAME = "answers.json"    # -> /system/boot/answers.json in the guest
TCG_SLOWDOWN = 5.0                      # how much longer every wait is under TCG


# --- timeouts ---------------------------------------------------------------------
@dataclass(frozen=True)
class BootTimeouts:
    """How long SmartOS may take, per accelerator.

    ``idle``: the longest the console may stay silent before the boot counts
    as stuck (the boot-archive load and ``Initializing var dataset...`` are
    the long quiet stretches).  ``first_boot``: cap on boot + setup;
    ``boot``: cap on a later boot to the login prompt; ``login``: cap on
    logging in and preparing the shell.  ``answer_delay``: pause after a
    prompt before typing (setup holds input typed within a millisecond of a
    prompt: /work/shared/smartos-facts.md section 3).
    """

    idle: float
    first_boot: float
    boot: float
    login: float
    answer_delay: float = 0.1

    @classmethod
    def for_accel(cls, accel: str, scale: float = 1.0) -> BootTimeouts:
        """Generous caps for ``kvm``; ``tcg`` (full emulation) gets :data:`TCG_SLOWDOWN` times
        more; ``scale`` multiplies every limit (for slow or busy hosts)."""
        if accel not in ("kvm", "tcg"):
            raise ConfigError(f"unknown accelerator {accel!r}: use 'kvm' or 'tcg'")
        if not scale > 0:
            raise ConfigError(f"timeout scale must be positive, got {scale!r}")
        f = (1.0 if accel == "kvm" else TCG_SLOWDOWN) * scale
        return cls(idle=240.0 * f, first_boot=1800.0 * f, boot=900.0 * f, login=120.0 * f,
                   answer_delay=0.1 if accel == "kvm" else 0.3)


# --- disks ------------------------------------------------------------------------
def zones_disk_size(memory_mib: int) -> int:
    """Bytes for the ``zones`` pool disk of a guest with ``memory_mib`` of RAM.

    Setup makes a swap zvol as large as RAM (``smartos_prompt_config.sh:952-979``)
    and a dump zvol of twice ``dumpadm -e``'s estimate, at least 1 GiB
    (lines 859-890); both are reserved up front.  Budget RAM for swap, 2 x RAM
    for dump, plus 10 GiB for ``/var``, ``/opt``, cores and zone images; at
    least 20 GiB.  The qcow2 file is thin, so unused space costs nothing.
    """
    if memory_mib < MIN_MEMORY_MIB:
        raise ConfigError(f"SmartOS needs at least {MIN_MEMORY_MIB} MiB of RAM, got {memory_mib}")
    ram_gib = math.ceil(memory_mib * MIB / GIB)
    return max(20, 3 * ram_gib + 10) * GIB


# --- hardware per accelerator -------------------------------------------------------
@dataclass(frozen=True)
class Hardware:
    cpu_model: str      # "" = QEMU's choice per accelerator ("host" under KVM)
    nic_model: str


def hardware_for(accel: str) -> Hardware:
    """TCG: Haswell + e1000 (smartos-docs ``smartos-as-a-utm-guest.md``); KVM: host CPU + virtio."""
    if accel == "tcg":
        return Hardware(cpu_model="Haswell", nic_model="e1000")
    if accel == "kvm":
        return Hardware(cpu_model="", nic_model="virtio")
    raise ConfigError(f"unknown accelerator {accel!r}: use 'kvm' or 'tcg'")


def _common(name: str, *, accel: str, memory_mib: int, cpus: int, ssh_host_port: int,
            nic_model: str | None) -> dict:
    if memory_mib < MIN_MEMORY_MIB:
        raise ConfigError(f"SmartOS needs at least {MIN_MEMORY_MIB} MiB of RAM, got {memory_mib}")
    hw = hardware_for(accel)
    ssh = PortForward(guest_port=22, host_port=ssh_host_port, host_addr="127.0.0.1", name="ssh")
    return dict(name=name, memory_mib=memory_mib, cpus=cpus, accel=accel,
                cpu_model=hw.cpu_model, machine_type="q35",
                nics=(Nic(model=nic_model or hw.nic_model, forwards=(ssh,)),), no_reboot=True)


def _zones(disks: Sequence[Path]) -> tuple[Disk, ...]:
    if not disks:
        raise ConfigError("SmartOS needs at least one disk for its zones pool")
    return tuple(Disk(path=Path(p), interface="virtio", format="qcow2", id=f"zones{i}",
                      serial=f"zones{i}") for i, p in enumerate(disks))


# --- direct platform boot ----------------------------------------------------------------
def kernel_cmdline(console: str = "ttya", properties: dict[str, str] | None = None) -> str:
    """``-B smartos=true,console=ttya,ttya-mode="115200,8,n,1,-"`` plus ``properties``.

    The same boot properties SmartOS's iPXE menus pass (smartos-docs
    ``pxe-booting-smartos.md``); the mode value is quoted because it holds commas.
    """
    if console not in ("ttya", "ttyb", "ttyc", "ttyd"):
        raise ConfigError(f"console {console!r}: use ttya..ttyd (a serial port)")
    props = [("smartos", "true"), ("console", console), (f"{console}-mode", f'"{SERIAL_MODE}"')]
    for key, value in (properties or {}).items():
        if not key or any(c in key for c in ",= \"") or any(c in value for c in ', "'):
            raise ConfigError(f"boot property {key}={value!r}: no commas, spaces or quotes")
        props.append((key, value))
    return "-B " + ",".join(f"{k}={v}" for k, v in props)


def _module_path(path: Path, what: str) -> str:
    text = str(Path(path).absolute())
    if "," in text or any(c.isspace() for c in text):
        raise ConfigError(f"{what} path {text!r} contains a comma or a space; QEMU's Multiboot "
                          "loader cannot pass it (move the file)")
    if not Path(path).is_file():
        raise ConfigError(f"{what} {text} does not exist")
    return text


def direct_boot(unix: Path, boot_archive: Path, answers_file: Path | None = None, *,
                console: str = "ttya", properties: dict[str, str] | None = None,
                flags: str = "") -> KernelBoot:
    """The :class:`KernelBoot` for a platform's ``unix`` and ``boot_archive`` (+ answers).

    ``flags`` are kernel flags put before ``-B``, e.g. ``"-kv"`` (load kmdb, verbose boot).
    """
    kernel = _module_path(unix, "kernel")
    if not kernel.endswith("/" + KERNEL_SUFFIX):
        raise ConfigError(f"kernel {kernel} must be at <dir>/{KERNEL_SUFFIX}: krtld finds its "
                          "modules from that path (rename platform-<TS>/ to platform/)")
    if kernel.find("/platform/") != len(kernel) - len(KERNEL_SUFFIX) - 1:
        raise ConfigError(f"kernel {kernel}: a directory above the platform is also named "
                          "'platform'; the kernel takes its own name from the first "
                          "'/platform/' in its path and would not find itself (move the platform)")
    modules = [f"{_module_path(boot_archive, 'boot archive')} type=rootfs name=ramdisk"]
    hash_file = Path(boot_archive).with_name(Path(boot_archive).name + ".hash")
    if hash_file.is_file():
        modules.append(f"{_module_path(hash_file, 'boot archive hash')} type=hash name=ramdisk")
    if answers_file is not None:
        modules.append(f"{_module_path(answers_file, 'answers file')} "
                       f"type=file name={ANSWERS_MODULE_NAME}")
    cmdline = kernel_cmdline(console, properties)
    if flags:
        if not all(word.startswith("-") and len(word) > 1 for word in flags.split()):
            raise ConfigError(f"kernel flags {flags!r}: give options such as '-kv' (each word "
                              "starting with '-')")
        cmdline = f"{' '.join(flags.split())} {cmdline}"
    if "multiboot" in f"{kernel} {cmdline}":
        raise ConfigError(f"the kernel command line '{kernel} {cmdline}' contains 'multiboot': "
                          "dboot refuses to boot then (move the platform or rename the lab)")
    return KernelBoot(kernel=Path(kernel), cmdline=cmdline, modules=tuple(modules))


def direct_boot_spec(name: str, *, unix: Path, boot_archive: Path, zones_disks: Sequence[Path],
                     accel: str, answers_file: Path | None = None,
                     memory_mib: int = DEFAULT_MEMORY_MIB, cpus: int = 2, ssh_host_port: int = 0,
                     nic_model: str | None = None, properties: dict[str, str] | None = None,
                     flags: str = "") -> MachineSpec:
    """A machine booting a SmartOS platform directly (no loader, no boot disk).

    ``accel`` is the accelerator QEMU will use (``kvm`` or ``tcg``, from
    :func:`smartos_lab.machine.accel.detect_accel`): it picks CPU and NIC models.
    """
    return MachineSpec(boot=direct_boot(unix, boot_archive, answers_file, properties=properties,
                                        flags=flags),
                       disks=_zones(zones_disks),
                       **_common(name, accel=accel, memory_mib=memory_mib, cpus=cpus,
                                 ssh_host_port=ssh_host_port, nic_model=nic_model))


# --- USB image boot -------------------------------------------------------------------------
def loader_conf_local(*, os_console: str = "ttya", autoboot_delay: int = 2) -> str:
    """``/boot/loader.conf.local`` for a lab: kernel console on the serial port, short menu wait.

    ``autoboot_delay`` is the seconds the loader menu ("Welcome to SmartOS",
    illumos ``usr/src/boot/forth/menu.4th``) counts down before booting.
    """
    if os_console not in ("ttya", "ttyb", "ttyc", "ttyd", "text"):
        raise ConfigError(f"os_console {os_console!r}: use ttya..ttyd or text")
    if not 0 <= autoboot_delay <= 60:
        raise ConfigError("autoboot_delay must be between 0 and 60 seconds")
    return (f'os_console="{os_console}"\n'
            f'autoboot_delay="{autoboot_delay}"\n')


def prepare_usb_image(source: Path, dest: Path, *, answers_json: str | None,
                      autoboot_delay: int = 2, image: LocalImage | None = None) -> Path:
    """Make the lab's own copy of a USB image at ``dest`` and configure it for the lab.

    ``source`` (raw ``.img`` or ``.img.gz``) is only read: a gzipped image is
    decompressed straight into ``dest``, a raw one copied (reflink or sparse).
    The copy is made private (0600: it will hold the root password), then
    ``/boot/loader.conf.local`` and ``/private/answers.json`` are written into
    its ``root`` (``SMARTOSBOOT``) partition with mtools.  An existing ``dest``
    is reused and rewritten.  ``image``: ``source`` already identified.
    """
    from ..images.fat import fat_label, fat_write
    from ..images.gpt import find_partition
    from ..images.labcopy import copy_for_lab
    from ..images.local import identify

    source, dest = Path(source), Path(dest)
    if dest.resolve() == source.resolve():
        raise ConfigError(f"refusing to edit the original image {source}: give a per-lab path")
    if not dest.exists():
        image = image or identify(source)
        if image.kind != "usb":
            raise ConfigError(f"{source} is a {image.kind} image, not a USB image")
        if image.compressed:
            from ..images.decompress import gunzip
            gunzip(source, dest)
        else:
            copy_for_lab(source, dest)
    dest.chmod(0o600)
    root = find_partition(dest, "root")
    label = fat_label(dest, root.offset_bytes)
    if label.upper() != "SMARTOSBOOT":
        raise ConfigError(f"{dest}: the root partition is labelled {label!r}, not SMARTOSBOOT; "
                          "this is not a SmartOS USB image")
    fat_write(dest, root.offset_bytes, "/boot/loader.conf.local",
              loader_conf_local(autoboot_delay=autoboot_delay).encode())
    if answers_json is not None:
        fat_write(dest, root.offset_bytes, "/private/answers.json", answers_json.encode())
    return dest


def usb_boot_spec(name: str, *, usb_image: Path, zones_disks: Sequence[Path], accel: str,
                  memory_mib: int = DEFAULT_MEMORY_MIB, cpus: int = 2, ssh_host_port: int = 0,
                  nic_model: str | None = None, usb_interface: str = "virtio") -> MachineSpec:
    """A machine booting a prepared USB image copy (BIOS -> loader -> SmartOS).

    The image is the first disk (booted first).  Setup leaves it out of the
    ``zones`` pool because of its ``SMARTOSBOOT`` label
    (``smartos_prompt_config.sh:754-774``), whatever its interface.
    """
    fmt = "qcow2" if Path(usb_image).suffix == ".qcow2" else "raw"
    usb = Disk(path=Path(usb_image), interface=usb_interface, format=fmt, id="usbkey")
    return MachineSpec(boot=DiskBoot(), disks=(usb,) + _zones(zones_disks),
                       **_common(name, accel=accel, memory_mib=memory_mib, cpus=cpus,
                                 ssh_host_port=ssh_host_port, nic_model=nic_model))
