"""The Lab facade: one named lab that is booted, set up and logged in.

``Lab.up(name)`` either attaches to the running lab of that name (e.g. after
a notebook kernel restart) or boots it: the *strategy* (labgrid's term) knows
how to prepare, boot and log in to a given guest OS.  The default strategy is
SmartOS (:class:`smartos_lab.smartos.bringup.SmartOSStrategy`); tests use a
Linux test-guest strategy to exercise this facade for real.

A lab's state lives in ``<home>/labs/<name>/`` (:class:`~smartos_lab.labstate.LabDir`):
its config, disks, secrets and serial log survive restarts; :func:`lookup`
(:mod:`smartos_lab.labstate`) says what state a lab is in.  The running QEMU
lives in a private run directory (:mod:`smartos_lab.machine.rundir`).
"""
from __future__ import annotations

import shlex
import weakref
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import clones
from .debug import (
    Comparison,
    apply_gdb,
    check_running_has_gdb,
    compare,
    open_gdb,
    refuse_if_stopped_in_gdb,
    set_gdb,
)
from .errors import (
    ConfigError,
    GuestError,
    ImageError,
    LabError,
    TransportError,
)
from .images.local import LocalImage
from .kmdb_stop import KmdbStop, NotLoggedIn, attach_stop, boot_stop, refuse_if_in_kmdb
from .labstate import (  # noqa: F401  (re-exported: smartos_lab.lab is where users find them)
    LabConfig,
    LabDir,
    LabLookup,
    LabState,
    lab_names,
    lookup,
    no_such_lab_message,
)
from .machine.accel import AccelChoice, detect_accel
from .machine.checkpoints import CheckpointInfo
from .machine.checkpoints import require as require_checkpoint
from .machine.consoleprotocol import ConsoleProtocol
from .machine.disks import parse_size
from .machine.gdb import GdbSession, stopped_in_gdb
from .machine.guest import BootResult, GuestShell
from .machine.qemu import ConsoleFactory, QemuMachine
from .machine.qmp import QMP
from .machine.result import CommandResult, OnOutput
from .machine.spec import MachineSpec
from .steps import Steps, Subscriber, default_display

if TYPE_CHECKING:       # the toolkits are imported when first used (lab.zfs, ...)
    from .images.progress import Progress as ByteProgress
    from .toolkits.dtrace import DTrace
    from .toolkits.images import Images
    from .toolkits.sysinfo import SysInfo
    from .toolkits.vms import Vms
    from .toolkits.zfs import Zfs
    from .toolkits.zones import Zones

#: ``progress=`` of :meth:`Lab.up`: True (the default display), False (quiet) or a subscriber
#: called with every :class:`~smartos_lab.steps.StepEvent`.
Progress = bool | Subscriber


# --- strategies --------------------------------------------------------------------------
class Strategy(Protocol):
    """How to bring one kind of guest from nothing to a logged-in shell."""

    name: str

    def prepare(self, lab: LabDir, config: LabConfig, steps: Steps) -> None:
        """Create what the lab needs on the host (disks, secrets, unpacked platform)."""

    def spec(self, lab: LabDir, config: LabConfig, accel: str) -> MachineSpec:
        """The machine to launch for the next boot."""

    def console_factory(self) -> ConsoleFactory | None:
        """Console factory for :meth:`QemuMachine.launch` (None: the default console)."""

    def boot(self, machine: QemuMachine, lab: LabDir, config: LabConfig,
             steps: Steps) -> BootResult:
        """Wait until the guest is ready to log in (READY), or QEMU ended on a guest reboot
        (REBOOT: the lab launches it again)."""

    def login(self, machine: QemuMachine, lab: LabDir, config: LabConfig,
              steps: Steps) -> GuestShell:
        """Log in and return the lab's shell."""


_STRATEGIES: dict[str, Callable[[], Strategy]] = {}


def register_strategy(name: str, factory: Callable[[], Strategy]) -> None:
    """Make strategy ``name`` known, so labs created with it can be attached to by name."""
    _STRATEGIES[name] = factory


