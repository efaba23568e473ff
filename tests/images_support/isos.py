"""Build test ISO images with the layout of a SmartOS ISO, using pycdlib's writer.

smartos-live ``tools/build_boot_image`` makes the ISO with ``mkisofs -quiet -R ...``
over a root holding ``boot/`` and ``platform/`` (a copy of the build's
``output/platform-<TS>/``).  So, as there, files have Rock Ridge names and the
ISO 9660 names are mkisofs's 8.3 ones (``BOOT_ARC.;1``, ``BOOT_ARC.HAS;1``).  The
files are small test files standing in for ``unix`` and ``boot_archive`` at the
real paths; they are not SmartOS.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pycdlib

from .disks import TEST_ARCHIVE, TEST_UNIX

TS = "20250724T001011Z"


def smartos_test_files(stamp: str | None = TS, *, unix: bytes = TEST_UNIX,
                       boot_archive: bytes = TEST_ARCHIVE, boot_archive_hash: bytes = b"test-hash\n",
                       omit=()) -> dict[str, bytes]:
    """The paths a SmartOS ISO holds (``platform/`` as in a platform tarball), with test contents."""
    files = {
        "boot/loader.conf": b'console="text,ttya"\n',
        "platform/i86pc/kernel/amd64/unix": unix,
        "platform/i86pc/amd64/boot_archive": boot_archive,
        "platform/i86pc/amd64/boot_archive.hash": boot_archive_hash,
        "platform/i86pc/amd64/boot_archive.manifest": b"test manifest\n",
        "platform/root.password": b"test-password\n",
    }
    if stamp:
        files["platform/etc/version/platform"] = (stamp + "\n").encode()
    return {k: v for k, v in files.items() if k not in omit}


def mkisofs_name(name: str, *, is_dir: bool) -> str:
    """mkisofs's default (level 1) ISO 9660 name: upper case, 8.3, ``;1`` on files."""
    clean = re.sub(r"[^A-Z0-9_.]", "_", name.upper())
    if is_dir:
        return clean.replace(".", "_")[:8]
    stem, dot, ext = clean.partition(".")
    return f"{stem[:8]}.{ext.replace('.', '_')[:3] if dot else ''};1"


def full_name(name: str, *, is_dir: bool) -> str:
    """An ISO 9660 level 3 name keeping the whole name: ``BOOT_ARCHIVE.;1``."""
    upper = name.upper()
    if is_dir:
        return upper
    return f"{upper};1" if "." in upper else f"{upper}.;1"


def make_iso(path: Path, files: dict[str, bytes], *, rock_ridge: bool = True,
             iso_names=mkisofs_name) -> Path:
    """An ISO image holding ``files`` (relative paths); Rock Ridge names unless ``rock_ridge=False``."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1 if iso_names is mkisofs_name else 3,
            rock_ridge="1.09" if rock_ridge else None, vol_ident="SMARTOS_TEST")
    made: dict[str, str] = {"": ""}
    for rel in sorted(files):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent, key = "/".join(parts[:i - 1]), "/".join(parts[:i])
            if key not in made:
                made[key] = f"{made[parent]}/{iso_names(parts[i - 1], is_dir=True)}"
                iso.add_directory(made[key], rr_name=parts[i - 1] if rock_ridge else None)
        iso_path = f"{made['/'.join(parts[:-1])]}/{iso_names(parts[-1], is_dir=False)}"
        data = files[rel]
        iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=parts[-1] if rock_ridge else None)
    iso.write(str(path))
    iso.close()
    return path


def make_smartos_test_iso(path: Path, stamp: str | None = TS, *, rock_ridge: bool = True,
                          iso_names=mkisofs_name, **contents) -> Path:
    """A test ISO laid out like a SmartOS ISO (see the module docstring)."""
    return make_iso(path, smartos_test_files(stamp, **contents), rock_ridge=rock_ridge,
                    iso_names=iso_names)
