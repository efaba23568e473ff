"""QEMU's side of the SmartOS direct boot, checked with a Multiboot probe kernel.

The kernel booted here is NOT SmartOS.  It is the probe built from
``tests/multiboot_probe/`` (a test substrate), copied to
``<tmp>/pi/platform/i86pc/kernel/amd64/unix`` only because that is the path
:func:`smartos_lab.smartos.boot.direct_boot` requires.  Like illumos's amd64
``unix`` it is an ELF64 file whose Multiboot-1 header sets the a.out-kludge flag
(0x00010003) and asks for the whole file to be loaded, so QEMU takes the same
loader path.  ``boot_archive``, ``boot_archive.hash`` (the SHA-1 of the fake
archive) and ``answers.json`` (from :class:`SetupAnswers`) are small files with
known content.  The machine comes from :func:`direct_boot_spec` called the way
``SmartOSStrategy.spec`` calls it (zones disk from ``create_blank``) and runs
under :meth:`QemuMachine.launch` with TCG.  The probe prints on COM1 what QEMU
handed it: EAX, the Multiboot info flags, the command line, and per module its
command line, start, end and first 16 bytes.

What illumos expects (TritonDataCenter/illumos-joyent):

- ``usr/src/uts/i86pc/dboot/dboot_startkern.c``: ``dboot_loader_init`` accepts
  EAX = 0x2BADB002 (Multiboot 1) and takes ``load_addr`` from the a.out-kludge
  header; ``dboot_loader_cmdline`` reads ``mbi->cmdline`` when flag bit 2 is set;
  ``startup_kernel`` panics if the command line contains ``multiboot``;
  ``process_module`` splits each module string at white space: the first word
  is the module's name, then ``name=<n>`` renames it and ``type=`` takes
  ``rootfs``, ``hash``, ``file`` (the default), ``environment`` or
  ``console-font``; ``bm_size = mod_end - mod_start``;
  ``assign_module_hashes`` gives a module the ``type=hash`` module of the same
  name, whose first 40 bytes ``check_images`` compares with the SHA-1 of those
  bytes; ``dboot_process_mmap`` needs the memory map (flag bit 6) or
  mem_lower/upper (bit 0).
- ``usr/src/uts/i86pc/os/fakebop.c`` ``build_boot_properties``: the first word
  of the command line is ``boot-file``; ``whoami`` (which krtld opens, see
  ``usr/src/uts/common/krtld/kobj.c`` ``kobj_init``) is that word from its first
  ``/platform/``; everything else except `` -B a=b,...`` (values may be quoted)
  becomes ``boot-args`` (the flags); ``type=file`` modules become
  ``module-name-<i>`` properties carrying their ``name=``.

What this proves: QEMU 7.x, given the argv our code builds, loads an ELF64
a.out-kludge kernel, enters it with the Multiboot magic, gives it the command
line ``<kernel path> [flags] -B smartos=true,console=ttya,ttya-mode="..."`` and
the modules in our order, with the command lines dboot parses into
rootfs/hash/file modules named ramdisk/ramdisk/answers.json, and with the exact
bytes and sizes of our files.  And that without the a.out kludge QEMU refuses
such a kernel (the header flag is what makes it load).

What it does not prove: that SmartOS's ``unix`` boots under QEMU (dboot's page
tables and 64-bit switch, krtld, the boot archive, setup); no SmartOS image is
available here.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError, QemuExited
from smartos_lab.machine.disks import create_blank
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.smartos.answers import SetupAnswers, write_secret
from smartos_lab.smartos.boot import (
    KERNEL_SUFFIX,
    MIN_MEMORY_MIB,
    direct_boot_spec,
    zones_disk_size,
)
from tests.multiboot_probe.build import END_LINE, FLAGS_AOUT_KLUDGE, ensure_probe

BOOT_TIMEOUT = 120.0         # SeaBIOS + the probe under TCG take a few seconds
BOOT_PROPERTIES = '-B smartos=true,console=ttya,ttya-mode="115200,8,n,1,-"'
MULTIBOOT_MAGIC = 0x2BADB002
INFO_MEMORY, INFO_CMDLINE, INFO_MODS, INFO_MMAP = 1 << 0, 1 << 2, 1 << 3, 1 << 6
PAGE = 4096
BOOT_ARCHIVE = b"fake boot_archive for the Multiboot probe (a test file, not SmartOS)\n" * 300


# --- what the probe reports ----------------------------------------------------------
@dataclass(frozen=True)
class ProbeModule:
    cmdline: str
    start: int
    end: int
    head: bytes


@dataclass(frozen=True)
class ProbeReport:
    magic: int
    info_flags: int
    cmdline: str | None
    modules: tuple[ProbeModule, ...]


def parse_report(text: str) -> ProbeReport:
    """The probe's ``MBPROBE`` lines (probe.s) as a :class:`ProbeReport`."""
    lines = [line.strip("\r") for line in text.splitlines() if line.startswith("MBPROBE ")]
    assert lines.count("MBPROBE BEGIN") == 1 and lines[-1] == END_LINE, lines
    fields: dict[str, str] = {}
    ranges: dict[int, tuple[int, int, bytes]] = {}
    cmdlines: dict[int, str] = {}
    for line in lines:
        if m := re.fullmatch(r"MBPROBE mod (\d+) start (0x[0-9A-F]{8}) end (0x[0-9A-F]{8}) "
                             r"head ([0-9A-F]*)", line):
            ranges[int(m[1])] = (int(m[2], 16), int(m[3], 16), bytes.fromhex(m[4]))
        elif m := re.fullmatch(r"MBPROBE mod (\d+) cmdline (.*)", line):
            cmdlines[int(m[1])] = m[2]
        elif m := re.fullmatch(r"MBPROBE (magic|info-flags|cmdline|mods) (.*)", line):
            fields[m[1]] = m[2]
    count = int(fields.get("mods", "0"))
    assert sorted(ranges) == sorted(cmdlines) == list(range(count)), lines
    modules = tuple(ProbeModule(cmdlines[i], *ranges[i]) for i in range(count))
    return ProbeReport(magic=int(fields["magic"], 16),
                       info_flags=int(fields.get("info-flags", "0"), 16),
                       cmdline=fields.get("cmdline"), modules=modules)