def _default_strategy(name: str, image: LocalImage | None = None) -> Strategy:
    if name in _STRATEGIES:
        return _STRATEGIES[name]()
    if name == "smartos":
        from .smartos.bringup import SmartOSStrategy
        return SmartOSStrategy(image=image)
    raise ConfigError(f"lab uses strategy {name!r}, which this process does not know "
                      "(register it with smartos_lab.lab.register_strategy)")


# --- progress ------------------------------------------------------------------------------
def _steps(operation: str, progress: Progress) -> Steps:
    """A :class:`Steps` reporter for ``progress`` (True: the default display, False: none)."""
    if callable(progress):
        return Steps(operation, [progress])
    return Steps(operation, [default_display()] if progress else [])


# --- the facade ------------------------------------------------------------------------------
MAX_BOOTS = 3       # first boot + the reboot after setup + one spare
ZONE_IMAGE_GUEST_DIR = "/var/tmp/smartos-lab"   # install_zone_image copies images here in the lab
MIN_COPY_RATE = 1 << 20                         # bytes/s a copy into the lab is given time for


class Lab:
    """A running, logged-in lab.  Make one with :meth:`up` (or :meth:`attach`)."""

    def __init__(self, *, lab_dir: LabDir, config: LabConfig, machine: QemuMachine,
                 shell: GuestShell | NotLoggedIn, strategy: Strategy, progress: Progress = False,
                 stopped_at_boot: KmdbStop | None = None):
        self.lab_dir = lab_dir
        self.config = config
        self.machine = machine
        self.shell: GuestShell | NotLoggedIn = shell
        self.strategy = strategy
        self._progress = progress       # how later operations (install_zone_image) report
        #: why the boot stopped in kmdb (None: the lab booted and is logged in); see resume()
        self.stopped_at_boot = stopped_at_boot
        _OPEN[lab_dir.name] = self

    # -- life cycle -------------------------------------------------------------------
    @classmethod
    def up(cls, name: str = "smartos", image: str | Path | LocalImage | None = None, *,
           release: str | None = None, memory: int | str | None = None, cpus: int | None = None,
           disks: int | None = None, disk_size: int | str | None = None, accel: str | None = None,
           boot: str | None = None, kernel_args: str | None = None, hostname: str | None = None,
           strategy: Strategy | None = None, progress: Progress = True,
           labs_root: Path | None = None, gdb: bool | None = None) -> Lab:
        """Return the lab ``name``, booted, set up and logged in.

        A lab this process already holds is returned as it is (re-running a
        notebook cell is harmless).  A running lab is attached to (its console
        and SSH are reconnected; the arguments are ignored).  A stopped lab
        boots again with its saved disks and settings; arguments given
        override them (``image`` may name a new platform, e.g. a freshly built
        kernel; ``kernel_args=""`` clears flags), except the zones pool's
        ``disks``/``disk_size`` and the ``hostname`` once setup has run.
        A new lab needs ``image`` (a SmartOS USB image, ISO, platform tgz or
        build folder, or a :class:`~smartos_lab.images.local.LocalImage`) or
        ``release`` (downloaded and cached; ``"latest"`` or a timestamp).
        Defaults for a new lab: 4 GiB, 2 CPUs, 1 disk sized from RAM,
        ``accel="auto"``, ``boot="auto"`` (or ``"usb"``/``"direct"``).  If a
        new lab fails before its first boot (no image, no network), what this
        call created is removed again.

        ``progress``: True shows the steps (printed lines, or the notebook
        widget), False is quiet, a callable receives every
        :class:`~smartos_lab.steps.StepEvent`.
        ``gdb=True`` starts QEMU with its gdb stub (see :meth:`gdb`); it sticks
        for later boots until ``gdb=False``.

        A boot that stops in kmdb (``kernel_args="-kd"``, a panic with ``-k``, a
        breakpoint) returns the lab stopped there, its QEMU running and not logged
        in (:attr:`stopped_at_boot`): :attr:`kmdb` works, :meth:`sh` raises
        :class:`~smartos_lab.errors.StoppedInKmdb` at once, :meth:`resume` (or
        ``lab.kmdb.cont()`` then ``Lab.up(name)``) finishes the boot and logs in.
        """
        lab_dir = LabDir(name, labs_root)
        identified = image if isinstance(image, LocalImage) else None
        given = dict(image=str(identified.path) if identified is not None else image,
                     release=release, memory=memory, cpus=cpus, disks=disks, disk_size=disk_size,
                     accel=accel, boot=boot, kernel_args=kernel_args, hostname=hostname)
        with _steps(f"up {name}", progress) as steps:
            held = _held(name)
            if held is not None:
                check_running_has_gdb(name, gdb)
                if held.stopped_at_boot is not None and not held.kmdb.active():
                    held._go_on(steps)          # kmdb was continued (lab.kmdb.cont())
                elif held.stopped_at_boot is not None:
                    steps.finish(held.stopped_at_boot.progress_message(name))
                steps.finish(f"lab {name} is already open in this process")
                return held
            found = lookup(name, labs_root)
            if found.state is LabState.RUNNING:
                check_running_has_gdb(name, gdb)
                config = found.config()
                steps.step("attach", f"attaching to running lab {name}")
                return cls._attach(lab_dir, config, strategy or _default_strategy(config.strategy),
                                   steps, progress)
            if found.state is LabState.STOPPED:
                config = lab_dir.load()
                _apply_overrides(config, **given)
            elif found.state is LabState.ABSENT:
                config = _new_config(name, strategy.name if strategy else "smartos", **given)
            else:
                raise found.error()
            set_gdb(config, gdb)
            strat = strategy or _default_strategy(config.strategy, identified)
            clones.guard_source(lab_dir.path, "up")
            strat = clones.starting_strategy(config, strat)
            machine, stop = cls._start(lab_dir, config, strat, steps)
            shell = cls._login(lab_dir, config, strat, machine, stop, steps)
            return cls(lab_dir=lab_dir, config=config, machine=machine, shell=shell,
                       strategy=strat, progress=progress, stopped_at_boot=stop)

    @classmethod
    def _start(cls, lab_dir: LabDir, config: LabConfig, strat: Strategy,
               steps: Steps) -> tuple[QemuMachine, KmdbStop | None]:
        """Prepare the lab on the host and boot it.  If this call made the lab directory and
        fails before a QEMU was launched, the directory goes again (no half-made lab)."""
        made_dir = not lab_dir.path.exists()
        launched: list[QemuMachine] = []
        try:
            steps.step("prepare", f"preparing lab {config.name}")
            lab_dir.create()
            strat.prepare(lab_dir, config, steps)
            lab_dir.save(config)
            return cls._boot(lab_dir, config, strat, steps, launched)
        except BaseException:
            if made_dir and not launched:
                lab_dir.remove()
            raise

    @classmethod
    def attach(cls, name: str, *, strategy: Strategy | None = None,
               progress: Progress = False, labs_root: Path | None = None) -> Lab:
        """Attach to the running lab ``name`` (LabNotFound if it is not running)."""
        held = _held(name)
        if held is not None:
            return held
        found = lookup(name, labs_root).require_running()
        config = found.config()
        strat = strategy or _default_strategy(config.strategy)
        with _steps(f"attach {name}", progress) as steps:
            return cls._attach(LabDir(name, labs_root), config, strat, steps, progress)

    @classmethod
    def _attach(cls, lab_dir: LabDir, config: LabConfig, strat: Strategy, steps: Steps,
                progress: Progress) -> Lab:
        machine = QemuMachine.attach(config.name, console_factory=strat.console_factory())
        try:
            if machine.console_busy():
                raise LabError(
                    f"the serial console of lab {config.name!r} is held by another process (another "
                    f"notebook or script with this lab open): call lab.detach() there, or use "
                    f"'smartos-lab ssh {config.name}'")
            stop = attach_stop(machine)
        except BaseException:
            machine.detach()
            raise
        shell = cls._login(lab_dir, config, strat, machine, stop, steps)
        return cls(lab_dir=lab_dir, config=config, machine=machine, shell=shell,
                   strategy=strat, progress=progress, stopped_at_boot=stop)

    @staticmethod
    def _login(lab_dir: LabDir, config: LabConfig, strat: Strategy, machine: QemuMachine,
               stop: KmdbStop | None, steps: Steps) -> GuestShell | NotLoggedIn:
        """Log in (the last step of ``up``), unless the boot stopped in kmdb."""
        if stop is not None:
            steps.finish(stop.progress_message(config.name))
            return NotLoggedIn(config.name)
        try:
            shell = strat.login(machine, lab_dir, config, steps)
        except BaseException:
            machine.detach()
            raise
        steps.finish(f"lab {config.name} is ready")
        return shell

    @classmethod
    def _boot(cls, lab_dir: LabDir, config: LabConfig, strat: Strategy, steps: Steps,
              launched: list[QemuMachine], machine: QemuMachine | None = None
              ) -> tuple[QemuMachine, KmdbStop | None]:
        """Launch and boot until the strategy says READY, or the guest stops in kmdb (QEMU is
        left running); every machine launched is appended to ``launched``.  ``machine``: one
        whose boot goes on (resume)."""
        choice: AccelChoice | None = None
        for _ in range(MAX_BOOTS):
            if machine is None:
                if choice is None:
                    choice = detect_accel(config.accel)
                    steps.info(f"accelerator: {choice.reason}")
                spec = apply_gdb(strat.spec(lab_dir, config, choice.accel), config)
                steps.step("start QEMU", f"starting QEMU ({spec.memory_mib} MiB, {spec.cpus} CPU)")
                machine = QemuMachine.launch(spec, serial_log=lab_dir.serial_log,
                                             console_factory=strat.console_factory())
                launched.append(machine)
            try:
                outcome = strat.boot(machine, lab_dir, config, steps)
            except GuestError as err:
                stop = boot_stop(machine.console, err)
                if stop is None:
                    if machine in launched:     # a resumed lab keeps running (lab.down())
                        machine.shutdown(timeout=5)
                    raise
                lab_dir.save(config)
                steps.step("kmdb", stop.text)
                return machine, stop
            except BaseException:
                if machine in launched:
                    machine.shutdown(timeout=5)
                raise
            lab_dir.save(config)
            if outcome is BootResult.READY:
                return machine, None
            steps.info("guest rebooted; starting it again")
            machine.shutdown(timeout=30)
            machine = None
        raise LabError(f"lab {config.name} rebooted {MAX_BOOTS} times without reaching a login "
                       f"prompt; see {lab_dir.serial_log}")

    def resume(self, *, progress: Progress | None = None) -> Lab:
        """Go on from kmdb; returns the lab.

        A lab whose boot stopped in kmdb (``kernel_args="-kd"``, a breakpoint or a
        panic during boot): ``:c`` if kmdb still waits, then the rest of the boot and
        the login, as :meth:`up` does them (a boot that stops in kmdb again leaves the
        lab stopped there; the last progress event says so).  A logged-in lab at kmdb's
        prompt: ``:c`` (after a panic, the kernel saves its crash dump and reboots;
        ``Lab.up(name)`` boots it again).  ``progress`` as for :meth:`up` (default:
        as the lab was opened).  If the rest of the boot fails, the error says why and
        the lab keeps running (:meth:`down` stops it).
        """
        with _steps(f"resume {self.name}", self._progress if progress is None else progress) as steps:
            if self.kmdb.active():
                steps.step("kmdb", "continuing from kmdb (:c)")
                self.kmdb.cont()
            if self.stopped_at_boot is None:
                steps.finish(f"lab {self.name} runs on")
            else:
                self._go_on(steps)
        return self

    def _go_on(self, steps: Steps) -> None:
        """The rest of a boot that stopped in kmdb (kmdb was continued), then the login."""
        machine, stop = self._boot(self.lab_dir, self.config, self.strategy, steps, [],
                                   self.machine)
        shell = self._login(self.lab_dir, self.config, self.strategy, machine, stop, steps)
        self.machine, self.shell, self.stopped_at_boot = machine, shell, stop
        for attr, value in vars(Lab).items():      # toolkits made with the old shell or console
            if isinstance(value, cached_property):
                self.__dict__.pop(attr, None)

    def down(self, timeout: float = 30.0) -> None:
        """Stop the lab's QEMU.  Its disks and settings stay for the next :meth:`up`."""
        self._close_transports()
        self.machine.shutdown(timeout=timeout)

    def detach(self) -> None:
        """Let go of the lab (console, QMP, SSH) and leave it running."""
        self._close_transports()
        self.machine.detach()

    def destroy(self, *, force: bool = False) -> None:
        """Stop the lab if it runs and delete its directory (disks included).

        Refused while clones depend on it, unless ``force`` makes them standalone first.
        """
        if force:
            clones.release_source(self.lab_dir.path)
        clones.guard_source(self.lab_dir.path, "destroy")
        if self.machine.alive():
            self.down()
        self.lab_dir.remove()

    def _close_transports(self) -> None:
        if _OPEN.get(self.name) is self:
            del _OPEN[self.name]
        self.shell.close()

    def clone(self, new_name: str, *, from_checkpoint: str | None = None) -> clones.CloneInfo:
        """Make lab ``new_name``: qcow2 overlays on this lab's disks, its own name, run dir and
        ports, this lab's secrets.  A running lab is cloned from a checkpoint (RAM included:
        the clone's first start continues from it, no boot); start it with ``Lab.up(new_name)``.
        """
        return clones.clone(self.lab_dir.path, new_name, checkpoint=from_checkpoint,
                            labs_root=self.lab_dir.path.parent)

    # -- commands -------------------------------------------------------------------
    def sh(self, command: str, timeout: float = 60.0, *, via: str | None = None,
           on_output: OnOutput | None = None) -> CommandResult:
        """Run ``command`` in the lab (SSH when available, else the serial console);
        ``on_output(text, stream)`` streams its output (see :data:`machine.result.OnOutput`)."""
        refuse_if_stopped_in_gdb(self)
        refuse_if_in_kmdb(self)
        return self.shell.run(command, timeout=timeout, via=via, on_output=on_output)

    def check(self, command: str, timeout: float = 60.0, *, via: str | None = None) -> CommandResult:
        """Like :meth:`sh` but raise :class:`~smartos_lab.errors.CommandFailed` on failure."""
        return self.sh(command, timeout=timeout, via=via).check()

    run = sh

    def put(self, local: str | Path, remote: str, mode: int | None = None, *,
            timeout: float = 300.0) -> None:
        self.shell.put(local, remote, mode=mode, timeout=timeout)

    def get(self, remote: str, local: str | Path) -> Path:
        self.shell.get(remote, local)
        return Path(local)

    # -- zone images (offline workshops) ----------------------------------------------
    def install_zone_image(self, uuid: str, *, pool: str | None = None, fetch: bool = True,
                           progress: ByteProgress | None = None) -> CommandResult:
        """Install zone image ``uuid`` from the host's zone-image cache (no Internet in the lab).

        When ``imgadm get`` finds the image installed, nothing is copied and that result is
        returned.  Otherwise the image comes from
        :class:`~smartos_lab.images.zone_images.ZoneImageCache` (downloaded into it first if
        missing and ``fetch`` allows; ``progress`` shows that download), its sha1 is checked
        if not yet recorded, manifest and file are copied to ``/var/tmp/smartos-lab/<uuid>/``
        in the lab and installed with ``imgadm install -m ... -f ...``; the copies are
        deleted after a successful install and kept after a failure.  Returns the install's
        result.  A file too big for the serial console needs SSH: TransportError otherwise,
        before anything is copied.  An incremental image (manifest ``origin``) needs its
        origin installed first.
        """
        from .images.zone_images import OFFLINE_HINT, ZoneImageCache, validate_uuid
        from .machine.guest import CONSOLE_COPY_LIMIT
        from .toolkits._cmd import pool_name

        validate_uuid(uuid)
        pool_args = ["-P", pool_name(pool)] if pool is not None else []
        installed = self.sh(shlex.join(["imgadm", "get", *pool_args, uuid]))
        if installed.exit_status == 0:
            return installed
        with _steps(f"install zone image {uuid}", self._progress) as steps:
            cache = ZoneImageCache()
            image = cache.get(uuid)
            if image is None:
                if not fetch:
                    raise ImageError(f"zone image {uuid} is not in {cache.root}. {OFFLINE_HINT}")
                steps.step("download", f"downloading zone image {uuid} from {cache.source}")
                image = cache.fetch(uuid, progress=progress)
            if not image.verified:
                steps.step("verify", f"checking the sha1 of {image.file_path}")
                image = cache.verify(uuid)
            if not self.shell.ssh_usable() and image.size > CONSOLE_COPY_LIMIT:
                raise TransportError(
                    f"zone image {uuid} is {image.size / 2**20:.1f} MiB: too big for the serial "
                    f"console (limit {CONSOLE_COPY_LIMIT // 1024} KiB), and SSH to lab {self.name} "
                    "is not connected; nothing was copied")
            folder = f"{ZONE_IMAGE_GUEST_DIR}/{uuid}"
            remote_manifest = f"{folder}/manifest.json"
            remote_file = f"{folder}/{image.file_path.name}"
            self.check(f"mkdir -p {shlex.quote(folder)}")
            steps.step("copy", f"copying {image.name} {image.version} ({image.size / 2**20:.1f} MiB) "
                               f"into lab {self.name}")
            self.put(image.manifest_path, remote_manifest)
            self.put(image.file_path, remote_file, timeout=max(300.0, image.size / MIN_COPY_RATE))
            steps.step("install", f"imgadm install {image.name} {image.version}")
            result = self.images.install_local(remote_manifest, remote_file, pool=pool)
            self.sh(f"rm -rf {shlex.quote(folder)}")
            steps.finish(f"zone image {image.name} {image.version}: imgadm exit status "
                         f"{result.exit_status}")
        return result

    # -- checkpoints -----------------------------------------------------------------
    def checkpoint(self, name: str = "checkpoint") -> float:
        """Save the whole running lab (RAM and disks) as ``name``; returns seconds taken."""
        return self.machine.checkpoint(name)

    def restore(self, name: str = "checkpoint", timeout: float = 60.0) -> float:
        """Return the lab to checkpoint ``name``; returns seconds the restore took.

        The guest's TCP state jumps back too, so SSH is reconnected and the
        console shell resynchronised before this returns.
        """
        require_checkpoint(self.machine.qmp, name)     # before SSH is let go
        self.shell.before_restore()
        try:
            return self.machine.restore(name)
        finally:
            self.shell.after_restore(timeout)

    def checkpoints(self) -> list[CheckpointInfo]:
        return self.machine.checkpoints()

    def delete_checkpoint(self, name: str) -> None:
        self.machine.delete_checkpoint(name)

    # -- inspection -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def console(self) -> ConsoleProtocol:
        """The serial console (:class:`~smartos_lab.machine.console.Console`)."""
        return self.machine.console

    @property
    def accel(self) -> AccelChoice:
        """The accelerator this lab runs under, and why."""
        return self.machine.accel

    @property
    def qmp(self) -> QMP:
        return self.machine.qmp

    @property
    def serial_log(self) -> Path:
        return self.lab_dir.serial_log

    def screendump(self, path: str | Path) -> Path:
        return self.machine.qmp.screendump(path)

    def status(self) -> dict[str, Any]:
        in_gdb = self.machine.spec.gdb and stopped_in_gdb(self.machine.qmp)
        state = "gdb" if in_gdb else "kmdb" if self.kmdb.active() else self.machine.qmp.status()
        return {"name": self.name, "pid": self.machine.pid, "state": state,
                "accel": self.machine.accel.accel, "ports": dict(self.machine.ports),
                "transport": self.shell.transport,
                "serial_log": str(self.serial_log)}

    def __repr__(self) -> str:
        return (f"<Lab {self.name} pid={self.machine.pid} {self.machine.accel.accel} "
                f"via {self.shell.transport}>")

    # -- toolkits ----------------------------------------------------------------------
    @cached_property
    def zfs(self) -> Zfs:
        from .toolkits.zfs import Zfs
        return Zfs(self.shell)

    @cached_property
    def zones(self) -> Zones:
        from .toolkits.zones import Zones
        return Zones(self.shell)

    @cached_property
    def images(self) -> Images:
        from .toolkits.images import Images
        return Images(self.shell)

    @cached_property
    def dtrace(self) -> DTrace:
        from .toolkits.dtrace import DTrace
        return DTrace(self.shell)

    @cached_property
    def vms(self) -> Vms:
        from .toolkits.vms import Vms
        return Vms(self.shell, accel=self.machine.accel)

    @cached_property
    def sysinfo(self) -> SysInfo:
        from .toolkits.sysinfo import SysInfo
        return SysInfo(self.shell)

    # -- kernel debugging (smartos_lab.debug) ---------------------------------------------
    def gdb(self, *, symbols: str | Path | None = None,
            modules_root: str | Path | None = None) -> GdbSession:
        """gdb on QEMU's stub (lab started with ``gdb=True``): a
        :class:`~smartos_lab.machine.gdb.GdbSession` with the booted ``unix`` for symbols
        (``modules_root``: a build's proto area, to add each loaded module at its address)."""
        return open_gdb(self, symbols=symbols, modules_root=modules_root)

    @cached_property
    def kmdb(self):
        """kmdb on the serial console, when the lab is stopped in it."""
        from .toolkits.kmdb import Kmdb
        stop = self.stopped_at_boot
        return Kmdb(self.machine.console, name=self.name,
                    at_prompt=stop is not None and stop.from_log)

    @cached_property
    def crash(self):
        """The lab's crash dumps (/var/crash/volatile): list, expand, analyze with mdb."""
        from .toolkits.crash import Crash
        return Crash(_Checked(self), name=self.name)

    def compare(self, other: Lab, command: str, timeout: float = 300.0) -> Comparison:
        """Run ``command`` here and on ``other``; both results side by side with ``uname -v``."""
        return compare((self.name, _Checked(self)), (other.name, _Checked(other)), command,
                       timeout=timeout)


