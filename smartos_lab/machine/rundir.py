"""One private run directory per running lab.

``<run root>/<name>/`` (mode 0700, owned by us) holds QEMU's sockets, pid file,
stderr log and ``machine.json`` (what another process needs to re-attach).
Unix socket paths are limited to 107 bytes, so the run root is kept short.

Owning a name is atomic: :meth:`RunDir.create` takes an exclusive ``flock`` on
``<run root>/.<name>.lock`` and the launch holds it until its QEMU runs (pid
file written, QMP connected).  A second launch of the name fails at once with
:class:`LabInUse`, and nobody removes a run dir whose lock is held
(:meth:`RunDir.launching`).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from .. import paths
from ..atomic import write_atomic
from ..errors import ConfigError, LabInUse, LabNotFound, RunDirError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
SUN_PATH_MAX = 107          # sizeof(sockaddr_un.sun_path) - 1 for the NUL

_SOCKETS = ("qmp.sock", "qmp2.sock", "ctl.sock", "console.sock", "gdb.sock")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid lab name, else raise :class:`ConfigError`."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"invalid lab name {name!r}: use 1-40 characters from A-Z a-z 0-9 _ . -, "
            "starting with a letter or digit")
    return name


def check_private_dir(path: Path, what: str) -> None:
    """Raise :class:`RunDirError` unless ``path`` is a directory we own, mode 0700 (no group/other bits)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise RunDirError(f"{what} {path} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunDirError(f"{what} {path} is not a directory")
    if st.st_uid != os.getuid():
        raise RunDirError(
            f"{what} {path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}); "
            "another user could reach the lab's sockets. Remove it or set SMARTOS_LAB_RUNDIR")
    if st.st_mode & 0o077:
        raise RunDirError(
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be private (0700). "
            f"Fix: chmod 700 {path}")


def ensure_run_root(root: Path | None = None) -> Path:
    """Create the run root (0700) if needed and check it is private."""
    root = Path(root) if root is not None else paths.run_root()
    if not root.exists():
        try:
            root.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise RunDirError(f"cannot create run root {root}: {exc}") from exc
    check_private_dir(root, "run root")
    return root


class RunDir:
    """The run directory of one lab (it may or may not exist yet)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock: int | None = None       # fd of the held name lock (between create and release)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def qmp_socket(self) -> Path:
        """QMP socket of the process that owns the lab."""
        return self.path / "qmp.sock"

    @property
    def attach_socket(self) -> Path:
        """QMP socket for a second handle (:meth:`QemuMachine.attach` while the owner lives)."""
        return self.path / "qmp2.sock"

    @property
    def qmp_sockets(self) -> tuple[Path, ...]:
        """Every QMP socket, in the order tools should try them."""
        return (self.control_socket, self.attach_socket, self.qmp_socket)

    @property
    def control_socket(self) -> Path:
        """A second QMP socket for tools (``ps``, ``down``) while the owner holds ``qmp_socket``."""
        return self.path / "ctl.sock"

    @property
    def console_socket(self) -> Path:
        return self.path / "console.sock"

    @property
    def gdb_socket(self) -> Path:
        """QEMU's gdb stub (only for a machine launched with ``MachineSpec(gdb=True)``)."""
        return self.path / "gdb.sock"

    @property
    def serial_log(self) -> Path:
        return self.path / "serial.log"

    @property
    def pidfile(self) -> Path:
        return self.path / "qemu.pid"

    @property
    def stderr_log(self) -> Path:
        return self.path / "qemu.log"

    @property
    def meta_file(self) -> Path:
        return self.path / "machine.json"

    @property
    def lock_file(self) -> Path:
        """Beside the run dir (not in it: removing a dead run dir must not drop the lock)."""
        return self.path.parent / f".{self.name}.lock"

    # --- life cycle -----------------------------------------------------------
    @classmethod
    def create(cls, name: str, root: Path | None = None) -> RunDir:
        """Make a fresh private run dir for ``name``.

        A leftover dir of a dead lab is emptied and reused; one holding a live
        lab is refused.
        """
        validate_name(name)
        root = ensure_run_root(root)
        rd = cls(root / name)
        longest = max(len(os.fsencode(str(rd.path / s))) for s in _SOCKETS)
        if longest > SUN_PATH_MAX:
            raise RunDirError(
                f"socket path {rd.path / 'console.sock'} is {longest} bytes; unix sockets allow "
                f"{SUN_PATH_MAX}. Use a shorter SMARTOS_LAB_RUNDIR (e.g. /tmp/sl) or lab name")
        if not rd._acquire():
            raise LabInUse(f"lab {name!r} is being started by another process (lock {rd.lock_file} "
                           "is held); wait for it, or see 'smartos-lab ps'")
        try:
            if os.path.lexists(rd.path):
                check_private_dir(rd.path, "run dir")
                pid = rd.live_pid()
                if pid is not None:
                    raise LabInUse(f"lab {name!r} is already running (QEMU pid {pid}, run dir {rd.path})")
                shutil.rmtree(rd.path, ignore_errors=True)      # a dead lab's leftovers
            rd.path.mkdir(mode=0o700)
        except BaseException:
            rd.release()
            raise
        return rd

    def _acquire(self) -> bool:
        """Take the name lock without waiting; False if another process holds it."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def release(self) -> None:
        """Let go of the name lock (the launch is over: its QEMU runs, or it failed)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def launching(self) -> bool:
        """True while a launch holds this name's lock (its run dir may not have a pid yet)."""
        if self._lock is not None:
            return True
        try:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)          # closing drops a lock we took just to look
        return False

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:       # interpreter shutdown: the fd closes with the process anyway
            pass

    @classmethod
    def open(cls, name: str, root: Path | None = None) -> RunDir:
        """The existing run dir of ``name``; :class:`LabNotFound` if there is none."""
        validate_name(name)
        root = Path(root) if root is not None else paths.run_root()
        if root.is_dir():
            check_private_dir(root, "run root")     # another user's labs: say so, not "no such lab"
        rd = cls(root / name)
        if not os.path.lexists(rd.path):
            raise LabNotFound(f"no lab named {name!r} (no run dir {rd.path})")
        check_private_dir(rd.path, "run dir")
        return rd

    def remove(self) -> None:
        """Delete the run dir (and let go of the name lock if this process holds it)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def exists(self) -> bool:
        return self.path.is_dir()

    # --- contents -----------------------------------------------------------------
    def write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.meta_file, json.dumps(meta, indent=2, default=str), mode=0o600)

    def read_meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_file.read_text())
        except (OSError, ValueError):
            return {}

    def pid(self) -> int | None:
        """The pid QEMU wrote to its pid file, else the one in machine.json."""
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            pid = self.read_meta().get("pid")
            return pid if isinstance(pid, int) else None

    def live_pid(self) -> int | None:
        """The pid of this lab's QEMU if that process is alive, else None."""
        pid = self.pid()
        if pid is not None and is_lab_process(pid, self.name):
            return pid
        return None

    def stderr_tail(self, limit: int = 4000) -> str:
        return tail_of(self.stderr_log, limit)


