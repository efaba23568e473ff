"""Which labs are running, and stopping them (also from another process).

Labs are found through their run dirs.  A run dir whose QEMU is gone is
reported once as ``dead`` and removed.  QEMUs of ours (same uid, ``-name
smartos-lab:<name>``) whose run dir was deleted are ``orphan``s.
:func:`find_machine` answers for one name what the machine layer can know
(running / starting / orphan / absent); the lab layer adds "stopped".
A running lab is shown as ``gdb`` while gdb holds its CPUs (asked over QMP)
and as ``kmdb`` when its serial log ends at its kernel debugger's prompt
(:mod:`.debugger`: what the guest printed last; only the process holding the
console sees more, e.g. that ``:c`` was typed a moment ago).
"""
from __future__ import annotations

import enum
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import paths
from ..errors import HostError, LabInUse, LabNotFound, QMPError
from .debugger import log_at_prompt, meta_patterns
from .gdb import stopped_in_gdb
from .qmp import QMP
from .rundir import (
    RunDir,
    check_private_dir,
    is_lab_process,
    lab_name_from_cmdline,
    proc_cmdline,
    proc_uid,
    validate_name,
)

# gdb: CPUs stopped by gdb on the stub; kmdb: the serial log ends at a kernel debugger's prompt
STATES = ("running", "paused", "gdb", "kmdb", "dead", "orphan")


class MachineState(enum.Enum):
    RUNNING = "running"         # its QEMU runs and its run dir names it
    STARTING = "starting"       # another process is launching it (holds the name lock)
    ORPHAN = "orphan"           # a QEMU of that name runs, but without its run dir
    ABSENT = "absent"           # no QEMU of that name (a dead one's run dir may be left)


@dataclass(frozen=True)
class MachineLookup:
    """What :func:`find_machine` found for one name."""

    name: str
    state: MachineState
    pid: int | None = None
    run_dir: RunDir | None = None   # RUNNING/STARTING; ABSENT: a dead lab's leftover, if any


def find_machine(name: str, root: Path | None = None) -> MachineLookup:
    """The one answer to "is a QEMU of lab ``name`` there?" (nothing is changed or removed)."""
    validate_name(name)
    root = Path(root) if root is not None else paths.run_root()
    if root.is_dir():
        check_private_dir(root, "run root")     # another user's labs: say so, not "no such lab"
    rd = RunDir(root / name)
    if rd.launching():              # until its QMP answers, even if its pid is known
        return MachineLookup(name, MachineState.STARTING, rd.live_pid(), rd)
    if os.path.lexists(rd.path):
        check_private_dir(rd.path, "run dir")
        pid = rd.live_pid()
        if pid is not None:
            return MachineLookup(name, MachineState.RUNNING, pid, rd)
    for proc in orphan_processes():
        if proc.name == name:
            return MachineLookup(name, MachineState.ORPHAN, proc.pid)
    return MachineLookup(name, MachineState.ABSENT, None, rd if rd.exists() else None)


@dataclass(frozen=True)
class LabStatus:
    name: str
    pid: int | None
    state: str                      # running | paused | gdb | kmdb | dead | orphan
    run_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    accel: str = ""
    started: str = ""               # ISO time (UTC)
    qemu_status: str = ""           # QEMU's own run state, when QMP answered
    serial_log: str = ""


@dataclass(frozen=True)
class QemuProcess:
    """A QEMU of ours found in /proc."""

    pid: int
    name: str
    argv: list[str]

    @property
    def pidfile(self) -> Path | None:
        return _arg_after(self.argv, "-pidfile")

    @property
    def run_dir(self) -> Path | None:
        pidfile = self.pidfile
        return pidfile.parent if pidfile else None


def running_labs(root: Path | None = None, *, probe_timeout: float = 1.0) -> list[LabStatus]:
    """All labs under the run root plus orphan QEMUs, sorted by name."""
    root = Path(root) if root is not None else paths.run_root()
    labs: list[LabStatus] = []
    if root.is_dir():
        check_private_dir(root, "run root")
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                status = _status_of(RunDir(entry), probe_timeout)
                if status is not None:
                    labs.append(status)
    labs += [_orphan_status(p) for p in orphan_processes()]
    return sorted(labs, key=lambda s: (s.name, s.state))


def stop(name: str, timeout: float = 10.0, root: Path | None = None) -> LabStatus:
    """Stop lab ``name`` (QMP ``quit``, then SIGTERM, then SIGKILL) or an orphan of that name.

    Returns the lab's status before it was stopped; :class:`LabNotFound` if
    there is no such lab.
    """
    validate_name(name)
    root = Path(root) if root is not None else paths.run_root()
    if root.is_dir():
        check_private_dir(root, "run root")     # another user's labs: say so, not "no such lab"
    rd = RunDir(root / name)
    if rd.launching():
        raise LabInUse(f"lab {name!r} is being started by another process; stop it once it runs")
    if os.path.lexists(rd.path):
        check_private_dir(rd.path, "run dir")
        status = _status_of(rd, probe_timeout=1.0)
        pid = rd.live_pid()
        if pid is not None:
            asked = _quit_via_qmp(rd, min(timeout, 5.0))
            _terminate(pid, name, timeout if asked else 0.0)
        rd.remove()
        if status is not None:
            return status
    for proc in orphan_processes():
        if proc.name == name:
            status = _orphan_status(proc)
            _terminate(proc.pid, name, 0.0)
            return status
    raise LabNotFound(f"no lab named {name!r} (run root {root})")