def dboot_module(cmdline: str) -> tuple[str, str]:
    """(name, type) as dboot's ``process_module`` derives them from a module string."""
    words = cmdline.split()
    name, kind = words[0], "file"
    for word in words[1:]:
        if word.startswith("name=") and len(word) > 5:
            name = word[5:]
        elif word.startswith("type=") and len(word) > 5:
            kind = word[5:] if word[5:] in ("rootfs", "hash", "environment",
                                             "console-font") else "file"
    return name, kind


# --- the fake platform and the boot -------------------------------------------------------
@dataclass(frozen=True)
class FakePlatform:
    unix: Path                # the probe kernel, under the name direct_boot requires
    boot_archive: Path
    hash_file: Path
    answers: Path
    disks: Path               # each boot gets its own blank zones disk here


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> FakePlatform:
    root = tmp_path_factory.mktemp("direct")
    unix = root / "pi" / KERNEL_SUFFIX
    archive = root / "pi/platform/i86pc/amd64/boot_archive"
    for path in (unix, archive):
        path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ensure_probe(), unix)
    archive.write_bytes(BOOT_ARCHIVE)
    hash_file = archive.with_name("boot_archive.hash")
    hash_file.write_text(hashlib.sha1(BOOT_ARCHIVE).hexdigest() + "\n")
    answers = write_secret(root / "answers.json",
                           SetupAnswers(root_password="probe-pw", hostname="probe").to_json())
    return FakePlatform(unix, archive, hash_file, answers, root / "disks")


@contextmanager
def probe_boot(name: str, platform: FakePlatform, *, unix: Path | None = None,
               flags: str = "") -> Iterator[ProbeReport]:
    """Boot the probe as SmartOSStrategy.spec would boot a platform; QEMU always stops."""
    zones = create_blank(platform.disks / f"{name}.qcow2", zones_disk_size(MIN_MEMORY_MIB))
    spec = direct_boot_spec(name, unix=unix or platform.unix, boot_archive=platform.boot_archive,
                            answers_file=platform.answers, zones_disks=[zones],
                            accel="tcg", memory_mib=MIN_MEMORY_MIB, cpus=1, flags=flags)
    machine = QemuMachine.launch(spec)
    try:
        machine.console.expect_exact(END_LINE, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_TIMEOUT)
        yield parse_report(machine.console.tail(1 << 16))
    finally:
        machine.shutdown()


@pytest.fixture(scope="module")
def report(platform) -> Iterator[ProbeReport]:
    with probe_boot(f"mbprobe-{os.getpid()}", platform) as result:
        yield result


