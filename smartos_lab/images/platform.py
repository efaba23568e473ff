"""Get ``unix`` and ``boot_archive`` out of a SmartOS image for a direct (-kernel/-initrd) boot.

The result is a directory ``root`` with ``root/platform/i86pc/kernel/amd64/unix``:
krtld keeps only the part of the kernel path from ``/platform/`` on, so the
host path must contain ``/platform/`` (piadm likewise renames ``platform-<TS>``
to ``platform``).  QEMU splits ``-initrd`` on commas, so ``root`` must not
contain one.
"""
from __future__ import annotations

import os
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..atomic import staged_dir
from ..errors import ConfigError, ImageError
from .fat import fat_copy_out, fat_list
from .gpt import find_partition
from .iso import IsoReader
from .local import (
    BOOT_ARCHIVE,
    UNIX,
    VERSION_FILE,
    LocalImage,
    identify,
    platform_dir_of,
    read_version,
)

ROOT_PARTITION = "root"
HASH = BOOT_ARCHIVE + ".hash"
ROOT_PASSWORD = "root.password"
WANTED = (UNIX, BOOT_ARCHIVE, HASH, VERSION_FILE, ROOT_PASSWORD)
REQUIRED = (UNIX, BOOT_ARCHIVE)


@dataclass(frozen=True)
class PlatformFiles:
    root: Path                      # root/platform/i86pc/kernel/amd64/unix exists
    unix: Path
    boot_archive: Path
    boot_archive_hash: Path | None  # sha1 of boot_archive, as the build writes it
    version: str | None             # build stamp from platform/etc/version/platform
    root_password: Path | None      # single-user root password of the live image, if shipped

    @property
    def platform_dir(self) -> Path:
        return self.root / "platform"


def platform_files(root: str | os.PathLike) -> PlatformFiles:
    """Describe an already prepared ``root`` (with ``root/platform/...``)."""
    root = Path(root).absolute()
    pdir = root / "platform"
    if platform_dir_of(pdir) != pdir:
        raise ImageError(f"{pdir} does not hold {UNIX} and {BOOT_ARCHIVE}")

    def optional(rel: str) -> Path | None:
        return pdir / rel if (pdir / rel).is_file() else None

    return PlatformFiles(root=root, unix=pdir / UNIX, boot_archive=pdir / BOOT_ARCHIVE,
                         boot_archive_hash=optional(HASH), version=read_version(pdir),
                         root_password=optional(ROOT_PASSWORD))


def extract_platform(source: str | os.PathLike | LocalImage,
                     dest_dir: str | os.PathLike) -> PlatformFiles:
    """Make ``dest_dir/platform/`` from a platform tarball (extracts only the boot files),
    a platform directory (symlinked, not copied), an uncompressed USB image (copied out
    of its ``root`` FAT partition with mtools) or an ISO (copied out of its ``/platform``
    with pycdlib).

    Raises ConfigError if ``dest_dir`` contains a comma, ImageError if
    ``dest_dir/platform`` already exists or the source lacks the boot files.
    """
    dest_dir = Path(dest_dir).expanduser().absolute()
    if "," in str(dest_dir):
        raise ConfigError(f"{dest_dir} contains a comma; QEMU splits -initrd on commas, "
                          "choose a directory without one")
    target = dest_dir / "platform"
    if target.exists() or target.is_symlink():
        raise ImageError(f"{target} already exists; remove it or choose another directory")
    image = source if isinstance(source, LocalImage) else identify(source)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if image.kind == "platform-dir":
        target.symlink_to(platform_dir_of(image.path).resolve(), target_is_directory=True)
        return platform_files(dest_dir)
    if image.kind == "usb" and image.compressed:
        raise ImageError(f"{image.path} is compressed; decompress it first "
                         "(`smartos-lab images add` does) or pass the platform tarball")
    try:
        with staged_dir(target) as staging:
            if image.kind == "platform":
                _from_tarball(image.path, staging)
            elif image.kind == "iso":
                _from_iso(image.path, staging)
            else:
                _from_usb_image(image.path, staging)
            for rel in REQUIRED:
                if not (staging / rel).is_file():
                    raise ImageError(f"{image.path} has no platform/{rel}")
    except OSError as e:
        raise ImageError(f"extracting the platform from {image.path} into {dest_dir} failed: {e}") from None
    return platform_files(dest_dir)


def _from_tarball(tgz: Path, out: Path) -> None:
    """Copy the wanted regular files of the first ``platform*/`` directory; nothing else
    is written, so absolute names, ``..`` and links in the archive cannot escape ``out``."""
    pattern = re.compile(r"(?:\./)?(platform[^/]*)/(" + "|".join(map(re.escape, WANTED)) + ")")
    top = None
    try:
        with tarfile.open(tgz, "r|gz") as tar:
            for member in tar:
                m = pattern.fullmatch(member.name)
                if not m or not member.isfile() or (top and m.group(1) != top):
                    continue
                top = m.group(1)
                dest = out / m.group(2)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ImageError(f"{tgz}: cannot read the platform tarball ({e})") from None


def _from_usb_image(image: Path, out: Path) -> None:
    part = find_partition(image, ROOT_PARTITION)
    if part.offset_bytes + part.size_bytes > image.stat().st_size:
        raise ImageError(f"{image} is shorter than its '{ROOT_PARTITION}' partition: truncated image")
    present = {name.lower() for name in _listing(image, part.offset_bytes)}
    for rel in WANTED:
        if f"::/platform/{rel}".lower() not in present:
            continue
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        fat_copy_out(image, part.offset_bytes, f"/platform/{rel}", dest)


def _from_iso(iso: Path, out: Path) -> None:
    """Copy the wanted regular files of the ISO's ``/platform`` (smartos-live
    build_boot_image copies the build's platform directory there)."""
    with IsoReader(iso) as reader:
        missing = [rel for rel in REQUIRED if not reader.exists(f"/platform/{rel}")]
        if missing:
            names = "Rock Ridge names" if reader.rock_ridge else \
                "ISO 9660 names (the ISO has no Rock Ridge names; 8.3-truncated names are not matched)"
            raise ImageError(f"{iso} has no " + " and no ".join(f"platform/{rel}" for rel in missing)
                             + f"; looked up by {names}")
        for rel in WANTED:
            if reader.exists(f"/platform/{rel}"):
                dest = out / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                reader.copy_out(f"/platform/{rel}", dest)


def _listing(image: Path, offset: int) -> list[str]:
    try:
        return fat_list(image, offset, "/platform", recursive=True)
    except ImageError as e:
        raise ImageError(f"{image}: no /platform directory in its '{ROOT_PARTITION}' "
                         f"partition ({e})") from None
