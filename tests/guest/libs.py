"""Shared libraries of dynamically linked binaries, found with ``ldd``."""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import GuestBuildError

GUEST_LIB_DIR = "/lib/x86_64-linux-gnu"   # a default search path of Debian's ld.so


@dataclass(frozen=True)
class SharedLib:
    guest_path: str    # where the guest's loader looks for it
    host_path: Path    # the file to copy (symlinks resolved)


def missing_libs(binary: Path, lib_dirs: list[Path] = ()) -> list[str]:
    """Sonames ``ldd`` cannot find for ``binary`` (searching ``lib_dirs`` first)."""
    return [name for name, path in _ldd(binary, lib_dirs) if path is None]


def shared_libs(binary: Path, lib_dirs: list[Path] = ()) -> list[SharedLib]:
    """Every library (and the ELF interpreter) ``binary`` loads; empty for static ones."""
    libs = []
    for name, path in _ldd(binary, lib_dirs):
        if path is None:
            raise GuestBuildError(f"{binary}: shared library {name} not found on this host")
        guest = name if name.startswith("/") else f"{GUEST_LIB_DIR}/{name}"
        libs.append(SharedLib(guest, Path(path).resolve()))
    return libs


def _ldd(binary: Path, lib_dirs: list[Path]) -> list[tuple[str, str | None]]:
    env = dict(os.environ)
    if lib_dirs:
        env["LD_LIBRARY_PATH"] = ":".join(str(d) for d in lib_dirs)
    proc = subprocess.run(["ldd", str(binary)], check=False, capture_output=True, text=True,
                          env=env, timeout=60)
    if "not a dynamic executable" in proc.stdout + proc.stderr:
        return []
    if proc.returncode != 0:
        raise GuestBuildError(f"ldd {binary} failed: {proc.stderr.strip()}")
    found: list[tuple[str, str | None]] = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if m := re.match(r"(\S+) => not found", line):
            found.append((m.group(1), None))
        elif m := re.match(r"(\S+) => (/\S+) \(0x", line):
            found.append((m.group(1), m.group(2)))
        elif m := re.match(r"(/\S+) \(0x", line):          # the ELF interpreter
            found.append((m.group(1), m.group(1)))
    return found
