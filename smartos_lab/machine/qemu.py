"""QemuMachine: one running QEMU, launched paused, attached, then continued.

Launch order: check inputs, pick the accelerator, make the run dir, reserve
host ports, start QEMU with ``-S`` in its own session (so the lab outlives
this Python process), wait for QMP, connect QMP and the console, ``cont``.
Another process re-attaches by name with :meth:`QemuMachine.attach`.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import (
    ConfigError,
    ImageError,
    LabError,
    LabInUse,
    LabNotFound,
    PortInUse,
    QemuExited,
    QemuNotFound,
    QMPError,
    QMPTimeout,
)
from . import checkpoints as _checkpoints
from .accel import AccelChoice, detect_accel
from .argv import SERIAL_CHARDEV, build_argv, forward_key
from .consoleprotocol import ConsoleProtocol
from .debugger import console_patterns
from .disks import check_disk_image
from .qmp import QMP
from .registry import MachineState, find_machine, orphan_message
from .rundir import RunDir, is_lab_process, proc_cmdline, tail_of, validate_name
from .spec import Disk, DiskBoot, KernelBoot, MachineSpec, Nic, PortForward

QEMU_BINARY = "qemu-system-x86_64"
META_VERSION = 1

ConsoleFactory = Callable[["QemuMachine"], ConsoleProtocol]


class QemuMachine:
    """A QEMU process running one :class:`MachineSpec`.  Use :meth:`launch` or :meth:`attach`."""

    def __init__(self, *, spec: MachineSpec, run_dir: RunDir, pid: int, accel: AccelChoice,
                 ports: dict[str, int], qmp: QMP, serial_log: Path, argv: list[str],
                 proc: subprocess.Popen | None = None,
                 console_factory: ConsoleFactory | None = None):
        self.spec = spec
        self.run_dir = run_dir
        self.pid = pid
        self.accel = accel
        self.ports = ports
        self.qmp = qmp
        self.serial_log = serial_log
        self.argv = argv
        self.startup_seconds: float | None = None   # launch to running (launch() only)
        self._proc = proc
        self._console_factory = console_factory
        self._console: ConsoleProtocol | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        state = "alive" if self.alive() else "dead"
        return f"<QemuMachine {self.name} pid={self.pid} {self.accel.accel} {state}>"

    def __enter__(self) -> QemuMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- start ----------------------------------------------------------------------
    @classmethod
    def launch(cls, spec: MachineSpec, *, serial_log: str | Path | None = None,
               qemu_binary: str | None = None, timeout: float = 30.0,
               console_factory: ConsoleFactory | None = None,
               run_root: Path | None = None) -> QemuMachine:
        """Start ``spec`` and return it running.

        ``serial_log`` (default: in the run dir, removed at shutdown) receives
        everything the guest prints on its serial port.  ``console_factory``
        (machine -> console) replaces the default
        :class:`~smartos_lab.machine.console.Console` connection.
        """
        validate_name(spec.name)
        binary = find_qemu(qemu_binary)
        _check_inputs(spec)
        accel = detect_accel(spec.accel)
        run_dir = RunDir.create(spec.name, run_root)
        proc: subprocess.Popen | None = None
        qmp: QMP | None = None
        machine: QemuMachine | None = None
        try:
            ports = _reserve_ports(spec.nics)
            log = Path(serial_log).resolve() if serial_log else run_dir.serial_log
            log.parent.mkdir(parents=True, exist_ok=True)
            argv = build_argv(spec, qemu_binary=binary, accel=accel, run_dir=run_dir,
                              host_ports=ports, serial_log=log)
            start = time.monotonic()
            with open(run_dir.stderr_log, "wb") as err:
                # umask 077: QEMU's sockets (QMP, console, gdb stub) and logs are 0600
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        close_fds=True, umask=0o077)
            meta = _meta(spec, proc.pid, accel, ports, log, argv)
            run_dir.write_meta(meta)
            qmp = _connect_qmp_at_start(proc, run_dir, argv, timeout, log)
            _check_own_qemu(proc, run_dir)
            _private_sockets(run_dir)
            run_dir.release()       # the name is held by our running QEMU now
            machine = cls(spec=spec, run_dir=run_dir, pid=proc.pid, accel=accel, ports=ports,
                          qmp=qmp, serial_log=log, argv=argv, proc=proc,
                          console_factory=console_factory)
            machine._connect_console(required=console_factory is not None)
            qmp.execute("cont")
            qmp.event_mark()        # wait_event() looks only at events after the start
            machine.startup_seconds = time.monotonic() - start
            meta["startup_seconds"] = round(machine.startup_seconds, 3)
            # what another process (ps, an attach) takes for a kernel debugger's prompt
            meta["debugger_patterns"] = list(console_patterns(machine._console))
            run_dir.write_meta(meta)
            return machine
        except BaseException:
            if machine is not None:
                machine._close_console()
            if qmp is not None:
                qmp.close()
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
            run_dir.remove()        # and lets go of the name lock
            raise

    @classmethod
    def attach(cls, name: str, *, run_root: Path | None = None, timeout: float = 10.0,
               console_factory: ConsoleFactory | None = None, tool: bool = False) -> QemuMachine:
        """Re-attach to the running lab ``name`` (e.g. from another process).

        ``tool``: a short-lived command (checkpoint, restore, console) that
        tries the control socket first, leaving the two lab sockets to the
        long-lived handles (a notebook's lab, a re-attached one).
        """
        found = find_machine(name, run_root)
        if found.state is MachineState.STARTING:
            raise LabInUse(f"lab {name!r} is being started by another process; attach once it runs")
        if found.state is MachineState.ORPHAN:
            raise LabError(orphan_message(name, found.pid))
        if found.state is MachineState.ABSENT:
            stale = found.run_dir
            if stale is None:
                raise LabNotFound(f"lab {name!r} is not running")
            stderr = stale.stderr_tail()
            stale.remove()
            raise LabNotFound(f"lab {name!r} is not running (its QEMU is gone; run dir removed)"
                              + (f"\nqemu stderr:\n{stderr}" if stderr.strip() else ""))
        run_dir, pid = found.run_dir, found.pid
        assert run_dir is not None and pid is not None
        meta = run_dir.read_meta()
        sockets = run_dir.qmp_sockets if tool else (run_dir.qmp_socket, run_dir.attach_socket)
        qmp = _connect_free_qmp(sockets, timeout)
        machine = cls(spec=spec_from_dict(meta.get("spec", {"name": name})), run_dir=run_dir,
                      pid=pid, accel=AccelChoice(**meta["accel"]) if "accel" in meta
                      else AccelChoice("tcg", "unknown"),
                      ports=dict(meta.get("ports", {})), qmp=qmp,
                      serial_log=Path(meta.get("serial_log", run_dir.serial_log)),
                      argv=list(meta.get("argv", proc_cmdline(pid))),
                      console_factory=console_factory)
        return machine

    # --- console --------------------------------------------------------------------
    @property
    def console(self) -> ConsoleProtocol:
        """The serial console (connected on first use if it is not yet)."""
        if self._console is None:
            self._connect_console(required=True)
        assert self._console is not None
        return self._console

    def _connect_console(self, *, required: bool) -> None:
        if self._console_factory is not None:
            self._console = self._console_factory(self)
            return
        try:
            from .console import Console
        except ImportError:
            if required:
                raise
            return
        self._console = Console.connect_unix(self.run_dir.console_socket,
                                             log_path=self.serial_log,
                                             exit_probe=self.exit_error)

    def console_busy(self) -> bool:
        """True when another client holds the serial console socket (it serves one at a time)."""
        if self._console is not None:
            return False
        for chardev in self.qmp.execute("query-chardev"):
            if chardev.get("label") == SERIAL_CHARDEV:
                return not str(chardev.get("filename", "")).startswith("disconnected:")
        return False

    # --- liveness -------------------------------------------------------------------
    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return is_lab_process(self.pid, self.name)

    def exit_error(self) -> QemuExited | None:
        """None while QEMU runs; else a :class:`QemuExited` with exit status, stderr and console tail."""
        if self.alive():
            return None
        rc = self._proc.returncode if self._proc is not None else None
        how = ""
        if rc is not None and rc < 0:
            how = f" (killed by {signal.Signals(-rc).name})"
        elif rc is not None:
            how = f" with status {rc}"
        return QemuExited(f"QEMU of lab {self.name!r} (pid {self.pid}) exited{how}",
                          returncode=rc, stderr=self.run_dir.stderr_tail(), argv=self.argv,
                          tail=self._console_tail(), log_path=str(self.serial_log))

    def _console_tail(self) -> str:
        if self._console is not None:
            try:
                return self._console.tail()
            except Exception:       # the console is best effort here
                pass
        return tail_of(self.serial_log, 3000)

    # --- stop -----------------------------------------------------------------------
    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop QEMU: close the console, QMP ``quit`` (SIGTERM without QMP), wait, SIGKILL
        if needed; remove the run dir."""
        self._close_console()
        if self.alive():
            try:
                self.qmp.execute("quit", timeout=min(timeout, 5.0))
            except QMPError:
                self._signal(signal.SIGTERM)     # QMP is gone: QEMU also quits on SIGTERM
            if not self._wait_exit(timeout):
                self._signal(signal.SIGKILL)
                self._wait_exit(10.0)
        self._finish()

    def detach(self) -> None:
        """Close the console and QMP but leave QEMU running (re-attach with :meth:`attach`)."""
        self._close_console()
        self._console = None
        self.qmp.close()

    def kill(self) -> None:
        """SIGKILL QEMU at once and clean up."""
        self._close_console()
        self._signal(signal.SIGKILL)
        self._wait_exit(10.0)
        self._finish()

    def _close_console(self) -> None:
        if self._console is not None:
            try:
                self._console.close()
            except Exception:       # closing must not stop the shutdown
                pass

    def _finish(self) -> None:
        self.qmp.close()
        if self.run_dir.pid() in (self.pid, None):
            self.run_dir.remove()

    def _signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _wait_exit(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_pid_gone(self.pid, self.name, timeout)

    # --- checkpoints ----------------------------------------------------------------
    def checkpoint(self, name: str, *, timeout: float = 300.0) -> float:
        """Save the whole VM (RAM + disks) as checkpoint ``name``; returns seconds taken."""
        return _checkpoints.save(self.qmp, name, timeout=timeout)

    def restore(self, name: str, *, timeout: float = 300.0) -> float:
        """Return the whole VM to checkpoint ``name``; returns seconds taken."""
        return _checkpoints.restore(self.qmp, name, timeout=timeout)

    def checkpoints(self) -> list[_checkpoints.CheckpointInfo]:
        return _checkpoints.list_checkpoints(self.qmp)

    def delete_checkpoint(self, name: str) -> None:
        _checkpoints.delete(self.qmp, name)


# --- helpers ------------------------------------------------------------------------
def find_qemu(qemu_binary: str | None = None) -> str:
    """The QEMU binary to run: ``qemu_binary``, ``$SMARTOS_LAB_QEMU`` or qemu-system-x86_64 on PATH."""
    wanted = qemu_binary or os.environ.get("SMARTOS_LAB_QEMU") or QEMU_BINARY
    path = shutil.which(wanted)
    if not path:
        raise QemuNotFound(f"QEMU binary {wanted!r} not found: apt-get install qemu-system-x86")
    return path


def wait_pid_gone(pid: int, name: str, timeout: float) -> bool:
    """Poll until ``pid`` is no longer lab ``name``'s QEMU (gone or a zombie)."""
    deadline = time.monotonic() + timeout
    while is_lab_process(pid, name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _check_inputs(spec: MachineSpec) -> None:
    boot = spec.boot
    if isinstance(boot, KernelBoot):
        if not Path(boot.kernel).is_file():
            raise ImageError(f"no such kernel: {boot.kernel}")
        for module in boot.modules:
            path = Path(module.split()[0]) if module.split() else Path("")
            if not path.is_file():
                raise ImageError(f"no such kernel module / initrd: {path}")
    for index, disk in enumerate(spec.disks):
        bootable = isinstance(boot, DiskBoot) and index == 0 and disk.media == "disk"
        check_disk_image(disk.path, fmt=disk.format, bootable=bootable)


def _private_sockets(run_dir: RunDir) -> None:
    """Make QEMU's unix sockets 0600 (QEMU creates them 0777 & ~umask, i.e. 0700)."""
    for entry in os.scandir(run_dir.path):
        if entry.name.endswith(".sock") and stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
            os.chmod(entry.path, 0o600)


def _reserve_ports(nics: tuple[Nic, ...]) -> dict[str, int]:
    """Host port per forward key: fixed ports checked free, port 0 replaced by a free one."""
    ports: dict[str, int] = {}
    taken: set[tuple[str, int]] = set()
    for nic in nics:
        for fw in nic.forwards:
            key = forward_key(fw)
            if key in ports:
                raise ConfigError(f"two port forwards are both named {key!r}")
            if fw.host_port:
                if (fw.host_addr, fw.host_port) in taken:
                    raise ConfigError(f"host port {fw.host_port} is forwarded twice")
                _check_port_free(fw, key)
                ports[key] = fw.host_port
            else:
                ports[key] = _free_port(fw.host_addr, taken)
            taken.add((fw.host_addr, ports[key]))
    return ports


def _check_port_free(fw: PortForward, key: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((fw.host_addr, fw.host_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"host port {fw.host_addr}:{fw.host_port} (forward {key!r} to guest "
                                f"port {fw.guest_port}) is already in use") from None
            raise ConfigError(f"cannot use host address {fw.host_addr}:{fw.host_port}: {exc}") from exc


def _free_port(addr: str, taken: set[tuple[str, int]]) -> int:
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
            port = s.getsockname()[1]
        if (addr, port) not in taken:
            return port
    raise PortInUse(f"could not find a free port on {addr}")


def _connect_qmp_at_start(proc: subprocess.Popen, run_dir: RunDir, argv: list[str],
                          timeout: float, serial_log: Path) -> QMP:
    """Wait for QEMU's QMP socket and connect; QemuExited if QEMU dies first."""
    deadline = time.monotonic() + timeout

    def exited() -> QemuExited:
        return QemuExited(f"QEMU exited during start-up with status {proc.returncode}",
                          returncode=proc.returncode, stderr=run_dir.stderr_tail(), argv=argv,
                          log_path=str(serial_log))

    while not run_dir.qmp_socket.exists():
        if proc.poll() is not None:
            raise exited()
        if time.monotonic() > deadline:
            raise QMPTimeout(f"QEMU (pid {proc.pid}) did not open its QMP socket within "
                             f"{timeout:g} s\nqemu stderr:\n{run_dir.stderr_tail()}")
        time.sleep(0.01)
    while True:
        qmp = QMP(run_dir.qmp_socket)
        try:
            return qmp.connect(timeout=max(1.0, deadline - time.monotonic()))
        except QMPTimeout:
            qmp.close()
            raise
        except QMPError:
            # the socket file exists between QEMU's bind() and listen(): retry briefly
            qmp.close()
            if proc.poll() is not None:
                raise exited() from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _check_own_qemu(proc: subprocess.Popen, run_dir: RunDir) -> None:
    """Raise :class:`LabInUse` unless the QEMU we started is alive and the run dir's pid file
    is its own (QMP must not be connected to another launch's QEMU)."""
    try:
        written = int(run_dir.pidfile.read_text().strip())
    except (OSError, ValueError):
        written = None
    if proc.poll() is not None or written != proc.pid:
        stderr = run_dir.stderr_tail()
        raise LabInUse(f"lab {run_dir.name!r}: the QEMU started here (pid {proc.pid}) "
                       + ("exited" if proc.poll() is not None else "does not own the run dir")
                       + f"; the run dir's pid file names {written}"
                       + (f"\nqemu stderr:\n{stderr.strip()}" if stderr.strip() else ""))


def _connect_free_qmp(sockets: tuple[Path, ...], timeout: float) -> QMP:
    """Connect to the first QMP socket no other client holds (one client per socket).

    A held socket shows up as no greeting (QMPTimeout) or, once its listen
    backlog is full of abandoned attempts, as a refused connect (QMPError):
    either way the next socket is tried.
    """
    failures = []
    for sock in sockets:
        qmp = QMP(sock, timeout=timeout)
        try:
            return qmp.connect(timeout=min(timeout, 2.0))
        except QMPError as err:          # QMPTimeout included
            qmp.close()
            failures.append(f"{sock.name}: {err}")
    raise QMPTimeout("every QMP socket of the lab is held by another client or refuses: "
                     + "; ".join(failures))


def _meta(spec: MachineSpec, pid: int, accel: AccelChoice, ports: dict[str, int],
          serial_log: Path, argv: list[str]) -> dict[str, Any]:
    now = time.time()
    return {
        "version": META_VERSION,
        "name": spec.name,
        "pid": pid,
        "uid": os.getuid(),
        "started": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="seconds"),
        "started_ts": now,
        "accel": dataclasses.asdict(accel),
        "ports": ports,
        "serial_log": str(serial_log),
        "argv": argv,
        "spec": spec_to_dict(spec),
    }


def spec_to_dict(spec: MachineSpec) -> dict[str, Any]:
    """A JSON-ready dict of ``spec`` (paths as strings, tuples as lists)."""
    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value
    return convert(dataclasses.asdict(spec))


def spec_from_dict(data: dict[str, Any]) -> MachineSpec:
    """Inverse of :func:`spec_to_dict`."""
    data = dict(data)
    boot = data.pop("boot", None) or {"kind": "disk"}
    if boot.get("kind") == "kernel":
        boot_obj: DiskBoot | KernelBoot = KernelBoot(kernel=Path(boot["kernel"]),
                                                     cmdline=boot.get("cmdline", ""),
                                                     modules=tuple(boot.get("modules", ())))
    else:
        boot_obj = DiskBoot()
    disks = tuple(Disk(**{**d, "path": Path(d["path"])}) for d in data.pop("disks", ()))
    nics = tuple(Nic(model=n.get("model", "virtio"), mac=n.get("mac", ""),
                     forwards=tuple(PortForward(**f) for f in n.get("forwards", ())))
                 for n in data.pop("nics", ()))
    fields = {f.name for f in dataclasses.fields(MachineSpec)}
    rest = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in fields}
    return MachineSpec(boot=boot_obj, disks=disks, nics=nics, **rest)