def lab_name_arg(name: str) -> str:
    """The ``-name`` value that marks a QEMU as this lab's (parseable from /proc/*/cmdline)."""
    return f"smartos-lab:{name},process=sl-{name}"


def lab_name_from_cmdline(argv: list[str]) -> str | None:
    """The lab name in a QEMU command line made by :func:`lab_name_arg`, else None."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "-name":
            value = argv[i + 1].split(",", 1)[0]
            if value.startswith("guest="):
                value = value[len("guest="):]
            if value.startswith("smartos-lab:"):
                return value[len("smartos-lab:"):]
    return None


def proc_cmdline(pid: int) -> list[str]:
    """A process's argv from /proc (empty for zombies and vanished processes)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(a) for a in raw.split(b"\0")[:-1]] if raw else []


def proc_uid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def proc_rss_mib(pid: int | None) -> int:
    """Resident memory of process ``pid`` in MiB (0 if unknown or gone)."""
    if pid is None:
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def is_lab_process(pid: int, name: str) -> bool:
    """True if ``pid`` is a live QEMU of ours (same uid) carrying ``-name smartos-lab:<name>``."""
    if pid <= 0 or proc_uid(pid) != os.getuid():
        return False
    argv = proc_cmdline(pid)
    return bool(argv) and lab_name_from_cmdline(argv) == name


def tail_of(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` bytes of a text file ("" if it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
