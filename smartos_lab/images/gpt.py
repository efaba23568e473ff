"""Read the GUID partition table of a disk image (no tools, no mounting).

The SmartOS USB image (smartos-live ``tools/format_image``) has a protective
MBR and a GPT with slots 0 ``loader`` (ESP), 1 ``boot`` (gptzfsboot),
2 ``root`` (FAT32 ``SMARTOSBOOT``: /boot and /platform) and 8 ``reserved``.
``Partition.index`` is the 0-based slot in the entry array, as illumos counts.
"""
from __future__ import annotations

import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError

GPT_SIGNATURE = b"EFI PART"
_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")   # the first 92 bytes of the header
_ENTRY = struct.Struct("<16s16sQQQ72s")         # the first 128 bytes of an entry
SECTOR_SIZES = (512, 4096)


@dataclass(frozen=True)
class Partition:
    index: int              # 0-based slot in the GPT entry array
    name: str
    first_lba: int
    last_lba: int           # inclusive
    sector_size: int
    type_guid: str

    @property
    def offset_bytes(self) -> int:
        return self.first_lba * self.sector_size

    @property
    def size_bytes(self) -> int:
        return (self.last_lba - self.first_lba + 1) * self.sector_size


def has_protective_mbr(head: bytes) -> bool:
    """True if the first sector is an MBR with the 0x55AA mark and a GPT (0xEE) entry."""
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return False
    return any(head[446 + 16 * i + 4] == 0xEE for i in range(4))


def read_partitions(image: str | os.PathLike) -> list[Partition]:
    """Every used partition entry of the (uncompressed) disk image, in slot order.

    Raises ImageError if the image has no valid GPT (bad signature or CRC).
    """
    image = Path(image)
    try:
        with open(image, "rb") as f:
            for sector in SECTOR_SIZES:
                f.seek(sector)
                raw = f.read(sector)
                if raw[:8] == GPT_SIGNATURE:
                    return _read_entries(f, raw, sector, image)
    except OSError as e:
        raise ImageError(f"cannot read {image}: {e}") from None
    raise ImageError(f"{image} has no GPT partition table (no 'EFI PART' header at LBA 1); "
                     "expected an uncompressed SmartOS USB image")


def _read_entries(f, raw: bytes, sector: int, image: Path) -> list[Partition]:
    (_sig, _rev, hsize, hcrc, _res, _cur, _backup, _first, _last, _guid,
     entries_lba, count, esize, ecrc) = _HEADER.unpack_from(raw)
    if not 92 <= hsize <= sector:
        raise ImageError(f"{image}: GPT header size {hsize} is invalid")
    header = bytearray(raw[:hsize])
    header[16:20] = b"\0\0\0\0"
    if zlib.crc32(header) != hcrc:
        raise ImageError(f"{image}: GPT header checksum is wrong (damaged partition table)")
    if esize < _ENTRY.size or count > 4096:
        raise ImageError(f"{image}: GPT entry table is implausible ({count} entries of {esize} bytes)")
    f.seek(entries_lba * sector)
    table = f.read(count * esize)
    if len(table) != count * esize or zlib.crc32(table) != ecrc:
        raise ImageError(f"{image}: GPT partition entries are damaged (checksum mismatch)")
    parts = []
    for i in range(count):
        type_guid, _uniq, first, last, _attrs, name = _ENTRY.unpack_from(table, i * esize)
        if type_guid == bytes(16):
            continue
        parts.append(Partition(
            index=i,
            name=name.decode("utf-16-le", errors="replace").split("\0", 1)[0],
            first_lba=first, last_lba=last, sector_size=sector,
            type_guid=str(uuid.UUID(bytes_le=type_guid))))
    return parts


def find_partition(image: str | os.PathLike, name: str) -> Partition:
    """The partition called ``name`` (e.g. ``"root"``); ImageError listing the names found."""
    parts = read_partitions(image)
    for part in parts:
        if part.name == name:
            return part
    names = ", ".join(repr(p.name) for p in parts) or "none"
    raise ImageError(f"{image} has no partition named {name!r} (partitions: {names})")
