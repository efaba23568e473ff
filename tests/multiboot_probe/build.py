"""Build (or reuse) the Multiboot probe kernel: a test substrate for smartos-lab, not SmartOS.

``probe.s`` + ``probe.ld`` become a tiny ELF64 kernel with a Multiboot-1 header that,
like illumos's amd64 ``unix``, sets the a.out-kludge flag (0x00010003) and asks the
loader to load the whole file.  Booted by QEMU's ``-kernel``/``-initrd``/``-append``,
it prints on COM1 what the loader handed it (see ``probe.s`` for the lines).

Only GNU ``as`` and ``ld`` are needed (Debian package ``binutils``; no gcc, no
multilib).  Builds are cached under ``smartos_lab.paths.cache_dir() / "multiboot-probe"``,
keyed by the sources, the header flags and the binutils version.

Command line: ``python -m tests.multiboot_probe.build [--no-aout-kludge]``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from smartos_lab import paths
from smartos_lab.errors import HostError

HERE = Path(__file__).parent
SOURCE = HERE / "probe.s"
LINKER_SCRIPT = HERE / "probe.ld"
RECIPE_VERSION = 1            # bump when the build steps change in a way the key can't see

FLAGS_AOUT_KLUDGE = 0x00010003   # illumos MB_HEADER_FLAGS_64: page align, memory info, a.out kludge
FLAGS_ELF = 0x00000003           # the same without the a.out kludge: the loader must read the ELF

BEGIN_LINE = "MBPROBE BEGIN"
END_LINE = "MBPROBE END"

# After END_LINE the probe idles in a 100 Hz clock loop (probe.s), for the gdb tests:
TICK_SYMBOL = "probe_tick"              # runs on every timer interrupt
TICKS_SYMBOL = "probe_ticks"            # 32-bit count of ticks so far
SIGNATURE_SYMBOL = "probe_signature"    # 32-bit word holding PROBE_SIGNATURE
PROBE_SIGNATURE = 0x5AFEB007


class ProbeBuildError(HostError):
    """The Multiboot probe kernel could not be built (as/ld missing or failing)."""


def ensure_probe(*, aout_kludge: bool = True, cache_dir: Path | None = None) -> Path:
    """The path of a built probe kernel (built now if not cached).

    ``aout_kludge=False`` gives a variant whose header lacks the a.out-kludge flag
    (for showing that QEMU refuses an ELF64 kernel without it).
    """
    flags = FLAGS_AOUT_KLUDGE if aout_kludge else FLAGS_ELF
    tools = _tools()
    root = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "multiboot-probe"
    out = root / f"probe-{flags:08x}-{_cache_key(flags, tools)}.elf"
    if out.is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=root) as work:
        obj = Path(work) / "probe.o"
        elf = Path(work) / "probe.elf"
        _run([tools["as"], "--64", "--defsym", f"MB_FLAGS={flags:#x}", "-o", str(obj),
              str(SOURCE)])
        _run([tools["ld"], "-m", "elf_x86_64", "-T", str(LINKER_SCRIPT), "-nostdlib",
              "--build-id=none", "-z", "max-page-size=0x1000", "-o", str(elf), str(obj)])
        os.replace(elf, out)       # atomic: concurrent builders produce the same bytes
    return out


def _tools() -> dict[str, str]:
    tools = {}
    for name in ("as", "ld"):
        found = shutil.which(name)
        if not found:
            raise ProbeBuildError(f"GNU {name} not found: install the Debian package 'binutils'")
        tools[name] = found
    return tools


def _cache_key(flags: int, tools: dict[str, str]) -> str:
    h = hashlib.sha256(f"recipe {RECIPE_VERSION} flags {flags:#x}\n".encode())
    for path in (SOURCE, LINKER_SCRIPT):
        h.update(path.read_bytes())
    for tool in tools.values():
        h.update(_run([tool, "--version"]).splitlines()[0].encode())
    return h.hexdigest()[:16]


def _run(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeBuildError(f"{argv[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        raise ProbeBuildError(f"{' '.join(argv)} exited with {proc.returncode}:\n"
                              f"{proc.stderr.strip()}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-aout-kludge", action="store_true",
                        help="build the variant without the a.out-kludge flag")
    args = parser.parse_args(argv)
    print(ensure_probe(aout_kludge=not args.no_aout_kludge))
    return 0


if __name__ == "__main__":
    sys.exit(main())
