"""A lab's saved state and the one answer to "what state is lab NAME in?".

:class:`LabDir` is ``<home>/labs/<name>/``: its config (:class:`LabConfig`,
``lab.json``), disks, secrets and serial log, which survive restarts.
:func:`lookup` tells whether a lab is running, being started, orphaned,
stopped or absent, from the lab dir and the machine layer's run dirs; every
caller (``Lab.up``/``attach``, the CLI, the notebook magics) asks it.
"""
from __future__ import annotations

import enum
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .atomic import write_atomic
from .errors import ConfigError, LabError, LabInUse, LabNotFound
from .machine.registry import MachineState, find_machine, orphan_message
from .machine.rundir import RunDir, validate_name


# --- persistent state ------------------------------------------------------------------
@dataclass
class LabConfig:
    """What a lab was created with (``lab.json``); reused by every later ``up``."""

    name: str
    strategy: str = "smartos"
    image: str = ""                 # local path of the image/platform the lab boots
    release: str = ""               # release timestamp when known
    boot: str = "direct"            # "direct" (platform, Multiboot) or "usb" (USB image, loader)
    memory_mib: int = 4096
    cpus: int = 2
    disk_count: int = 1
    disk_size: int = 0              # bytes per zones disk; 0 = sized from RAM
    accel: str = "auto"
    kernel_args: str = ""
    hostname: str = ""
    set_up: bool = False            # first-boot setup has completed
    gdb: bool = False               # start QEMU with its gdb stub (Lab.up(gdb=True))
    # the strategy's own state (SmartOS: smartos.bringup.SmartOSState), a dict once loaded
    strategy_state: Any = field(default_factory=dict)
    origin: dict[str, Any] = field(default_factory=dict)   # clones: see smartos_lab.clones.Origin


class LabDir:
    """``<home>/labs/<name>/``: the files of one lab."""

    def __init__(self, name: str, root: Path | None = None):
        self.name = validate_name(name)
        self.path = (Path(root) if root else paths.labs_dir()) / name

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    @property
    def config_file(self) -> Path:
        return self.file("lab.json")

    @property
    def serial_log(self) -> Path:
        return self.file("serial.log")

    @property
    def disks_dir(self) -> Path:
        return self.file("disks")

    @property
    def ssh_key(self) -> Path:
        """The lab's SSH private key (its ``.pub`` beside it)."""
        return self.file("ssh_key")

    def key_file(self) -> Path | None:
        return self.ssh_key if self.ssh_key.is_file() else None

    def exists(self) -> bool:
        return self.config_file.is_file()

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.chmod(0o700)

    def remove(self) -> None:
        """Delete the lab directory (disks, secrets, serial log)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def load(self) -> LabConfig:
        try:
            data = json.loads(self.config_file.read_text())
        except FileNotFoundError:
            raise LabNotFound(f"no lab named {self.name!r} (no {self.config_file})") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.config_file} is damaged: {exc}") from exc
        if "extra" in data and "strategy_state" not in data:      # written before strategy_state
            data["strategy_state"] = data.pop("extra")
        known = {f for f in LabConfig.__dataclass_fields__}
        return LabConfig(**{k: v for k, v in data.items() if k in known})

    def save(self, config: LabConfig) -> None:
        self.create()
        write_atomic(self.config_file, json.dumps(asdict(config), indent=2) + "\n")


def lab_names(root: Path | None = None) -> list[str]:
    """Names of all labs that have a lab directory (running or not)."""
    base = Path(root) if root else paths.labs_dir()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "lab.json").is_file())


# --- the one lifecycle answer --------------------------------------------------------------
class LabState(enum.Enum):
    RUNNING = "running"     # its QEMU runs (Lab.attach works)
    STARTING = "starting"   # another process is launching it right now
    ORPHAN = "orphan"       # a QEMU of it runs without its run dir (stop it, then start again)
    STOPPED = "stopped"     # not running; its lab directory (disks, settings) is kept
    ABSENT = "absent"       # no such lab


@dataclass(frozen=True)
class LabLookup:
    """What :func:`lookup` found: the state and what is known (pid, run dir, lab dir)."""

    name: str
    state: LabState
    pid: int | None = None
    run_dir: RunDir | None = None
    lab_dir: LabDir | None = None       # None: no lab.json (e.g. a bare QemuMachine)
    labs_root: Path | None = None       # where it was looked for (None: the default places)
    run_root: Path | None = None

    def config(self) -> LabConfig:
        """The saved settings, or defaults for a machine launched without a lab dir."""
        return self.lab_dir.load() if self.lab_dir is not None else LabConfig(name=self.name)

    def require_running(self) -> LabLookup:
        """Return self if the lab runs, else raise the one error that says why not."""
        if self.state is LabState.RUNNING:
            return self
        if self.state is LabState.STOPPED:
            raise LabNotFound(f"lab {self.name!r} is stopped; start it with "
                              f"'smartos-lab up {self.name}' or Lab.up({self.name!r})")
        raise self.error()

    def require_exists(self) -> LabLookup:
        if self.state is LabState.ABSENT:
            raise self.error()
        return self

    def error(self) -> LabError:
        """The error for a lab that cannot be used as it is (absent, orphaned, starting)."""
        if self.state is LabState.ORPHAN:
            return LabError(orphan_message(self.name, self.pid))
        if self.state is LabState.STARTING:
            return LabInUse(f"lab {self.name!r} is being started by another process; try again "
                            "once it runs")
        return LabNotFound(no_such_lab_message(self.name, self.labs_root, self.run_root))


def lookup(name: str, labs_root: Path | None = None, run_root: Path | None = None) -> LabLookup:
    """Is lab ``name`` running, being started, orphaned, stopped or absent?  Changes nothing."""
    lab_dir = LabDir(name, labs_root)
    saved = lab_dir if lab_dir.exists() else None
    found = find_machine(name, run_root)
    state = {MachineState.RUNNING: LabState.RUNNING, MachineState.STARTING: LabState.STARTING,
             MachineState.ORPHAN: LabState.ORPHAN}.get(found.state)
    if state is None:
        state = LabState.STOPPED if saved is not None else LabState.ABSENT
    return LabLookup(name, state, found.pid, found.run_dir, saved, labs_root, run_root)


def no_such_lab_message(name: str, labs_root: Path | None = None,
                        run_root: Path | None = None) -> str:
    """``no lab named 'x'`` plus the labs there are (one message for every way of asking)."""
    names = sorted(set(lab_names(labs_root)) | set(_running_names(run_root)))
    known = (f"labs here: {', '.join(names)}" if names
             else f"there are no labs yet; 'smartos-lab up {name}' makes one")
    return f"no lab named {name!r} ({known})"


def _running_names(run_root: Path | None = None) -> list[str]:
    root = Path(run_root) if run_root is not None else paths.run_root()
    if not root.is_dir():
        return []
    return [p.name for p in root.iterdir()
            if p.is_dir() and not p.is_symlink() and RunDir(p).live_pid() is not None]