# --- the probe itself is shaped like unix -----------------------------------------------------
def test_the_probe_is_an_elf64_kernel_with_the_aout_kludge_header_of_unix():
    data = ensure_probe().read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2               # ELFCLASS64, as amd64 unix
    at = next(i for i in range(0, 8192 - 32, 4)
              if struct.unpack_from("<I", data, i)[0] == 0x1BADB002)
    magic, flags, checksum, header, load, load_end, bss_end, entry = \
        struct.unpack_from("<8I", data, at)
    assert flags == FLAGS_AOUT_KLUDGE == 0x00010003
    assert (magic + flags + checksum) & 0xFFFFFFFF == 0
    assert header - load == at and load_end == bss_end == 0      # the whole file, as mbh_patch
    assert load < entry < load + len(data)


# --- one boot of the probe as a SmartOS platform ---------------------------------------------
@pytest.mark.guest
def test_qemu_enters_the_kernel_with_the_multiboot_magic_and_the_info_dboot_reads(report):
    assert report.magic == MULTIBOOT_MAGIC
    for bit in (INFO_MEMORY, INFO_CMDLINE, INFO_MODS, INFO_MMAP):
        assert report.info_flags & bit, hex(report.info_flags)


@pytest.mark.guest
def test_the_command_line_is_the_kernel_path_then_the_boot_properties(report, platform):
    assert report.cmdline == f"{platform.unix} {BOOT_PROPERTIES}"
    boot_file = report.cmdline.split()[0]
    assert boot_file[boot_file.find("/platform/"):] == "/" + KERNEL_SUFFIX   # fakebop's whoami
    assert "multiboot" not in report.cmdline                                 # dboot would panic


@pytest.mark.guest
def test_modules_arrive_in_order_as_dboot_rootfs_hash_and_file_modules(report, platform):
    assert [m.cmdline for m in report.modules] == [
        f"{platform.boot_archive} type=rootfs name=ramdisk",
        f"{platform.hash_file} type=hash name=ramdisk",
        f"{platform.answers} type=file name=answers.json",
    ]
    assert [dboot_module(m.cmdline) for m in report.modules] == [
        ("ramdisk", "rootfs"), ("ramdisk", "hash"), ("answers.json", "file")]


@pytest.mark.guest
def test_module_bytes_and_sizes_are_those_of_the_files(report, platform):
    files = (platform.boot_archive, platform.hash_file, platform.answers)
    for module, path in zip(report.modules, files, strict=True):
        data = path.read_bytes()
        assert module.end - module.start == len(data), path      # dboot: bm_size = end - start
        assert module.head == data[:16], path
        assert module.start % PAGE == 0, hex(module.start)      # header flag bit 0 asks for it
    spans = sorted((m.start, m.end) for m in report.modules)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


# --- more boots ----------------------------------------------------------------------------------
@pytest.mark.guest
def test_kernel_flags_come_between_the_kernel_path_and_the_boot_properties(platform):
    with probe_boot(f"mbprobe-k-{os.getpid()}", platform, flags="-k") as result:
        assert result.cmdline == f"{platform.unix} -k {BOOT_PROPERTIES}"
        assert len(result.modules) == 3


@pytest.mark.guest
def test_without_the_aout_kludge_qemu_refuses_the_elf64_kernel(platform, tmp_path):
    unix = tmp_path / KERNEL_SUFFIX
    unix.parent.mkdir(parents=True)
    shutil.copyfile(ensure_probe(aout_kludge=False), unix)
    started = time.monotonic()
    with pytest.raises(QemuExited, match="Cannot load x86-64 image"):
        with probe_boot(f"mbprobe-elf-{os.getpid()}", platform, unix=unix):
            pass
    assert time.monotonic() - started < 60


# --- what dboot and krtld would refuse is refused before QEMU starts -------------------------------
def test_a_command_line_containing_multiboot_is_refused(platform):
    with pytest.raises(ConfigError, match="multiboot"):
        direct_boot_spec("lab1", unix=platform.unix, boot_archive=platform.boot_archive,
                         zones_disks=[platform.disks / "z.qcow2"], accel="tcg",
                         properties={"note": "multiboot"})


def test_a_directory_named_platform_above_the_platform_is_refused(platform, tmp_path):
    unix = tmp_path / "platform" / "lab" / KERNEL_SUFFIX
    unix.parent.mkdir(parents=True)
    shutil.copyfile(platform.unix, unix)
    with pytest.raises(ConfigError, match="first '/platform/'"):
        direct_boot_spec("lab1", unix=unix, boot_archive=platform.boot_archive,
                         zones_disks=[platform.disks / "z.qcow2"], accel="tcg")
