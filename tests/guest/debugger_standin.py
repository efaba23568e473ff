"""A stand-in for a boot that stops in the kernel debugger, on the Linux test guest (not kmdb).

illumos booted with ``-kd`` stops in kmdb before the kernel goes on; the lab
must then stay up, stopped there.  The test guest's Debian cloud kernel has no
kernel debugger (no kgdb/kdb), so a small script stands in for one:
``debugger-standin.sh`` runs as PID 1 (``rdinit=/debugger-standin``), prints
``stand-in debugger> `` and waits on the console; ``:c`` (kmdb's continue
command) execs the guest's real ``/init``.  It comes in a second cpio archive
appended to the guest's initrd (Linux unpacks concatenated archives), so the
cached test guest itself is unchanged.  The test guest's console profile
(:data:`PROFILE`) declares that prompt as its debugger prompt: the lab code
that sees it is the same that sees kmdb's ``[0]> `` on SmartOS.
"""
from __future__ import annotations

import dataclasses
import gzip
import io
from pathlib import Path

from smartos_lab.atomic import write_atomic
from smartos_lab.machine.console import Console, ConsoleProfile

from .cpio import Initramfs

SCRIPT = Path(__file__).with_name("debugger-standin.sh")
GUEST_PATH = "/debugger-standin"
KERNEL_ARGS = f"rdinit={GUEST_PATH}"     # kernel_args that stop the boot in the stand-in
PROMPT = "stand-in debugger> "
PROFILE = dataclasses.replace(ConsoleProfile(), name="test-guest",
                              debugger_patterns=(r"^stand-in debugger> ",))


def wanted(kernel_args: str) -> bool:
    """True when ``kernel_args`` boot into the stand-in."""
    return KERNEL_ARGS in kernel_args.split()


def initrd_with_standin(initrd: Path, target: Path) -> Path:
    """``initrd`` with a cpio archive holding the stand-in appended, written to ``target``."""
    image = Initramfs()
    image.add_file(GUEST_PATH, SCRIPT.read_bytes(), 0o755)
    extra = io.BytesIO()
    with gzip.GzipFile(fileobj=extra, mode="wb", mtime=0) as out:
        image.write_cpio(out)
    data = Path(initrd).read_bytes() + extra.getvalue()
    if not target.exists() or target.read_bytes() != data:
        write_atomic(target, data)
    return target


def console(machine) -> Console:
    """Console factory: the test guest's console with :data:`PROFILE`."""
    return Console.connect_unix(machine.run_dir.console_socket, log_path=machine.serial_log,
                                exit_probe=machine.exit_error, profile=PROFILE)
