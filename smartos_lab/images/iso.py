"""Read files out of an ISO 9660 image without mounting it (pycdlib).

SmartOS ISOs come from smartos-live ``tools/build_boot_image`` (``create_iso``):
``mkisofs -quiet -R ... -o $iso $bi_rootdir`` over a root holding ``boot/`` and
``platform/`` (``cp -r output/platform-latest/ $dir/platform`` in ``populate_root``).
``-R`` adds Rock Ridge names (``/platform/i86pc/amd64/boot_archive``), there is no
``-J`` (no Joliet), and the ISO 9660 names themselves are mkisofs's 8.3 names
(``BOOT_ARC.;1``).  So a file is looked up by its Rock Ridge name; on an ISO
without Rock Ridge, among the ISO 9660 names, ignoring case, the ``;1`` version
and the dot of a name without extension (``BOOT_ARCHIVE.;1`` is ``boot_archive``).
Truncated 8.3 names are not guessed.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from ..errors import ImageError

PVD_OFFSET = 0x8000      # sector 16: the primary volume descriptor


class IsoReader:
    """An open ISO image; use as a context manager.  Paths are ``/``-separated, absolute."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            expected, size = volume_size(self.path), self.path.stat().st_size
        except OSError as e:
            raise ImageError(f"cannot read {self.path}: {e}") from None
        if size < expected:
            # pycdlib would shorten the files that run past the end instead of failing
            raise ImageError(f"{self.path} is {size} bytes but its volume descriptor says "
                             f"{expected}: truncated ISO (download it again)")
        self._iso = pycdlib.PyCdlib()
        try:
            self._iso.open(str(self.path))
        except (PyCdlibException, OSError) as e:
            raise ImageError(f"{self.path}: cannot read the ISO 9660 file system ({e})") from None
        self.rock_ridge = bool(self._iso.has_rock_ridge())

    def __enter__(self) -> IsoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._iso.close()

    def exists(self, path: str) -> bool:
        """True if ``path`` is a regular file on the ISO."""
        return self._locate(path) is not None

    def copy_out(self, path: str, dest: Path) -> None:
        """Write the regular file ``path`` to ``dest``."""
        where = self._locate(path)
        if where is None:
            raise ImageError(f"{self.path} has no regular file {path}")
        try:
            with open(dest, "wb") as out:
                self._iso.get_file_from_iso_fp(out, **where)
        except PyCdlibException as e:
            dest.unlink(missing_ok=True)
            raise ImageError(f"{self.path}: cannot read {path} ({e})") from None

    def read(self, path: str) -> bytes | None:
        """The content of the small file ``path`` (None if it is not a regular file)."""
        where = self._locate(path)
        if where is None:
            return None
        buf = io.BytesIO()
        try:
            self._iso.get_file_from_iso_fp(buf, **where)
        except PyCdlibException as e:
            raise ImageError(f"{self.path}: cannot read {path} ({e})") from None
        return buf.getvalue()

    # --- lookup ------------------------------------------------------------------
    def _locate(self, path: str) -> dict[str, str] | None:
        """The pycdlib keyword (``rr_path`` or ``iso_path``) naming the regular file ``path``."""
        if self.rock_ridge:
            key, found = "rr_path", "/" + path.strip("/")
            try:
                record = self._iso.get_record(rr_path=found)
            except PyCdlibException:
                return None
        else:
            key, found = "iso_path", ""
            record = None
            for name in path.strip("/").split("/"):
                record = self._child(found or "/", name)
                if record is None:
                    return None
                found += "/" + record.file_identifier().decode("ascii", "replace")
        if record is None or not record.is_file() or record.is_symlink():
            return None
        return {key: found}

    def _child(self, directory: str, name: str):
        try:
            children = list(self._iso.list_children(iso_path=directory))
        except PyCdlibException:
            return None                 # not a directory
        for child in children:
            if child.is_dot() or child.is_dotdot():
                continue
            if iso9660_name(child.file_identifier()) == name.lower():
                return child
        return None


def volume_size(path: Path) -> int:
    """The size in bytes the primary volume descriptor gives (ECMA-119 8.4.8 Volume Space
    Size times 8.4.12 Logical Block Size, little-endian halves), 0 if unreadable."""
    with open(path, "rb") as f:
        f.seek(PVD_OFFSET)
        pvd = f.read(132)
    if len(pvd) < 132 or pvd[:6] != b"\x01CD001":
        return 0
    blocks = int.from_bytes(pvd[80:84], "little")
    block_size = int.from_bytes(pvd[128:130], "little")
    return blocks * block_size


def iso9660_name(identifier: bytes) -> str:
    """``b'BOOT_ARCHIVE.;1'`` -> ``'boot_archive'``; ``b'ROOT.PASSWORD;1'`` -> ``'root.password'``."""
    name = identifier.decode("ascii", "replace").split(";", 1)[0]
    return name.removesuffix(".").lower()
