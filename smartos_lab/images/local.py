"""Recognise a SmartOS image the user already has, by its content (not its name).

Kinds:

- ``usb``: USB image, raw ``.img`` or gzipped ``.img.gz``: protective MBR + GPT.
- ``iso``: ISO 9660 (``CD001`` at byte 0x8001); the release is read from its
  ``/platform/etc/version/platform`` when the ISO can be read.
- ``platform``: platform tarball (``.tgz``) with ``platform-*/i86pc/kernel/amd64/unix``.
- ``platform-dir``: a build's ``output/platform-<TS>/`` (or a directory holding
  ``platform/``) with ``i86pc/kernel/amd64/unix`` and ``i86pc/amd64/boot_archive``.
"""
from __future__ import annotations

import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError
from .gpt import GPT_SIGNATURE, has_protective_mbr
from .iso import IsoReader

UNIX = "i86pc/kernel/amd64/unix"
BOOT_ARCHIVE = "i86pc/amd64/boot_archive"
VERSION_FILE = "etc/version/platform"
_TS = re.compile(r"\d{8}T\d{6}Z")
_GZIP_MAGIC = b"\x1f\x8b"
_ISO_OFFSET = 0x8001
_HEAD = 0x8001 + 5

EXPECTED = ("a SmartOS USB image (.img or .img.gz), an ISO (.iso), a platform tarball "
            "(platform-*.tgz) or a platform directory (output/platform-<TS>/ with "
            f"{UNIX} and {BOOT_ARCHIVE})")


@dataclass(frozen=True)
class LocalImage:
    kind: str               # "usb" | "iso" | "platform" | "platform-dir"
    path: Path              # absolute
    release: str | None     # build stamp if known (from the name, tarball or version file)
    compressed: bool = False


def stamp_in(text: str) -> str | None:
    """The first build stamp (``20250724T001011Z``) in ``text``."""
    m = _TS.search(text)
    return m.group(0) if m else None


def platform_dir_of(path: Path) -> Path | None:
    """``path`` or ``path/platform`` if it holds unix and boot_archive."""
    for cand in (path, path / "platform"):
        if (cand / UNIX).is_file() and (cand / BOOT_ARCHIVE).is_file():
            return cand
    return None


def read_version(platform_dir: Path) -> str | None:
    try:
        return stamp_in((platform_dir / VERSION_FILE).read_text(errors="replace"))
    except OSError:
        return None


def identify(path: str | os.PathLike) -> LocalImage:
    """What kind of SmartOS image ``path`` is; ImageError saying what was expected otherwise."""
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise ImageError(f"{path} does not exist; expected {EXPECTED}")
    if path.is_dir():
        pdir = platform_dir_of(path)
        if pdir is None:
            raise ImageError(f"{path} is a directory without {UNIX} and {BOOT_ARCHIVE}; "
                             f"expected {EXPECTED}")
        return LocalImage("platform-dir", path, read_version(pdir) or stamp_in(path.name))
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError as e:
        raise ImageError(f"cannot read {path}: {e}") from None
    if head[:2] == _GZIP_MAGIC:
        return _identify_gzip(path)
    kind = _raw_kind(head)
    if kind is None:
        raise ImageError(f"{path} is not a SmartOS image: no GPT, no ISO 9660 signature, "
                         f"not gzip; expected {EXPECTED}")
    if kind == "iso":
        return LocalImage(kind, path, _iso_stamp(path) or stamp_in(path.name))
    return LocalImage(kind, path, stamp_in(path.name))


def _iso_stamp(path: Path) -> str | None:
    """The build stamp in the ISO's ``/platform/etc/version/platform`` (None if unreadable:
    whether the ISO holds a platform is checked when it is extracted)."""
    try:
        with IsoReader(path) as iso:
            version = iso.read(f"/platform/{VERSION_FILE}")
    except ImageError:
        return None
    return stamp_in(version.decode(errors="replace")) if version else None


def _raw_kind(head: bytes) -> str | None:
    if head[_ISO_OFFSET:_ISO_OFFSET + 5] == b"CD001":
        return "iso"
    if has_protective_mbr(head) and head[512:520] == GPT_SIGNATURE:
        return "usb"
    return None


def _gunzip_head(path: Path, n: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = b""
    with open(path, "rb") as f:
        while len(out) < n and not d.eof:
            chunk = f.read(64 << 10)
            if not chunk:
                break
            try:
                out += d.decompress(chunk, n - len(out))
                while d.unconsumed_tail and len(out) < n:
                    out += d.decompress(d.unconsumed_tail, n - len(out))
            except zlib.error as e:
                raise ImageError(f"{path} is not a valid gzip file ({e})") from None
    return out


def _identify_gzip(path: Path) -> LocalImage:
    head = _gunzip_head(path, _HEAD)
    if _raw_kind(head) == "usb":
        return LocalImage("usb", path, stamp_in(path.name), compressed=True)
    if head[257:262] == b"ustar":
        ts = _platform_tarball_stamp(path)
        return LocalImage("platform", path, ts or stamp_in(path.name), compressed=True)
    raise ImageError(f"{path} is gzip-compressed but neither a USB image (no GPT) nor a "
                     f"tar archive; expected {EXPECTED}")


_UNIX_MEMBER = re.compile(r"(?:\./)?(platform[^/]*)/" + re.escape(UNIX))


def _platform_tarball_stamp(path: Path) -> str | None:
    """Scan the tar listing for ``platform-*/i86pc/kernel/amd64/unix``; return the stamp
    in that directory name (None if it has none)."""
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                m = _UNIX_MEMBER.fullmatch(member.name)
                if m:
                    return stamp_in(m.group(1))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise ImageError(f"{path}: cannot read the tar archive ({e})") from None
    raise ImageError(f"{path} is a tar archive without platform-*/{UNIX}: not a SmartOS "
                     "platform tarball")
