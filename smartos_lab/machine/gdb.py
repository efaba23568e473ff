"""A gdb session on QEMU's gdb stub, over gdb's machine interface (GDB/MI).

QEMU serves its gdb stub on a unix socket in the lab's private run dir
(``MachineSpec(gdb=True)``, see :mod:`smartos_lab.machine.argv`).  This module
starts Debian's ``gdb`` with ``--interpreter=mi3`` through the maintained MI
client `pygdbmi <https://pypi.org/project/pygdbmi/>`_ (which parses MI records
into dicts), connects it with ``target remote unix::<socket>`` and offers a
small synchronous API: :meth:`GdbSession.break_at`, :meth:`~GdbSession.cont`,
:meth:`~GdbSession.wait_stop`, :meth:`~GdbSession.registers`,
:meth:`~GdbSession.read_memory`, :meth:`~GdbSession.backtrace`,
:meth:`~GdbSession.detach`.

Every command carries a numeric MI token and waits (with a timeout) for the
result record carrying the same token; asynchronous ``*stopped`` records are
queued for :meth:`~GdbSession.wait_stop`.  While gdb holds the stub the guest
CPUs are stopped (QEMU's run state ``debug``); :meth:`detach` lets them run.
"""
from __future__ import annotations

import itertools
import os
import shlex
import shutil
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GdbError, GdbTimeout, HostError, UnknownSymbol
from .argv import GDB_CHARDEV

GDB_BINARY = "gdb"
CONNECT_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0
STOP_POLL = 0.05


@dataclass(frozen=True)
class ModuleSymbols:
    """A kernel module's symbol file and where its text (and data) were loaded."""

    path: Path
    text: int
    data: int | None = None


@dataclass(frozen=True)
class Breakpoint:
    number: int
    address: int | None
    function: str


@dataclass(frozen=True)
class Frame:
    level: int
    address: int
    function: str


