"""Read and write files in a FAT partition inside a disk image, with mtools (never mounted).

Every call names the image file and the partition's byte offset
(``mcopy -i image@@offset``); get the offset from
:func:`smartos_lab.images.gpt.find_partition`.  These functions edit the
image file they are given: callers decide which copy to edit.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from ..errors import HostError, ImageError

TIMEOUT = 120.0


def _env() -> dict[str, str]:
    # Partition sizes are rarely a multiple of a made-up track geometry.
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def _drive(image: str | os.PathLike, offset: int) -> str:
    image = os.fspath(image)
    if "@@" in image:
        raise ImageError(f"image path {image!r} contains '@@', which mtools reads as an offset")
    if offset < 0:
        raise ImageError(f"negative partition offset {offset}")
    return f"{image}@@{offset}"


def _fat_path(path: str) -> str:
    p = PurePosixPath("/") / path
    if ".." in p.parts:
        raise ImageError(f"'..' is not allowed in a FAT path: {path!r}")
    return "::" + str(p)


def _run(tool: str, args: list[str], *, what: str, stdin: bytes | None = None,
         timeout: float = TIMEOUT) -> bytes:
    exe = shutil.which(tool)
    if exe is None:
        raise HostError(f"{tool} not found: install mtools (Debian/Ubuntu: apt-get install mtools)")
    try:
        proc = subprocess.run([exe, *args], input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, env=_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ImageError(f"{what}: {tool} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise ImageError(f"{what} failed: {err or f'{tool} exit status {proc.returncode}'}")
    return proc.stdout


def fat_read(image, offset: int, path: str) -> bytes:
    """The bytes of ``path`` (e.g. ``/boot/loader.conf``) in the FAT at ``offset``."""
    return _run("mcopy", ["-i", _drive(image, offset), _fat_path(path), "-"],
                what=f"reading {path} from {image}")


def fat_copy_out(image, offset: int, path: str, dest: str | os.PathLike) -> Path:
    """Copy ``path`` out of the FAT into the host file ``dest`` (overwritten)."""
    dest = Path(dest)
    _run("mcopy", ["-n", "-i", _drive(image, offset), _fat_path(path), os.fspath(dest)],
         what=f"copying {path} out of {image}")
    return dest


def fat_exists(image, offset: int, path: str) -> bool:
    """True if ``path`` (file or directory) exists in the FAT."""
    parent = str(PurePosixPath("/") / path).rsplit("/", 1)[0] or "/"
    wanted = _fat_path(path).lower()
    try:
        names = fat_list(image, offset, parent)
    except ImageError:
        return False
    return any(n.rstrip("/").lower() == wanted for n in names)


def fat_list(image, offset: int, path: str = "/", *, recursive: bool = False) -> list[str]:
    """Paths (``::/dir/``, ``::/dir/file``) under ``path``; directories end with ``/``."""
    args = ["-a", "-b"] + (["-s"] if recursive else [])
    out = _run("mdir", [*args, "-i", _drive(image, offset), _fat_path(path)],
               what=f"listing {path} in {image}")
    return [line for line in out.decode(errors="replace").splitlines() if line.strip()]


def fat_mkdir(image, offset: int, path: str) -> None:
    """Create directory ``path`` and any missing parents."""
    current = PurePosixPath("/")
    for part in (PurePosixPath("/") / path).parts[1:]:
        current = current / part
        if not fat_exists(image, offset, str(current)):
            _run("mmd", ["-i", _drive(image, offset), _fat_path(str(current))],
                 what=f"creating directory {current} in {image}")


def fat_write(image, offset: int, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` in the FAT (replacing it), creating parent directories."""
    parent = str(PurePosixPath("/") / path).rsplit("/", 1)[0]
    if parent:
        fat_mkdir(image, offset, parent)
    _run("mcopy", ["-o", "-i", _drive(image, offset), "-", _fat_path(path)],
         stdin=data, what=f"writing {path} into {image}")


def fat_copy_in(image, offset: int, src: str | os.PathLike, path: str) -> None:
    """Copy the host file ``src`` to ``path`` in the FAT (replacing it), creating parent
    directories; for big files, where :func:`fat_write` would hold them in memory."""
    parent = str(PurePosixPath("/") / path).rsplit("/", 1)[0]
    if parent:
        fat_mkdir(image, offset, parent)
    _run("mcopy", ["-o", "-i", _drive(image, offset), os.fspath(src), _fat_path(path)],
         what=f"copying {src} into {image} as {path}")


def fat_delete(image, offset: int, path: str) -> None:
    """Delete the file ``path`` from the FAT."""
    _run("mdel", ["-i", _drive(image, offset), _fat_path(path)],
         what=f"deleting {path} from {image}")


def fat_label(image, offset: int) -> str:
    """The volume label (``SMARTOSBOOT`` on the SmartOS root partition)."""
    out = _run("mlabel", ["-s", "-i", _drive(image, offset), "::"],
               what=f"reading the volume label of {image}").decode(errors="replace")
    # " Volume label is SMARTOSBOOT" / " Volume has no label"
    text = out.strip()
    prefix = "Volume label is "
    return text[len(prefix):].strip() if text.startswith(prefix) else ""
