"""Kernel modules for the guest: dependency order from the modules' own ``.modinfo``.

Debian's kernel .deb ships no ``modules.dep`` (``depmod`` writes it at install time),
so the ``depends=`` field of each module's ELF ``.modinfo`` section is read directly.
Modules listed in ``modules.builtin`` are part of the kernel and are skipped.
"""
from __future__ import annotations

import lzma
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import GuestBuildError

_SUFFIXES = (".ko", ".ko.xz", ".ko.zst")


@dataclass(frozen=True)
class Module:
    name: str          # canonical name: virtio_pci (dashes become underscores)
    path: Path         # the file on the host (maybe compressed)
    relpath: str       # path under /lib/modules/<version>/, always ending in .ko

    def elf(self) -> bytes:
        """The uncompressed module (busybox insmod reads plain ELF only)."""
        return _decompress(self.path)

    def depends(self) -> list[str]:
        return [d for d in modinfo(self.elf()).get("depends", "").split(",") if d]


class ModuleIndex:
    """All modules found under one or more trees, plus the kernel's built-ins."""

    def __init__(self, module_dirs: list[Path], builtin_list: Path | None = None):
        self.modules: dict[str, Module] = {}
        for top in module_dirs:
            for path in sorted(top.rglob("*.ko*")):
                suffix = next((s for s in _SUFFIXES if path.name.endswith(s)), None)
                if suffix is None:
                    continue
                stem = path.name[: -len(suffix)]
                rel = str(path.relative_to(top))[: -len(suffix)] + ".ko"
                self.modules[canonical(stem)] = Module(canonical(stem), path, rel)
        self.builtin: set[str] = set()
        if builtin_list is not None and builtin_list.exists():
            for line in builtin_list.read_text().split():
                self.builtin.add(canonical(Path(line).name.split(".ko")[0]))

    def load_order(self, wanted: list[str], optional: tuple[str, ...] = ()) -> list[Module]:
        """Modules to insmod, dependencies first; built-ins are left out.

        A wanted module that is neither built in nor present raises, unless it is
        listed in ``optional`` (then it is skipped).
        """
        order: list[Module] = []
        seen: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            name = canonical(name)
            if name in seen or name in self.builtin:
                return
            if name in chain:
                raise GuestBuildError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
            module = self.modules.get(name)
            if module is None:
                if name in optional:
                    return
                raise GuestBuildError(f"kernel module {name!r} is neither built in nor shipped"
                                      + (f" (needed by {chain[-1]})" if chain else ""))
            for dep in module.depends():
                visit(dep, chain + (name,))
            seen.add(name)
            order.append(module)

        for name in wanted:
            visit(name, ())
        return order


def canonical(name: str) -> str:
    return name.replace("-", "_")


def modinfo(elf: bytes) -> dict[str, str]:
    """The key=value pairs of an ELF64 module's ``.modinfo`` section."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise GuestBuildError("not a little-endian ELF64 kernel module")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size

    _, strtab_off, _ = section(shstrndx)
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = elf.index(b"\0", strtab_off + name_off)
        if elf[strtab_off + name_off:end] == b".modinfo":
            info: dict[str, str] = {}
            for item in elf[offset:offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    return {}


def _decompress(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        proc = subprocess.run(["zstd", "-dc", str(path)], check=False, capture_output=True)
        if proc.returncode != 0:
            raise GuestBuildError(f"cannot decompress {path}: {proc.stderr.decode()[-500:]}")
        return proc.stdout
    return data
