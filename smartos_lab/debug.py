"""Kernel debugging on a lab: gdb on QEMU's stub, the gdb command line, A/B comparison.

The glue between :class:`~smartos_lab.lab.Lab` and the pieces below it:

- ``Lab.up(..., gdb=True)`` starts QEMU with its gdb stub on the run dir's
  private ``gdb.sock`` (:func:`apply_gdb`); ``lab.gdb()`` (:func:`open_gdb`)
  returns a :class:`~smartos_lab.machine.gdb.GdbSession` with the lab's kernel
  loaded for symbols and, when the lab answers commands, its modules at their
  load addresses (``modinfo``; the add-symbol-file recipe of illumos
  developers' ``.gdbinit`` files: ``add-symbol-file FILE -s .text ADDR``).
- :func:`gdb_argv` is what ``smartos-lab gdb NAME`` runs on the terminal.
- :func:`refuse_if_stopped_in_gdb` makes ``lab.sh`` fail at once while gdb
  holds the CPUs (instead of after its timeout).
- :func:`compare` runs one command on two labs (stock and patched platform)
  and shows both results side by side with ``uname -v`` of each.
"""
from __future__ import annotations

import dataclasses
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths
from .errors import GdbError, GdbNotEnabled, LabNotFound, ParseError, StoppedInGdb, TransportError
from .machine.gdb import GdbSession, ModuleSymbols, find_gdb, gdb_client_connected, stopped_in_gdb
from .machine.result import CommandResult, CommandRunner
from .machine.rundir import RunDir
from .machine.spec import KernelBoot, MachineSpec
from .parsers.crash import KernelModule, parse_modinfo

if TYPE_CHECKING:
    from .lab import Lab, LabConfig

MODINFO = "modinfo -w"          # Loadaddr: the module's text address (modinfo(8))
MODULE_DIRS = ("kernel/{kind}/amd64/{name}", "platform/i86pc/kernel/{kind}/amd64/{name}",
               "usr/kernel/{kind}/amd64/{name}")
MODULE_KINDS = ("drv", "fs", "misc", "sys", "strmod", "sched", "exec", "cpu", "mach", "crypto",
                "socketmod", "ipp", "mac", "dacf", "")


# --- starting with the stub ---------------------------------------------------------------
def set_gdb(config: LabConfig, gdb: bool | None) -> None:
    """Remember ``gdb`` for the lab's next boots (None: keep what it was)."""
    if gdb is not None:
        config.gdb = bool(gdb)


def apply_gdb(spec: MachineSpec, config: LabConfig) -> MachineSpec:
    """The machine to launch, with the gdb stub when the lab asks for it."""
    if config.gdb:
        return dataclasses.replace(spec, gdb=True)
    return spec


def not_enabled(name: str) -> GdbNotEnabled:
    return GdbNotEnabled(
        f"lab {name} runs without the gdb stub; restart it with it: lab.down() then "
        f"Lab.up({name!r}, gdb=True) (shell: smartos-lab down {name} && smartos-lab up {name} --gdb)")


def in_use(name: str) -> GdbError:
    return GdbError(f"the gdb stub of lab {name} is in use by another gdb (lab.gdb() or "
                    f"'smartos-lab gdb {name}' elsewhere): detach or quit there first")


def check_running_has_gdb(name: str, gdb: bool | None) -> None:
    """``Lab.up(name, gdb=True)`` on a lab that already runs without the stub cannot add it."""
    if not gdb:
        return
    rd = RunDir(paths.run_root() / name)
    if not rd.gdb_socket.exists():
        raise not_enabled(name)


# --- gdb from Python ------------------------------------------------------------------------
def kernel_symbols(spec: MachineSpec) -> Path | None:
    """The ELF kernel the lab booted directly (its ``unix``), which carries the symbols."""
    if not isinstance(spec.boot, KernelBoot):
        return None
    kernel = Path(spec.boot.kernel)
    try:
        with open(kernel, "rb") as f:
            return kernel if f.read(4) == b"\x7fELF" else None     # a bzImage has no symbols
    except OSError:
        return None


def open_gdb(lab: Lab, *, symbols: str | Path | None = None, modules_root: str | Path | None = None,
             timeout: float = 30.0) -> GdbSession:
    """A gdb session on the lab's stub (the guest stops until ``cont()`` or ``detach()``)."""
    machine = lab.machine
    if not machine.spec.gdb or not machine.run_dir.gdb_socket.exists():
        raise not_enabled(lab.name)
    if gdb_client_connected(machine.qmp):
        raise in_use(lab.name)
    symbol_file = Path(symbols) if symbols else kernel_symbols(machine.spec)
    modules: tuple[ModuleSymbols, ...] = ()
    root = Path(modules_root) if modules_root is not None else default_modules_root(lab.config.image)
    if root is not None:
        modules = module_symbols(guest_modules(lab.shell), root)
    return GdbSession.attach(machine.run_dir.gdb_socket, symbols=symbol_file, modules=modules,
                             timeout=timeout)


def guest_modules(runner: CommandRunner) -> list[KernelModule]:
    """The kernel modules loaded in the guest and their text addresses."""
    result = runner.run(MODINFO, timeout=60)
    if result.exit_status != 0:
        raise ParseError(MODINFO, f"exit status {result.exit_status}: {result.stdout.strip()[:200]}")
    return parse_modinfo(result.stdout, command=MODINFO)


def default_modules_root(image: str | Path | None) -> Path | None:
    """The proto area of the smartos-live checkout a platform was built in, if it is there.

    ``gmake live`` leaves ``<smartos-live>/output/platform-<TS>/`` (and its ``.tgz``) and the
    kernel and modules it was made from in ``<smartos-live>/proto/``.
    """
    if not image:
        return None
    path = Path(image)
    for candidate in (path.parent.parent / "proto", path.parent / "proto"):
        if (candidate / "kernel").is_dir():
            return candidate
    return None


