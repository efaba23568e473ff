"""ZFS self-healing, step by step: a mirror, a corrupted side, a repair.

1. :meth:`SelfHealingDemo.create`: a mirror pool from two devices;
2. :meth:`~SelfHealingDemo.write_data`: random data in a file, and its checksum;
3. :meth:`~SelfHealingDemo.corrupt`: export the pool, overwrite a region of one
   side (past the front labels, before the back labels) from the guest with
   ``dd`` -- or from the host on a raw backing image -- and import it again;
4. :meth:`~SelfHealingDemo.read_back`: the file still has the same checksum:
   ZFS read the good copy and rewrote the bad one;
5. :meth:`~SelfHealingDemo.scrub`: the scrub repairs every remaining bad block;
   ``zpool status`` shows ``CKSUM`` errors on the corrupted side and
   ``scrub repaired ...``;
6. :meth:`~SelfHealingDemo.clear`: reset the counters; :meth:`~SelfHealingDemo.destroy`.

:meth:`~SelfHealingDemo.run` does it all and returns a :class:`SelfHealingReport`.
Every ``status_*`` field keeps the ``zpool status`` text of that moment.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, ParseError
from ..parsers.zpool import ScanStatus
from . import _cmd
from .base import Toolkit
from .zfs import Zfs

MIB = 1 << 20
LABEL_RESERVE_MIB = 4      # vdev labels L0+L1 (512 KiB) and the boot reserve (3.5 MiB)


@dataclass
class SelfHealingReport:
    pool: str
    devices: tuple[str, str]
    corrupted: str
    checksum_written: str = ""
    checksum_read_back: str = ""
    checksum_errors_after_read: dict[str, int] = field(default_factory=dict)
    checksum_errors_after_scrub: dict[str, int] = field(default_factory=dict)
    scrub: ScanStatus | None = None
    status_after_read: str = ""
    status_after_scrub: str = ""
    status_after_clear: str = ""

    @property
    def data_intact(self) -> bool:
        return bool(self.checksum_written) and self.checksum_written == self.checksum_read_back

    @property
    def errors_detected(self) -> int:
        """CKSUM errors counted on the corrupted side (after the read, or after the scrub)."""
        name = leaf_name(self.corrupted)
        return max(self.checksum_errors_after_scrub.get(name, 0),
                   self.checksum_errors_after_read.get(name, 0))

    @property
    def healed(self) -> bool:
        """Data intact, errors seen on the corrupted side, and the scrub ended without errors."""
        return (self.data_intact and self.errors_detected > 0 and self.scrub is not None
                and self.scrub.state == "finished" and self.scrub.errors == 0)


class SelfHealingDemo(Toolkit):
    """The walk-through on a :class:`Zfs` toolkit.

    ``devices`` are the two vdevs (``("c1t1d0", "c1t2d0")`` on illumos,
    ``("/dev/vdb1", "/dev/vdc1")`` on Linux).  ``raw_devices`` are the paths
    ``dd`` writes to for each side; by default the vdev path itself, or for
    an illumos disk name its whole-disk slice ``/dev/rdsk/<disk>s0``.
    ``import_dirs`` are passed to ``zpool import -d`` (``("/dev",)`` on a
    Linux guest without udev).  ``mountpoint`` defaults to ZFS's (``/<pool>``).
    """

    def __init__(self, zfs: Zfs, devices: tuple[str, str], *, pool: str = "healdemo",
                 data_mib: int = 16, corrupt_offset_mib: int = LABEL_RESERVE_MIB,
                 corrupt_mib: int = 32, raw_devices: tuple[str, str] | None = None,
                 import_dirs: tuple[str, ...] = (), mountpoint: str | None = None,
                 timeout: float = 300.0):
        if len(devices) != 2:
            raise ConfigError("the self-healing demo needs exactly two devices")
        if corrupt_offset_mib < LABEL_RESERVE_MIB:
            raise ConfigError(f"corrupting below {LABEL_RESERVE_MIB} MiB would hit the vdev labels")
        for value, what in ((data_mib, "data_mib"), (corrupt_mib, "corrupt_mib")):
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{what} must be a positive integer, got {value!r}")
        super().__init__(zfs.runner, timeout=timeout)
        self.zfs = zfs
        self.pool = _cmd.pool_name(pool)
        self.devices = (devices[0], devices[1])
        self.raw_devices = tuple(raw_devices) if raw_devices else tuple(_raw(d) for d in devices)
        self.data_mib = data_mib
        self.corrupt_offset_mib = corrupt_offset_mib
        self.corrupt_mib = corrupt_mib
        self.import_dirs = import_dirs
        self.mountpoint = mountpoint
        self.report = SelfHealingReport(self.pool, self.devices, corrupted=self.devices[1])
        self._file = ""

    # ------------------------------------------------------------------ steps
    def create(self) -> str:
        """Create the mirror; returns ``zpool status`` text."""
        self.zfs.create_pool(self.pool, self.devices, layout="mirror", force=True,
                             mountpoint=self.mountpoint)
        mountpoint = self.mountpoint or self.zfs.get(self.pool, "mountpoint")
        self._file = f"{mountpoint}/data.bin"
        return self.zfs.status_text(self.pool)

    def write_data(self) -> str:
        """Write ``data_mib`` MiB of random data; returns (and records) its checksum."""
        self._need_file()
        self._ok(_cmd.cmd("dd", "if=/dev/urandom", f"of={self._file}", f"bs={MIB}",
                           f"count={self.data_mib}") + " 2>/dev/null && sync")
        self.report.checksum_written = self._checksum()
        return self.report.checksum_written

    def corrupt(self, side: int = 1, *, host_image: str | os.PathLike | None = None,
                vdev_offset: int = 0) -> None:
        """Export the pool, damage one side, import it again.

        Without ``host_image`` the guest overwrites ``corrupt_mib`` MiB at
        ``corrupt_offset_mib`` MiB of the side's raw device with ``dd``.  With
        ``host_image`` (a *raw* image file of that side's disk, on the host)
        the same region is overwritten from the host; ``vdev_offset`` is the
        byte offset of the vdev in that image (e.g. 1 MiB for a partition
        starting at sector 2048).
        """
        if side not in (0, 1):
            raise ConfigError("side is 0 or 1")
        self.report.corrupted = self.devices[side]
        self.zfs.export_pool(self.pool)
        try:
            if host_image is None:
                self._ok(_cmd.cmd("dd", "if=/dev/urandom", f"of={self.raw_devices[side]}",
                                   f"bs={MIB}", f"seek={self.corrupt_offset_mib}",
                                   f"count={self.corrupt_mib}", "conv=notrunc")
                          + " 2>/dev/null && sync")
            else:
                corrupt_image_region(host_image, vdev_offset + self.corrupt_offset_mib * MIB,
                                     self.corrupt_mib * MIB)
        finally:
            self.zfs.import_pool(self.pool, search_dirs=self.import_dirs)

    def read_back(self) -> str:
        """Read the file again; returns its checksum and records the errors ZFS saw."""
        self._need_file()
        self.report.checksum_read_back = self._checksum()
        self.report.checksum_errors_after_read = self.checksum_errors()
        self.report.status_after_read = self.zfs.status_text(self.pool)
        return self.report.checksum_read_back

    def scrub(self) -> ScanStatus:
        """Scrub and wait for it; records the scan result and the error counters."""
        self.zfs.scrub(self.pool)
        self.report.scrub = self.zfs.wait_scrub(self.pool, self.timeout)
        self.report.checksum_errors_after_scrub = self.checksum_errors()
        self.report.status_after_scrub = self.zfs.status_text(self.pool)
        return self.report.scrub

    def clear(self) -> str:
        self.zfs.clear(self.pool)
        self.report.status_after_clear = self.zfs.status_text(self.pool)
        return self.report.status_after_clear

    def destroy(self) -> None:
        self.zfs.destroy_pool(self.pool, force=True)

    def run(self, *, side: int = 1, host_image: str | os.PathLike | None = None,
            vdev_offset: int = 0) -> SelfHealingReport:
        """All steps, create to clear (the pool is left in place; call :meth:`destroy`)."""
        self.create()
        self.write_data()
        self.corrupt(side, host_image=host_image, vdev_offset=vdev_offset)
        self.read_back()
        self.scrub()
        self.clear()
        return self.report

    # ------------------------------------------------------------------ helpers
    def checksum_errors(self) -> dict[str, int]:
        """``CKSUM`` per leaf device of the pool, from ``zpool status`` (keyed as it prints
        them, see :func:`leaf_name`: ``vdb1`` for ``/dev/vdb1``, ``c1t1d0`` for ``c1t1d0``,
        a file by its full path)."""
        root = self.zfs.status(self.pool).root
        if root is None:
            raise ParseError("zpool status", f"no config table for pool {self.pool!r}")
        return {leaf.name: leaf.checksum_errors or 0 for leaf in root.leaves()}

    def _checksum(self) -> str:
        """A checksum of the data file: ``digest -a sha256`` (illumos), ``sha256sum``
        (Linux, busybox) or POSIX ``cksum``, whichever the guest has."""
        f = _cmd.q(self._file)
        out = self._ok(f"if command -v digest >/dev/null 2>&1; then digest -a sha256 {f}; "
                        f"elif command -v sha256sum >/dev/null 2>&1; then sha256sum {f}; "
                        f"else cksum {f}; fi").stdout.split()
        if not out or not out[0].isalnum():
            raise ParseError("checksum", "expected a checksum first", line=" ".join(out)[:200])
        return out[0]

    def _need_file(self) -> None:
        if not self._file:
            raise ConfigError("create() the pool first")


def corrupt_image_region(image: str | os.PathLike, offset: int, length: int) -> None:
    """Overwrite ``length`` bytes at ``offset`` of a raw disk image on the host with random data.

    Only for raw images whose pool is exported in the guest (a qcow2 file
    would be damaged as a container, not as a disk).
    """
    path = Path(image)
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"QFI\xfb":
        raise ConfigError(f"{path} is a qcow2 image: corrupt raw images only")
    size = path.stat().st_size
    if offset < 0 or length <= 0 or offset + length > size:
        raise ConfigError(f"region {offset}+{length} is outside {path} ({size} bytes)")
    with path.open("r+b") as f:
        f.seek(offset)
        remaining = length
        while remaining:
            chunk = min(remaining, MIB)
            f.write(os.urandom(chunk))
            remaining -= chunk
        f.flush()
        os.fsync(f.fileno())


#: where OpenZFS on Linux finds disks (``zpool_default_search_paths``): ``zpool status``
#: shows a disk under one of them without it; the longest prefixes come first
_LINUX_DISK_DIRS = ("/dev/disk/by-vdev/", "/dev/disk/by-partlabel/", "/dev/disk/by-partuuid/",
                    "/dev/disk/by-label/", "/dev/disk/by-uuid/", "/dev/disk/by-id/",
                    "/dev/disk/by-path/", "/dev/mapper/", "/dev/")


def leaf_name(device: str) -> str:
    """The name ``zpool status`` shows for a vdev given as a path or disk name.

    libzfs ``zpool_vdev_name()`` shortens only disks: illumos strips ``/dev/dsk/``
    (``c1t1d0`` stays ``c1t1d0``), OpenZFS on Linux strips ``/dev/`` (``/dev/vdb1``
    shows as ``vdb1``).  A file vdev keeps its full path (``/var/tmp/vdevs/h1``).
    """
    if device.startswith("/dev/dsk/"):
        return device[len("/dev/dsk/"):]
    for prefix in _LINUX_DISK_DIRS:
        if device.startswith(prefix):
            return device[len(prefix):]
    return device


def _raw(device: str) -> str:
    """The path ``dd`` writes for a vdev: itself, or an illumos disk's raw slice 0."""
    if device.startswith("/"):
        return device
    if re.fullmatch(r"c\d+(t[0-9A-Fa-f]+)?d\d+", device):
        return f"/dev/rdsk/{device}s0"
    return f"/dev/rdsk/{device}"
