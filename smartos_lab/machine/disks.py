"""Disk images via ``qemu-img``: checks, qcow2 overlays over pristine bases, blank disks.

A lab never writes its base image: it runs on a qcow2 overlay whose backing
file is the base (opened read-only by QEMU).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, HostError, ImageError

SECTOR = 512
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: str                 # "qcow2", "raw", ...
    virtual_size: int           # bytes the guest sees
    backing_file: Path | None = None
    backing_format: str = ""
    actual_size: int = 0        # bytes used on the host


def parse_size(size: int | str) -> int:
    """Bytes in ``size``: an int, or a string like ``"20G"``, ``"512M"``, ``"1.5GiB"`` (binary units)."""
    if isinstance(size, bool):
        raise ConfigError(f"invalid size {size!r}")
    if isinstance(size, int):
        value = size
    elif isinstance(size, str):
        m = _SIZE_RE.fullmatch(size)
        if not m:
            raise ConfigError(f"invalid size {size!r}: use bytes or a number with K, M, G or T")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    else:
        raise ConfigError(f"invalid size {size!r}")
    if value <= 0:
        raise ConfigError(f"size must be positive, got {size!r}")
    return value


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if not path:
        raise HostError("qemu-img not found: apt-get install qemu-utils")
    return path


def image_info(path: str | Path) -> ImageInfo:
    """What ``qemu-img info`` says about ``path``; :class:`ImageError` if it is no disk image.

    Raw images must be non-empty and a whole number of 512-byte sectors (a
    stray text file is "raw" to qemu-img, but not a disk).
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"no such image: {path}")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not a disk image")
    if not os.access(path, os.R_OK):
        raise ImageError(f"cannot read image {path} (permission denied)")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(f"{path} is empty (0 bytes), not a disk image")
    proc = subprocess.run([qemu_img(), "info", "-U", "--output=json", str(path)],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ImageError(f"qemu-img cannot read {path}: {proc.stderr.strip()}")
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise ImageError(f"qemu-img info gave unreadable output for {path}") from exc
    fmt = data.get("format", "")
    if fmt == "raw" and size % SECTOR:
        raise ImageError(
            f"{path} is not a disk image: {size} bytes is not a whole number of {SECTOR}-byte sectors")
    backing = data.get("full-backing-filename") or data.get("backing-filename")
    return ImageInfo(path=path, format=fmt, virtual_size=int(data.get("virtual-size", 0)),
                     backing_file=Path(backing) if backing else None,
                     backing_format=data.get("backing-filename-format", ""),
                     actual_size=int(data.get("actual-size", 0)))


def looks_bootable(path: str | Path) -> bool:
    """True if a raw image starts like something a BIOS or CD loader can boot (MBR, GPT or ISO 9660)."""
    try:
        with open(path, "rb") as f:
            head = f.read(0x8006)
    except OSError:
        return False
    mbr = len(head) >= 512 and head[510:512] == b"\x55\xaa"
    gpt = head[512:520] == b"EFI PART"
    iso = head[0x8001:0x8006] == b"CD001"
    return mbr or gpt or iso


def check_disk_image(path: str | Path, *, fmt: str = "", bootable: bool = False) -> ImageInfo:
    """:func:`image_info` plus: the format is ``fmt`` (when given), and a raw image
    that must boot carries a boot signature."""
    info = image_info(path)
    if fmt and info.format != fmt:
        raise ImageError(f"{path} is a {info.format} image, but format {fmt!r} was given")
    if bootable and info.format == "raw" and not looks_bootable(path):
        raise ImageError(f"{path} is not bootable: no MBR, GPT or ISO 9660 signature")
    return info


def create_overlay(base: str | Path, overlay: str | Path, *, exist_ok: bool = False,
                   size: int | str | None = None) -> Path:
    """A qcow2 ``overlay`` whose backing file is the absolute ``base`` path.

    An existing overlay is refused unless ``exist_ok``; then it is reused
    after checking that it is backed by ``base``.  ``size`` grows the overlay
    beyond the base's size.  The base is only read.
    """
    base = Path(base).resolve()
    overlay = Path(overlay)
    base_info = image_info(base)
    if overlay.exists():
        if not exist_ok:
            raise ImageError(f"overlay {overlay} already exists (pass exist_ok=True to reuse it)")
        info = image_info(overlay)
        if info.format != "qcow2" or info.backing_file is None:
            raise ImageError(f"{overlay} exists but is not a qcow2 overlay")
        if info.backing_file.resolve() != base:
            raise ImageError(f"overlay {overlay} is backed by {info.backing_file}, not by {base}")
        return overlay
    if overlay.resolve() == base:
        raise ImageError(f"overlay and base are the same file: {base}")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    cmd = [qemu_img(), "create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_info.format,
           str(overlay)]
    if size is not None:
        cmd.append(str(parse_size(size)))
    _run(cmd, f"create overlay {overlay}")
    return overlay


def create_blank(path: str | Path, size: int | str, *, fmt: str = "qcow2",
                 exist_ok: bool = False) -> Path:
    """A new empty disk image of ``size`` (bytes, or e.g. ``"20G"``)."""
    path = Path(path)
    nbytes = parse_size(size)
    if path.exists():
        if not exist_ok:
            raise ImageError(f"{path} already exists")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([qemu_img(), "create", "-q", "-f", fmt, str(path), str(nbytes)], f"create {path}")
    return path


def _run(cmd: list[str], what: str, timeout: float = 120) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ImageError(f"cannot {what}: {proc.stderr.strip() or proc.stdout.strip()}")


def convert_snapshot(source: str | Path, snapshot: str, dest: str | Path) -> Path:
    """Write the disk state of internal snapshot ``snapshot`` of ``source`` to a new qcow2 ``dest``.

    When ``source`` has a backing file, ``dest`` keeps it as its backing file and
    holds only the snapshot's own clusters.  ``source`` is only read (``-U``:
    a snapshot's clusters never change, so this is safe while a QEMU runs on it).
    """
    info = image_info(source)
    cmd = [qemu_img(), "convert", "-U", "-q", "-l", f"snapshot.name={snapshot}", "-O", "qcow2"]
    if info.backing_file is not None:
        cmd += ["-B", str(info.backing_file), "-F", info.backing_format or "raw"]
    cmd += [str(source), str(dest)]
    _run(cmd, f"copy checkpoint {snapshot!r} of {source} to {dest}", timeout=3600)
    return Path(dest)


def flatten(overlay: str | Path) -> None:
    """Copy everything ``overlay`` reads from its backing chain into it (``qemu-img rebase -b ''``),
    so it no longer needs a backing file."""
    _run([qemu_img(), "rebase", "-q", "-b", "", str(overlay)], f"make {overlay} standalone",
         timeout=3600)


def in_use(path: str | Path) -> bool:
    """True when a running QEMU holds ``path`` open for writing (qemu-img's image lock says so)."""
    proc = subprocess.run([qemu_img(), "info", "--output=json", str(path)], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode != 0 and "lock" in proc.stderr