def module_symbols(modules: list[KernelModule], root: Path) -> tuple[ModuleSymbols, ...]:
    """Symbol files under ``root`` (a build's proto area) for the loaded modules, at their text.

    ``unix`` is the kernel itself and ``genunix`` is looked up like the others;
    modules without a file under ``root`` are left out.
    """
    found = []
    for module in modules:
        if module.name == "unix" or module.loadaddr == 0:
            continue
        path = _module_file(root, module.name)
        if path is not None:
            found.append(ModuleSymbols(path=path, text=module.loadaddr))
    return tuple(found)


def _module_file(root: Path, name: str) -> Path | None:
    for pattern in MODULE_DIRS:
        for kind in MODULE_KINDS:
            candidate = root / pattern.format(kind=kind, name=name).replace("//", "/")
            if candidate.is_file():
                return candidate
    return None


# --- gdb on the terminal (smartos-lab gdb NAME) -----------------------------------------------
def gdb_argv(name: str, *, modules: tuple[ModuleSymbols, ...] = (),
             gdb_binary: str | None = None) -> list[str]:
    """Debian's gdb attached to lab ``name``'s stub, the lab's kernel loaded for symbols."""
    from .errors import QMPError
    from .machine.gdb import check_stub_socket
    from .machine.qemu import spec_from_dict
    from .machine.qmp import QMP

    rd = RunDir(paths.run_root() / name)
    if rd.live_pid() is None:
        raise LabNotFound(f"lab {name!r} is not running")
    if not rd.gdb_socket.exists():
        raise not_enabled(name)
    check_stub_socket(rd.gdb_socket)
    qmp = QMP(rd.control_socket, timeout=5.0)
    try:
        busy = gdb_client_connected(qmp.connect(timeout=5.0))
    except QMPError:
        busy = False            # no free control socket: let gdb itself find out
    finally:
        qmp.close()
    if busy:
        raise in_use(name)
    spec = spec_from_dict(rd.read_meta().get("spec", {"name": name}))
    argv = [find_gdb(gdb_binary), "-q", "-nx", "-ex", "set confirm off", "-ex", "set pagination off"]
    unix = kernel_symbols(spec)
    if unix is not None:
        argv += ["-ex", f"file {unix}"]
    for module in modules:
        argv += ["-ex", f"add-symbol-file {module.path} -s .text {module.text:#x}"]
    argv += ["-ex", f"target remote {rd.gdb_socket}"]
    return argv


def refuse_if_stopped_in_gdb(lab: Lab) -> None:
    """Raise :class:`StoppedInGdb` at once when gdb holds the lab's CPUs."""
    machine = lab.machine
    if machine.spec.gdb and stopped_in_gdb(machine.qmp):
        raise StoppedInGdb(f"lab {lab.name} is stopped in gdb: let it run (gdb.cont() or "
                           f"'continue' in gdb) or detach, then run commands again")


# --- SSH without the Lab object (command line) -------------------------------------------------
def ssh_runner(name: str):
    """An SSH shell into running lab ``name`` using its key and forwarded port."""
    from .lab import LabDir
    from .machine.ssh import SSHShell

    rd = RunDir(paths.run_root() / name)
    if rd.live_pid() is None:
        raise LabNotFound(f"lab {name!r} is not running")
    port = rd.read_meta().get("ports", {}).get("ssh")
    key = LabDir(name).key_file()
    if not port or key is None:
        raise TransportError(f"lab {name!r} has no SSH port or key")
    return SSHShell("127.0.0.1", int(port), "root", key).connect(timeout=30)


# --- A/B -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """One lab's half of a comparison."""

    lab: str
    uname_v: str
    result: CommandResult


@dataclass(frozen=True)
class Comparison:
    command: str
    a: Side
    b: Side

    @property
    def same_output(self) -> bool:
        return self.a.result.stdout == self.b.result.stdout

    def __str__(self) -> str:
        return side_by_side(self)


def compare(a: tuple[str, Any], b: tuple[str, Any], command: str, *, timeout: float = 300.0) -> Comparison:
    """Run ``command`` on two labs (``(name, runner)`` pairs), one after the other."""
    sides = []
    for name, runner in (a, b):
        version = runner.run("uname -v", timeout=60)
        result = runner.run(command, timeout=timeout)
        sides.append(Side(lab=name, uname_v=version.stdout.strip() or "?", result=result))
    return Comparison(command=command, a=sides[0], b=sides[1])


def side_by_side(comparison: Comparison, width: int | None = None) -> str:
    """Both results in two columns, headed by lab name, ``uname -v`` and exit status."""
    total = width or max(80, min(200, os.get_terminal_size(2).columns if os.isatty(2) else 160))
    col = (total - 3) // 2

    def column(side: Side) -> list[str]:
        head = [f"{side.lab}: {side.uname_v}", f"exit {side.result.exit_status}", "-" * col]
        body = (side.result.stdout + side.result.stderr).rstrip("\n").splitlines() or [""]
        lines = []
        for line in head + body:
            lines += textwrap.wrap(line, col, replace_whitespace=False, drop_whitespace=False) or [""]
        return lines

    left, right = column(comparison.a), column(comparison.b)
    rows = [f"$ {comparison.command}"]
    for i in range(max(len(left), len(right))):
        lcell = left[i] if i < len(left) else ""
        rcell = right[i] if i < len(right) else ""
        rows.append(f"{lcell:<{col}} | {rcell}".rstrip())
    return "\n".join(rows)