def our_qemu_processes() -> list[QemuProcess]:
    """Live QEMU processes of this user that carry ``-name smartos-lab:<name>``."""
    found = []
    uid = os.getuid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if proc_uid(pid) != uid:
            continue
        argv = proc_cmdline(pid)
        if not argv or not os.path.basename(argv[0]).startswith("qemu-system"):
            continue
        name = lab_name_from_cmdline(argv)
        if name is not None:
            found.append(QemuProcess(pid, name, argv))
    return found


def orphan_message(name: str, pid: int | None) -> str:
    """What to tell a user whose lab ``name`` is an orphan QEMU (it holds the lab's disks)."""
    return (f"a QEMU of lab {name!r} (pid {pid}) runs without its run directory (was "
            f"{paths.run_root()} cleaned?); it holds the lab's disks. Stop it with "
            f"'smartos-lab down {name}', then start the lab again")


def orphan_processes() -> list[QemuProcess]:
    """Our QEMUs whose run dir (the directory of their ``-pidfile``) is gone."""
    orphans = []
    for proc in our_qemu_processes():
        rd = proc.run_dir
        if rd is None or not rd.is_dir():
            orphans.append(proc)
            continue
        pid = RunDir(rd).pid()
        if pid is not None and pid != proc.pid:      # the dir now belongs to another QEMU
            orphans.append(proc)
    return orphans


# --- helpers ------------------------------------------------------------------------
def _status_of(rd: RunDir, probe_timeout: float) -> LabStatus | None:
    """Status of the lab in ``rd``; a dead lab's run dir is removed (and reported this once)."""
    if rd.launching():
        return None                 # a launch in progress: its pid may not be written yet
    meta = rd.read_meta()
    pid = rd.pid()
    common = dict(run_dir=rd.path, ports=dict(meta.get("ports", {})),
                  accel=(meta.get("accel") or {}).get("accel", ""),
                  started=meta.get("started", ""), serial_log=meta.get("serial_log", ""))
    if pid is None and not meta:
        # a launch in progress writes machine.json right after starting QEMU
        if time.time() - _mtime(rd.path) < 30:
            return None
    if pid is None or not is_lab_process(pid, rd.name):
        rd.remove()
        return LabStatus(rd.name, pid, "dead", **common)
    qemu_status, in_gdb = _probe_status(rd, probe_timeout)
    state = "paused" if qemu_status and qemu_status != "running" else "running"
    if in_gdb:
        state = "gdb"
    elif state == "running" and log_at_prompt(common["serial_log"] or rd.serial_log,
                                              meta_patterns(meta)):
        state = "kmdb"              # what the guest printed last is its debugger's prompt
    return LabStatus(rd.name, pid, state, qemu_status=qemu_status, **common)


def _probe_status(rd: RunDir, timeout: float) -> tuple[str, bool]:
    """QEMU's run state over a free QMP socket ("" if none answers), and whether gdb holds it."""
    for sock in rd.qmp_sockets:
        qmp = QMP(sock, timeout=timeout)
        try:
            qmp.connect()
            status = qmp.status()
            return status, rd.gdb_socket.exists() and stopped_in_gdb(qmp)
        except QMPError:
            continue
        finally:
            qmp.close()
    return "", False


def _orphan_status(proc: QemuProcess) -> LabStatus:
    ports = {}
    accel = ""
    for i, arg in enumerate(proc.argv[:-1]):
        if arg == "-netdev":
            for opt in proc.argv[i + 1].split(","):
                if opt.startswith("hostfwd=tcp:"):
                    # hostfwd=tcp:ADDR:PORT-:GPORT
                    host, _, guest = opt[len("hostfwd=tcp:"):].partition("-")
                    ports[f"tcp/{guest.rsplit(':', 1)[-1]}"] = int(host.rsplit(":", 1)[-1])
        elif arg == "-accel":
            accel = proc.argv[i + 1].split(",")[0]
    return LabStatus(proc.name, proc.pid, "orphan", proc.run_dir or Path("?"), ports, accel,
                     _process_start(proc.pid))


def _quit_via_qmp(rd: RunDir, timeout: float) -> bool:
    """Ask QEMU to quit; False if no QMP socket answered."""
    for sock in rd.qmp_sockets:
        qmp = QMP(sock, timeout=timeout)
        try:
            qmp.connect(timeout=1.0)
            qmp.execute("quit")
            return True
        except QMPError:
            continue
        finally:
            qmp.close()
    return False


def _terminate(pid: int, name: str, grace: float) -> None:
    """Give ``pid`` ``grace`` seconds to end, then SIGTERM, then SIGKILL."""
    for sig, wait in ((None, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        if sig is not None and is_lab_process(pid, name):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + wait
        while is_lab_process(pid, name):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return
    raise HostError(f"QEMU pid {pid} of lab {name!r} survived SIGKILL")


def _process_start(pid: int) -> str:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])           # field 22: starttime, in clock ticks since boot
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return ""
    started = btime + ticks / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(started, tz=timezone.utc).isoformat(timespec="seconds")


def _arg_after(argv: list[str], flag: str) -> Path | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            return Path(argv[i + 1])
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