@dataclass(frozen=True)
class Stop:
    """Why and where the target stopped (an MI ``*stopped`` record)."""

    reason: str                 # "breakpoint-hit", "signal-received", ... ("" when gdb gave none)
    address: int | None
    function: str
    breakpoint: int | None = None
    signal: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class GdbSession:
    """Debian's gdb attached to a QEMU gdb stub.  Use :meth:`attach`; close with :meth:`detach`."""

    def __init__(self, controller, *, socket: Path, symbols: Path | None, timeout: float):
        self._gdb = controller
        self.socket = socket
        self.symbols = symbols
        self.timeout = timeout
        self._tokens = itertools.count(1)
        self._stops: deque[dict] = deque()
        self._register_names: list[str] | None = None
        self.running = False
        self.closed = False

    # --- life cycle ----------------------------------------------------------------------
    @classmethod
    def attach(cls, socket: str | Path, *, symbols: str | Path | None = None,
               modules: tuple[ModuleSymbols, ...] = (), gdb_binary: str | None = None,
               timeout: float = COMMAND_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT) -> GdbSession:
        """Start gdb, load ``symbols`` (the kernel) and ``modules``, connect to ``socket``.

        The target is stopped when this returns (QEMU stops the guest for gdb).
        """
        from pygdbmi.gdbcontroller import GdbController

        socket = Path(socket)
        if any(c.isspace() for c in str(socket)):
            raise ConfigError(f"gdb cannot connect to a socket path with white space: {socket}")
        check_stub_socket(socket)
        binary = find_gdb(gdb_binary)
        if symbols is not None and not Path(symbols).is_file():
            raise ConfigError(f"no kernel symbol file {symbols}")
        controller = GdbController(command=[binary, "--nx", "--quiet", "--interpreter=mi3"],
                                   time_to_check_for_additional_output_sec=0.02)
        session = cls(controller, socket=socket, symbols=Path(symbols) if symbols else None,
                      timeout=timeout)
        try:
            session._command("-gdb-set confirm off")
            session._command("-gdb-set pagination off")
            session._command("-gdb-set mi-async on")    # commands (interrupt) while the target runs
            if symbols is not None:
                session._command(f"-file-symbol-file {_mi_quote(str(symbols))}")
            for module in modules:
                session.add_symbol_file(module)
            session._command(f"-target-select remote {socket}", timeout=connect_timeout)
            session._stops.clear()          # the stop reported on connecting: the target is stopped
        except BaseException:
            session._kill()
            raise
        return session

    def add_symbol_file(self, module: ModuleSymbols) -> None:
        """Load a module's symbols at its load address (gdb ``add-symbol-file``)."""
        args = ["add-symbol-file", str(module.path), "-s", ".text", hex(module.text)]
        if module.data is not None:
            args += ["-s", ".data", hex(module.data)]
        self.console(shlex.join(args))

    def detach(self) -> None:
        """Remove breakpoints, let the guest run on, and end gdb (also when QEMU is gone)."""
        if self.closed:
            return
        try:
            if self.running:
                self.interrupt()
            self._command("-break-delete")
            self._command("-target-detach")
            self._command("-gdb-exit", expect_exit=True)
        except GdbError:        # the target went away (lab stopped): nothing left to detach from
            pass
        finally:
            self._kill()

    def _kill(self) -> None:
        self.closed = True
        try:
            self._gdb.exit()
        except Exception:       # gdb already gone: nothing left to end
            pass

    def __enter__(self) -> GdbSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # --- execution ---------------------------------------------------------------------------
    def break_at(self, location: str) -> Breakpoint:
        """A breakpoint at a symbol (``probe_tick``, ``zfs_read``) or ``*0xADDRESS``."""
        if not location or any(c in location for c in "\n\"\\"):
            raise ConfigError(f"bad breakpoint location {location!r}")
        try:
            result = self._command(f"-break-insert {location}")
        except GdbError as exc:
            if "not defined" in str(exc) or "No symbol" in str(exc):
                where = f"in {self.symbols}" if self.symbols else "(no kernel symbols are loaded)"
                raise UnknownSymbol(f"no symbol {location!r} {where}") from None
            raise
        bkpt = result.get("bkpt", {})
        return Breakpoint(number=int(bkpt.get("number", 0)), address=_int(bkpt.get("addr")),
                          function=bkpt.get("func", location))

    def cont(self) -> None:
        """Let the guest run (returns at once; :meth:`wait_stop` waits for the next stop)."""
        self._require_stopped("continue")
        self._stops.clear()
        self._command("-exec-continue")
        self.running = True

    def interrupt(self, timeout: float | None = None) -> Stop:
        """Stop the running guest (like Ctrl-C in gdb)."""
        if not self.running:
            raise GdbError("the target is already stopped")
        self._command("-exec-interrupt")
        return self.wait_stop(timeout if timeout is not None else self.timeout)

    def wait_stop(self, timeout: float = 60.0) -> Stop:
        """Wait until the target stops (a breakpoint, a signal); :class:`GdbTimeout` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self._stops:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GdbTimeout(f"the target did not stop within {timeout:g} s "
                                 f"(gdb stub {self.socket})")
            self._read(min(remaining, 0.5))
        self.running = False
        return _stop(self._stops.popleft())

    # --- inspection ----------------------------------------------------------------------------
    def registers(self, names: list[str] | None = None) -> dict[str, int]:
        """Integer registers by name (``rip``, ``rax``, ``eflags``, ...); vector registers are left out."""
        self._require_stopped("read registers")
        if self._register_names is None:
            self._register_names = self._command("-data-list-register-names")["register-names"]
        values = self._command("-data-list-register-values x")["register-values"]
        found: dict[str, int] = {}
        for entry in values:
            index = int(entry["number"])
            name = self._register_names[index] if index < len(self._register_names) else ""
            value = _int(entry.get("value"))
            if name and value is not None:
                found[name] = value
        if names is not None:
            missing = [n for n in names if n not in found]
            if missing:
                raise GdbError(f"no register(s) {', '.join(missing)} on this target")
            return {n: found[n] for n in names}
        return found

    def read_memory(self, address: int, size: int) -> bytes:
        """``size`` bytes of guest memory at virtual ``address``."""
        self._require_stopped("read memory")
        if size <= 0 or address < 0:
            raise ConfigError(f"read_memory needs address >= 0 and size > 0, got {address:#x}, {size}")
        result = self._command(f"-data-read-memory-bytes {address:#x} {size}")
        data = b"".join(bytes.fromhex(block["contents"]) for block in result.get("memory", []))
        if len(data) != size:
            raise GdbError(f"read {len(data)} of {size} bytes at {address:#x}")
        return data

    def backtrace(self, limit: int = 64) -> list[Frame]:
        self._require_stopped("read the stack")
        result = self._command(f"-stack-list-frames 0 {limit - 1}")
        frames = []
        for item in result.get("stack", []):
            frame = item.get("frame", item) if isinstance(item, dict) else {}
            frames.append(Frame(level=int(frame.get("level", len(frames))),
                                address=_int(frame.get("addr")) or 0,
                                function=frame.get("func", "??")))
        return frames

    def symbol_address(self, symbol: str) -> int:
        """The address of ``symbol`` (UnknownSymbol if there is none)."""
        try:
            value = self._command(f"-data-evaluate-expression &{symbol}")["value"]
        except GdbError as exc:
            if "No symbol" in str(exc):
                raise UnknownSymbol(f"no symbol {symbol!r} in {self.symbols or 'the loaded symbols'}") \
                    from None
            raise
        number = _int(value.split()[0] if value.startswith("0x") else value.split()[-1].strip("<>"))
        if number is None:
            raise GdbError(f"cannot read the address of {symbol!r} from {value!r}")
        return number

    def console(self, command: str) -> str:
        """Run a gdb CLI command; its console output as text."""
        result, records = self._command_with_records(f"-interpreter-exec console {_mi_quote(command)}")
        return "".join(r.get("payload") or "" for r in records
                       if r.get("type") == "console" and isinstance(r.get("payload"), str))

    # --- MI plumbing ---------------------------------------------------------------------------
    def _require_stopped(self, what: str) -> None:
        if self.closed:
            raise GdbError("this gdb session is closed")
        if self.running:
            raise GdbError(f"cannot {what} while the target runs: call wait_stop() or interrupt() first")

    def _command(self, command: str, *, timeout: float | None = None,
                 expect_exit: bool = False) -> dict[str, Any]:
        result, _ = self._command_with_records(command, timeout=timeout, expect_exit=expect_exit)
        return result

    def _command_with_records(self, command: str, *, timeout: float | None = None,
                              expect_exit: bool = False) -> tuple[dict[str, Any], list[dict]]:
        if self.closed:
            raise GdbError("this gdb session is closed")
        token = next(self._tokens)
        wait = timeout if timeout is not None else self.timeout
        try:
            self._gdb.write(f"{token}{command}", read_response=False)
        except Exception as exc:       # pygdbmi raises plain IOError/ValueError when gdb died
            raise GdbError(f"gdb is gone ({exc}) while sending {command!r}") from None
        deadline = time.monotonic() + wait
        records: list[dict] = []
        while True:
            for record in self._read(min(max(deadline - time.monotonic(), 0.0), 0.5)):
                records.append(record)
                if record.get("type") == "result" and record.get("token") == token:
                    if record.get("message") == "error":
                        message = (record.get("payload") or {}).get("msg", "error")
                        raise GdbError(f"gdb: {message} (command: {command})")
                    return record.get("payload") or {}, records
            if expect_exit and self._gdb.gdb_process and self._gdb.gdb_process.poll() is not None:
                return {}, records
            if time.monotonic() >= deadline:
                raise GdbTimeout(f"gdb did not answer {command!r} within {wait:g} s")

    def _read(self, timeout: float) -> list[dict]:
        try:
            records = self._gdb.get_gdb_response(timeout_sec=timeout, raise_error_on_timeout=False)
        except Exception as exc:       # pygdbmi: gdb's pipes closed
            raise GdbError(f"lost gdb ({exc})") from None
        for record in records:
            if record.get("type") == "notify" and record.get("message") == "stopped":
                self._stops.append(record.get("payload") or {})
            elif record.get("type") == "notify" and record.get("message") == "running":
                self.running = True
        return records


# --- helpers ---------------------------------------------------------------------------------
def gdb_client_connected(qmp) -> bool:
    """True when a gdb is connected to the stub (the stub serves one client at a time)."""
    for chardev in qmp.execute("query-chardev"):
        if chardev.get("label") == GDB_CHARDEV:
            return not str(chardev.get("filename", "")).startswith("disconnected:")
    return False


def stopped_in_gdb(qmp) -> bool:
    """True when gdb holds the guest's CPUs: QEMU's run state is ``debug`` (a breakpoint or a
    step), or ``paused`` while a gdb client is connected to the stub (QEMU pauses on connect)."""
    status = qmp.status()
    if status == "debug":
        return True
    return status == "paused" and gdb_client_connected(qmp)


def find_gdb(gdb_binary: str | None = None) -> str:
    """The gdb to run: ``gdb_binary``, ``$SMARTOS_LAB_GDB`` or gdb on PATH."""
    wanted = gdb_binary or os.environ.get("SMARTOS_LAB_GDB") or GDB_BINARY
    path = shutil.which(wanted)
    if not path:
        raise HostError(f"gdb ({wanted!r}) not found: apt-get install gdb")
    return path


def check_stub_socket(socket: Path) -> None:
    """The stub socket must exist and be ours alone (0600) inside a private run dir."""
    try:
        st = os.stat(socket)
    except FileNotFoundError:
        raise GdbError(f"no gdb stub socket {socket}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise GdbError(f"{socket} is not a socket")
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise GdbError(f"gdb stub socket {socket} is not private (mode "
                       f"{stat.S_IMODE(st.st_mode):04o}, uid {st.st_uid})")


def _stop(payload: dict) -> Stop:
    frame = payload.get("frame") or {}
    bkpt = payload.get("bkptno")
    return Stop(reason=payload.get("reason", ""), address=_int(frame.get("addr")),
                function=frame.get("func", "??"), breakpoint=int(bkpt) if bkpt else None,
                signal=payload.get("signal-name", ""), raw=payload)


def _int(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None


def _mi_quote(text: str) -> str:
    """A C-string argument for an MI command."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
