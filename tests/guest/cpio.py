"""An in-memory initramfs tree written out as a gzip-compressed newc cpio archive.

Building the tree in memory (instead of in a staging directory) lets the archive hold
device nodes and root-owned files without running as root or calling mknod.
"""
from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_FIXED_MTIME = 1_700_000_000   # reproducible archives: every entry gets the same mtime


@dataclass
class _Entry:
    mode: int             # file type bits | permission bits
    data: bytes = b""     # file contents, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)


class Initramfs:
    """A tree of directories, files, symlinks and device nodes for the guest's rootfs."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __contains__(self, path: str) -> bool:
        return _norm(path) in self._entries

    def paths(self) -> list[str]:
        return sorted(self._entries)

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        path = _norm(path)
        if path in ("", "."):
            return
        self._add_parents(path)
        existing = self._entries.get(path)
        if existing is not None and not stat.S_ISDIR(existing.mode):
            raise ValueError(f"{path} exists and is not a directory")
        self._entries[path] = _Entry(stat.S_IFDIR | mode)

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._put(path, _Entry(stat.S_IFREG | mode, data))

    def add_host_file(self, path: str, source: Path, mode: int | None = None) -> None:
        """Copy a host file (symlinks followed) into the tree; keeps its mode unless given."""
        source = Path(source).resolve()
        perm = stat.S_IMODE(source.stat().st_mode) if mode is None else mode
        self.add_file(path, source.read_bytes(), perm)

    def add_symlink(self, path: str, target: str) -> None:
        self._put(path, _Entry(stat.S_IFLNK | 0o777, target.encode()))

    def add_char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._put(path, _Entry(stat.S_IFCHR | mode, rdev=(major, minor)))

    def size(self) -> int:
        """Total bytes of file contents (uncompressed)."""
        return sum(len(e.data) for e in self._entries.values())

    def write_gzip(self, target: Path, level: int = 6) -> None:
        with open(target, "wb") as raw, gzip.GzipFile(
            fileobj=raw, mode="wb", compresslevel=level, mtime=_FIXED_MTIME
        ) as out:
            self.write_cpio(out)

    def write_cpio(self, out: BinaryIO) -> None:
        """Write the tree as a newc cpio stream; parents always precede their children."""
        for ino, path in enumerate(sorted(self._entries, key=lambda p: p.split("/")), start=1):
            _write_member(out, path, self._entries[path], ino)
        _write_member(out, "TRAILER!!!", _Entry(0), 0)

    def _put(self, path: str, entry: _Entry) -> None:
        path = _norm(path)
        self._add_parents(path)
        existing = self._entries.get(path)
        if existing is not None and stat.S_ISDIR(existing.mode):
            raise ValueError(f"{path} is a directory")
        self._entries[path] = entry

    def _add_parents(self, path: str) -> None:
        for parent in reversed(PurePosixPath(path).parents):
            key = str(parent)
            if key != "." and key not in self._entries:
                self._entries[key] = _Entry(stat.S_IFDIR | 0o755)


def _norm(path: str) -> str:
    return str(PurePosixPath("/", path).relative_to("/"))


def _write_member(out: BinaryIO, name: str, entry: _Entry, ino: int) -> None:
    encoded = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, _FIXED_MTIME, len(entry.data), 0, 0,
              entry.rdev[0], entry.rdev[1], len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out.write(header + encoded + _pad(len(header) + len(encoded)))
    out.write(entry.data + _pad(len(entry.data)))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)