class _Checked:
    """A lab as a command runner (``lab.sh``: refuses at once while stopped in gdb)."""

    def __init__(self, lab: Lab):
        self.lab = lab

    @property
    def transport(self) -> str:
        return self.lab.shell.transport

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        return self.lab.sh(command, timeout=timeout)


_OPEN: weakref.WeakValueDictionary[str, Lab] = weakref.WeakValueDictionary()


def _held(name: str) -> Lab | None:
    """The lab ``name`` if this process holds it open and its QEMU still runs."""
    lab = _OPEN.get(name)
    if lab is not None and not lab.machine.alive():
        del _OPEN[name]
        return None
    return lab


def _new_config(name: str, strategy: str, *, image, release, memory, cpus, disks, disk_size, accel,
                boot, kernel_args, hostname) -> LabConfig:
    """The settings of a new lab: the arguments given to ``Lab.up``, defaults for the rest."""
    return LabConfig(
        name=name, strategy=strategy,
        image=str(Path(image).expanduser().resolve()) if image else "",
        release=release or ("" if image else "latest"),
        boot=boot or "auto", memory_mib=_mib(memory if memory is not None else "4G"),
        cpus=_positive(cpus if cpus is not None else 2, "cpus"),
        disk_count=_positive(disks if disks is not None else 1, "disks"),
        disk_size=parse_size(disk_size) if disk_size else 0,
        accel=accel or "auto", kernel_args=kernel_args or "", hostname=hostname or "")


