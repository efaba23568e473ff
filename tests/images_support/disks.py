"""Build test disk images with the SmartOS USB image's partition layout (smartos-live
tools/format_image): GPT slots loader / boot / root, root a FAT32 labelled SMARTOSBOOT.
Uses sgdisk and mkfs.fat, independent of the code under test."""
from __future__ import annotations

import atexit
import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

SECTOR = 512
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BOOT_GUID = "6A82CB45-1DD2-11B2-99A6-080020736631"
ROOT_GUID = "6A85CF4D-1DD2-11B2-99A6-080020736631"

# The real layout: loader at sector 2048 (256 MiB), boot 1 MiB, root at 528384.
REAL_LAYOUT = (2048, 524288, 2048)
# A compact one (same names and order) for tests that download or gzip the image.
SMALL_LAYOUT = (2048, 2048, 2048)

TEST_UNIX = b"TEST FILE standing in for platform/i86pc/kernel/amd64/unix\n"
TEST_ARCHIVE = b"TEST FILE standing in for platform/i86pc/amd64/boot_archive\n" * 100


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install gdisk dosfstools mtools)")


_TEMPLATES: dict[tuple, tuple[Path, int]] = {}
_TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="sl-test-disks-"))
atexit.register(shutil.rmtree, _TEMPLATE_DIR, True)


def make_gpt_disk(path: Path, layout=REAL_LAYOUT, root_mib: int = 40) -> int:
    """A sparse disk with GPT partitions loader, boot, root (FAT32 'SMARTOSBOOT').
    Returns the root partition's byte offset.  (sgdisk sleeps 1 s per run, so each
    layout is built once per test process and copied.)"""
    key = (layout, root_mib)
    if key not in _TEMPLATES:
        template = _TEMPLATE_DIR / f"disk-{len(_TEMPLATES)}.img"
        _TEMPLATES[key] = (template, _build_gpt_disk(template, layout, root_mib))
    template, offset = _TEMPLATES[key]
    subprocess.run(["cp", "--sparse=always", str(template), str(path)], check=True)
    return offset


def _build_gpt_disk(path: Path, layout, root_mib: int) -> int:
    need_tools("sgdisk", "mkfs.fat")
    esp_start, esp_len, boot_len = layout
    boot_start = esp_start + esp_len
    root_start = boot_start + boot_len
    root_len = root_mib * 2048
    total = (root_start + root_len + 2048) * SECTOR
    with open(path, "wb") as f:
        f.truncate(total)
    subprocess.run(
        ["sgdisk",
         "-n", f"1:{esp_start}:{boot_start - 1}", "-c", "1:loader", "-t", f"1:{ESP_GUID}",
         "-n", f"2:{boot_start}:{root_start - 1}", "-c", "2:boot", "-t", f"2:{BOOT_GUID}",
         "-n", f"3:{root_start}:{root_start + root_len - 1}", "-c", "3:root", "-t", f"3:{ROOT_GUID}",
         str(path)], check=True, capture_output=True)
    subprocess.run(["mkfs.fat", "-F", "32", "-s", "1", "-n", "SMARTOSBOOT",
                    "--offset", str(root_start), str(path), str(root_len // 2)],
                   check=True, capture_output=True)
    return root_start * SECTOR


def mtools_put(image: Path, offset: int, path: str, data: bytes) -> None:
    """Write a file into the FAT with mtools directly (not through the code under test)."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    drive = f"{image}@@{offset}"
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        subprocess.run(["mmd", "-D", "s", "-i", drive, "::/" + "/".join(parts[:i])],
                       env=env, capture_output=True)   # fails harmlessly if it exists
    subprocess.run(["mcopy", "-o", "-i", drive, "-", "::" + path], input=data,
                   env=env, check=True, capture_output=True)


def make_usb_test_image(path: Path, *, stamp: str | None = "20250724T001011Z",
                        layout=SMALL_LAYOUT, with_hash: bool = True) -> int:
    """A GPT+FAT test disk whose root partition holds test files at the SmartOS paths."""
    offset = make_gpt_disk(path, layout)
    need_tools("mcopy", "mmd")
    mtools_put(path, offset, "/platform/i86pc/kernel/amd64/unix", TEST_UNIX)
    mtools_put(path, offset, "/platform/i86pc/amd64/boot_archive", TEST_ARCHIVE)
    if with_hash:
        mtools_put(path, offset, "/platform/i86pc/amd64/boot_archive.hash", b"test-hash\n")
    if stamp:
        mtools_put(path, offset, "/platform/etc/version/platform", (stamp + "\n").encode())
    mtools_put(path, offset, "/platform/root.password", b"test-password\n")
    mtools_put(path, offset, "/boot/loader.conf", b'console="text,ttya"\n')
    return offset


def gzip_file(src: Path, dest: Path) -> Path:
    with open(src, "rb") as f, gzip.open(dest, "wb", compresslevel=1) as g:
        shutil.copyfileobj(f, g, 1 << 20)
    return dest


def add_member(tar: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def make_platform_tarball(path: Path, stamp: str = "20250724T001011Z", *,
                          top: str | None = None, extra=()) -> Path:
    """A .tgz with the platform tarball's member names and test file contents."""
    top = top or f"platform-{stamp}"
    with tarfile.open(path, "w:gz") as tar:
        add_member(tar, f"{top}/", type=tarfile.DIRTYPE)
        add_member(tar, f"{top}/i86pc/kernel/amd64/unix", TEST_UNIX)
        add_member(tar, f"{top}/i86pc/amd64/boot_archive", TEST_ARCHIVE)
        add_member(tar, f"{top}/i86pc/amd64/boot_archive.hash", b"test-hash\n")
        add_member(tar, f"{top}/i86pc/amd64/boot_archive.manifest", b"test manifest\n")
        add_member(tar, f"{top}/etc/version/platform", (stamp + "\n").encode())
        add_member(tar, f"{top}/root.password", b"test-password\n")
        for name, data, attrs in extra:
            add_member(tar, name, data, **attrs)
    return path


def make_platform_dir(root: Path, stamp: str = "20250724T001011Z") -> Path:
    pdir = root / f"platform-{stamp}"
    (pdir / "i86pc/kernel/amd64").mkdir(parents=True)
    (pdir / "i86pc/amd64").mkdir(parents=True)
    (pdir / "etc/version").mkdir(parents=True)
    (pdir / "i86pc/kernel/amd64/unix").write_bytes(TEST_UNIX)
    (pdir / "i86pc/amd64/boot_archive").write_bytes(TEST_ARCHIVE)
    (pdir / "etc/version/platform").write_text(stamp + "\n")
    return pdir


def make_iso_like(path: Path) -> Path:
    """A file with the ISO 9660 volume descriptor signature at 0x8001 (structure only)."""
    with open(path, "wb") as f:
        f.truncate(0x8000 + 2048)
        f.seek(0x8000)
        f.write(b"\x01CD001\x01")
    return path


def sparse_blocks(path: Path) -> int:
    return os.stat(path).st_blocks * 512