def _apply_overrides(config: LabConfig, *, image, release, memory, cpus, disks, disk_size, accel,
                     boot, kernel_args, hostname) -> None:
    """Apply the arguments given to ``Lab.up`` to a stopped lab's saved settings."""
    if image is not None:
        config.image = str(Path(image).expanduser().resolve())
    if release is not None:
        config.release = release
    if memory is not None:
        config.memory_mib = _mib(memory)
    if cpus is not None:
        config.cpus = _positive(cpus, "cpus")
    if accel is not None:
        config.accel = accel
    if boot is not None:
        config.boot = boot
    if kernel_args is not None:
        config.kernel_args = kernel_args
    pool = {"disks": (disks, config.disk_count, lambda v: _positive(v, "disks")),
            "disk_size": (disk_size, config.disk_size, parse_size),
            "hostname": (hostname, config.hostname, str)}
    for what, (given, saved, convert) in pool.items():
        if given is None or convert(given) == saved:
            continue
        if config.set_up:
            raise ConfigError(f"lab {config.name} was set up with {what}={saved!r}; it cannot change "
                              f"now (destroy the lab to start over: smartos-lab destroy {config.name})")
        setattr(config, {"disks": "disk_count"}.get(what, what), convert(given))


def _mib(memory: int | str) -> int:
    if isinstance(memory, int):
        mib = memory
    else:
        mib = parse_size(memory) // (1024 * 1024)
    if mib < 256:
        raise ConfigError(f"memory {memory!r} is too small (give MiB as an int, or e.g. '4G')")
    return mib


def _positive(value: int, what: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive whole number, got {value!r}")
    return value
