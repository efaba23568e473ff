"""Golden labs and linked clones.

A clone is a new lab whose qcow2 disks are overlays on a source ("golden")
lab's disks: it costs only its own writes.  It gets its own name, lab
directory, run directory and forwarded ports, and copies of the source's
secrets (SSH key, root password, answers), so clones run side by side.

From a checkpoint, the checkpoint is *materialised* once per golden into
``<golden>/bases/<checkpoint>@<time>/``: each disk's state at the checkpoint
(``qemu-img convert -l snapshot.name=...``) and its RAM (the migration stream
``savevm`` stored in the qcow2 file, :mod:`smartos_lab.machine.qcow2`).  Clones
then sit on that read-only base and their first start loads the RAM with
``-incoming "exec:cat FILE"`` (QEMU 7.2 has no ``file:`` migration URI; it came in
8.2): no boot, the guest's uptime continues.

A source is read-only while clones depend on it: :func:`guard_source` refuses
to boot or destroy it (naming the clones) unless they are made standalone
first with :func:`flatten` (``qemu-img rebase -b ''``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, LabError, LabNotFound
from .machine import qcow2
from .machine.checkpoints import validate_checkpoint_name
from .machine.disks import convert_snapshot, create_overlay, image_info, in_use
from .machine.disks import flatten as flatten_disk
from .machine.guest import BootResult
from .machine.rundir import validate_name

BASES_DIR = "bases"
BASE_META = "base.json"
RAM_FILE = "ram.bin"
COPY_LIMIT = 1 << 20            # larger plain files (e.g. a platform) are linked, not copied
NOT_COPIED = {"lab.json", "serial.log", BASES_DIR, RAM_FILE}
RESUME_TIMEOUT = 300.0          # loading a checkpoint's RAM into a new QEMU


@dataclass
class Origin:
    """Where a clone came from (``LabConfig.origin``)."""

    lab: str                    # the source lab's name
    path: str                   # the source lab's directory ("" once the clone is standalone)
    checkpoint: str = ""        # "" = the source's disks as they were (a stopped source)
    base: str = ""              # the materialised checkpoint the disks sit on
    ram: str = ""               # the RAM the next start loads while ``resume`` is set
    resume: bool = False
    memory_mib: int = 0         # the machine size the RAM was saved with
    cpus: int = 0
    seat: int = 0               # seat number when made by smartos_lab.seats (0: not a seat)

    @classmethod
    def of(cls, config: Any) -> Origin | None:
        data = getattr(config, "origin", None) or {}
        if not data:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def label(self) -> str:
        text = self.lab + (f"@{self.checkpoint}" if self.checkpoint else "")
        return text if self.path else f"{text} (standalone)"


@dataclass(frozen=True)
class Base:
    """A checkpoint of a golden lab materialised for clones."""

    path: Path
    lab: str
    checkpoint: str
    disks: tuple[str, ...]      # paths relative to the lab directory
    ram: Path
    disk_seconds: float         # qemu-img convert of every disk
    ram_seconds: float          # copying the RAM out of the qcow2 file
    disk_bytes: int
    ram_bytes: int
    reused: bool = False


@dataclass(frozen=True)
class CloneInfo:
    name: str
    path: Path
    origin: Origin
    seconds: float
    base: Base | None = None


# --- materialise a checkpoint ----------------------------------------------------------------
def materialise(source: Path, checkpoint: str) -> Base:
    """The shared read-only base of ``checkpoint`` of the lab in ``source`` (made once)."""
    validate_checkpoint_name(checkpoint)
    source = lab_folder(source)
    disks = _qcow2_files(source)
    snaps = {rel: {s.name: s for s in qcow2.snapshots(source / rel)} for rel in disks}
    having = [rel for rel in disks if checkpoint in snaps[rel]]
    if not having:
        names = sorted({n for per in snaps.values() for n in per})
        raise CheckpointError(f"lab {source.name!r} has no checkpoint named {checkpoint!r} "
                              f"(checkpoints: {', '.join(names) or 'none'})")
    missing = sorted(set(disks) - set(having))
    if missing:
        raise CheckpointError(f"checkpoint {checkpoint!r} of lab {source.name!r} is not on every "
                              f"disk (missing on {', '.join(missing)}); take it again")
    holder = next((rel for rel in having if snaps[rel][checkpoint].vm_state_size), None)
    if holder is None:
        raise CheckpointError(f"checkpoint {checkpoint!r} of lab {source.name!r} holds no RAM")
    snap = snaps[holder][checkpoint]
    final = source / BASES_DIR / f"{checkpoint}@{snap.date_sec}.{snap.date_nsec:09d}"
    if (final / BASE_META).is_file():
        return _load_base(final, reused=True)
    try:
        (source / BASES_DIR).mkdir(mode=0o755, exist_ok=True)
        work = Path(_mkdtemp(source / BASES_DIR, f".{checkpoint}."))
    except PermissionError:
        raise LabError(f"checkpoint {checkpoint!r} of lab {source.name!r} is not prepared for "
                       f"clones yet, and you cannot write {source / BASES_DIR}: ask the lab's "
                       f"owner to run 'smartos-lab share {source} --checkpoint {checkpoint}'") from None
    try:
        started = time.monotonic()
        for rel in having:
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            convert_snapshot(source / rel, checkpoint, work / rel)
        disk_seconds = time.monotonic() - started
        started = time.monotonic()
        ram_bytes = qcow2.save_vmstate(source / holder, checkpoint, work / RAM_FILE)
        ram_seconds = time.monotonic() - started
        disk_bytes = sum((work / rel).stat().st_size for rel in having)
        meta = {"lab": source.name, "checkpoint": checkpoint, "disks": having,
                "disk_seconds": round(disk_seconds, 3), "ram_seconds": round(ram_seconds, 3),
                "disk_bytes": disk_bytes, "ram_bytes": ram_bytes}
        (work / BASE_META).write_text(json.dumps(meta, indent=2) + "\n")
        for path in work.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o444)     # read-only from now on
        work.chmod(0o755)
        try:
            work.rename(final)
        except OSError:
            if not (final / BASE_META).is_file():           # not another process winning a race
                raise
            shutil.rmtree(work, ignore_errors=True)
            return _load_base(final, reused=True)
    except BaseException:
        remove_tree(work)
        raise
    return _load_base(final, reused=False)


def _load_base(path: Path, *, reused: bool) -> Base:
    meta = json.loads((path / BASE_META).read_text())
    return Base(path=path, lab=meta["lab"], checkpoint=meta["checkpoint"],
                disks=tuple(meta["disks"]), ram=path / RAM_FILE,
                disk_seconds=meta["disk_seconds"], ram_seconds=meta["ram_seconds"],
                disk_bytes=meta["disk_bytes"], ram_bytes=meta["ram_bytes"], reused=reused)


# --- clone --------------------------------------------------------------------------------------
def clone(source: str | Path, new_name: str, *, checkpoint: str | None = None,
          labs_root: Path | None = None) -> CloneInfo:
    """Make lab ``new_name`` as a linked clone of the lab directory ``source``.

    Without ``checkpoint`` the clone sits on the source's disks as they are,
    so the source must be stopped.  Nothing is left behind on failure.
    """
    from .lab import LabDir

    started = time.monotonic()
    new = LabDir(validate_name(new_name), labs_root)
    source = lab_folder(Path(source))
    if new.path.exists() or os.path.lexists(new.path):
        raise ConfigError(f"a lab named {new_name!r} already exists ({new.path}); choose another "
                          f"name or destroy it first")
    config = _load_config(source)
    if checkpoint is None:
        busy = [rel for rel in _qcow2_files(source) if in_use(source / rel)]
        if busy:
            raise LabError(
                f"lab {source.name!r} is running: its disks change while it runs, so a clone of "
                f"them would be inconsistent. Stop it first ('smartos-lab down {source.name}'), or "
                f"take a checkpoint and clone that ('smartos-lab checkpoint {source.name} ready', "
                f"then 'smartos-lab clone {source.name} {new_name} --checkpoint ready')")
    base = materialise(source, checkpoint) if checkpoint is not None else None
    origin = Origin(lab=config.name, path=str(source), checkpoint=checkpoint or "",
                    base=str(base.path) if base else "", ram=str(base.ram) if base else "",
                    resume=base is not None, memory_mib=config.memory_mib, cpus=config.cpus)
    new.path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(_mkdtemp(new.path.parent, f".{new_name}."))
    try:
        _populate(source, work, base)
        config = dataclasses.replace(config, name=new_name, origin=asdict(origin),
                                     strategy_state=_moved(config.strategy_state, source, new.path))
        (work / "lab.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
        work.rename(new.path)
    except BaseException:
        remove_tree(work)
        raise
    return CloneInfo(name=new_name, path=new.path, origin=origin,
                     seconds=time.monotonic() - started, base=base)


def _populate(source: Path, dest: Path, base: Base | None) -> None:
    """Fill ``dest`` from ``source``: overlays for qcow2 disks, copies of small files
    (secrets), links to big ones."""
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if rel.parts[0] in NOT_COPIED or path.name.endswith((".tmp", ".lock")):
            continue
        if any((source / parent).is_symlink() for parent in rel.parents):
            continue                        # inside a linked folder: the link covers it
        target = dest / rel
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_dir():
            target.mkdir(mode=0o700, exist_ok=True)
        elif qcow2.is_qcow2(path):
            backing = base.path / rel if base is not None else path
            create_overlay(backing, target)
            target.chmod(0o600)
        elif path.stat().st_size <= COPY_LIMIT:
            shutil.copyfile(path, target)
            target.chmod(0o600)             # secrets stay private to the clone's owner
        else:
            target.symlink_to(path)


def _moved(state: Any, source: Path, new: Path) -> Any:
    """The strategy's saved state (lab.json's dict) with paths inside the source lab pointed
    at the clone's copy."""
    if not isinstance(state, dict):
        return state
    prefix = str(source) + os.sep
    return {k: (str(new) + os.sep + v[len(prefix):] if isinstance(v, str) and v.startswith(prefix)
                else v) for k, v in state.items()}


# --- dependants, guard, flatten, reset ----------------------------------------------------------
def dependants(source: Path, labs_root: Path | None = None) -> list[tuple[str, Origin]]:
    """Labs (in ``labs_root``, default the source's own labs folder) that are clones of ``source``."""
    from .lab import LabDir, lab_names

    source = Path(source).resolve()
    root = Path(labs_root) if labs_root else source.parent
    found = []
    for name in lab_names(root):
        try:
            origin = Origin.of(LabDir(name, root).load())
        except LabError:
            continue
        if origin is not None and origin.path and Path(origin.path) == source:
            found.append((name, origin))
    return found


def guard_source(source: Path, action: str) -> None:
    """Refuse ``action`` ("up" or "destroy") on a lab that clones depend on, naming them.

    Booting changes the source's disks, which clones made without a checkpoint sit on;
    destroying it removes every clone's base.
    """
    deps = dependants(source)
    if action == "up":
        deps = [(n, o) for n, o in deps if not o.checkpoint]
    if deps:
        names = ", ".join(n for n, _ in deps)
        raise LabError(f"cannot {action} lab {Path(source).name!r}: it is read-only while clones "
                       f"depend on it ({names}). Destroy them, or use --force to make them "
                       f"standalone copies first (qemu-img rebase)")


def release_source(source: Path) -> list[str]:
    """Make every clone of ``source`` standalone (:func:`flatten`); returns their names."""
    deps = dependants(source)
    running = [n for n, _ in deps if is_running(n)]
    if running:
        raise LabError(f"clones of lab {Path(source).name!r} are running ({', '.join(running)}): "
                       "stop them before they are made standalone")
    for name, _ in deps:
        flatten(name, labs_root=Path(source).parent)
    return [n for n, _ in deps]


def flatten(name: str, *, labs_root: Path | None = None) -> None:
    """Make clone ``name`` standalone: copy what it reads from its source into it."""
    from .lab import LabDir

    lab = LabDir(name, labs_root)
    config = lab.load()
    origin = Origin.of(config)
    if origin is None or not origin.path:
        return
    if is_running(name):
        raise LabError(f"lab {name!r} is running: stop it before it is made standalone")
    source = Path(origin.path)
    for path in sorted(lab.path.rglob("*")):
        if path.is_symlink() and _inside(Path(os.readlink(path)), source):
            target = Path(os.readlink(path))
            path.unlink()
            shutil.copyfile(target, path)
        elif path.is_file() and qcow2.is_qcow2(path):
            backing = image_info(path).backing_file
            if backing is not None and _inside(backing, source):
                flatten_disk(path)
    if origin.resume:
        shutil.copyfile(origin.ram, lab.file(RAM_FILE))
        origin.ram = str(lab.file(RAM_FILE))
    origin.path = origin.base = ""
    config.origin = asdict(origin)
    lab.save(config)


def reset(name: str, checkpoint: str | None = None, *, labs_root: Path | None = None) -> Origin:
    """Put stopped clone ``name`` back on fresh overlays: on checkpoint ``checkpoint`` of its
    source (default: the one it was cloned from), or on the source's disks.  Its next start
    then loads that checkpoint's RAM.  Its secrets and name stay."""
    from .lab import LabDir

    lab = LabDir(name, labs_root)
    config = lab.load()
    origin = Origin.of(config)
    if origin is None or not origin.path:
        raise ConfigError(f"lab {name!r} is not a clone of another lab, so it cannot be reset")
    if is_running(name):
        raise LabError(f"lab {name!r} is running: stop it before it is reset")
    wanted = checkpoint if checkpoint is not None else (origin.checkpoint or None)
    source = Path(origin.path)
    base = materialise(source, wanted) if wanted is not None else None
    fresh = []
    try:
        for rel in _qcow2_files(lab.path):
            backing = base.path / rel if base is not None else source / rel
            tmp = lab.path / f"{rel}.reset.tmp"
            tmp.unlink(missing_ok=True)
            create_overlay(backing, tmp)
            tmp.chmod(0o600)
            fresh.append((tmp, lab.path / rel))
    except BaseException:
        for tmp, _ in fresh:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in fresh:
        tmp.replace(final)
    origin.checkpoint = wanted or ""
    origin.base = str(base.path) if base else ""
    origin.ram = str(base.ram) if base else ""
    origin.resume = base is not None
    config.origin = asdict(origin)
    lab.save(config)
    return origin


# --- starting a clone from its checkpoint's RAM --------------------------------------------------
class ResumeStrategy:
    """Wraps a lab's strategy for a clone's first start: QEMU loads the checkpoint's RAM
    (``-incoming``) instead of booting; login then finds the shell the golden had."""

    def __init__(self, inner: Any, ram: Path):
        self.inner = inner
        self.ram = Path(ram)
        self.name = inner.name

    def prepare(self, lab, config, steps) -> None:
        if not self.ram.is_file() or not os.access(self.ram, os.R_OK):
            raise LabError(f"cannot read the checkpoint RAM {self.ram} that lab {config.name!r} "
                           "starts from (was its golden lab or base removed, or is it private?)")
        origin = Origin.of(config)
        if origin is not None and origin.memory_mib and (config.memory_mib, config.cpus) != \
                (origin.memory_mib, origin.cpus):
            steps.info(f"the checkpoint was saved with {origin.memory_mib} MiB and {origin.cpus} "
                     "CPUs; the clone starts with them")
            config.memory_mib, config.cpus = origin.memory_mib, origin.cpus
        self.inner.prepare(lab, config, steps)

    def spec(self, lab, config, accel: str):
        spec = self.inner.spec(lab, config, accel)
        incoming = ("-incoming", f"exec:cat {shlex.quote(str(self.ram))}")
        return dataclasses.replace(spec, extra_args=tuple(spec.extra_args) + incoming)

    def console_factory(self):
        return self.inner.console_factory()

    def boot(self, machine, lab, config, steps) -> BootResult:
        steps.step("load RAM", f"loading the checkpoint's RAM ({self.ram.stat().st_size >> 20} MiB)"
                   " instead of booting")
        deadline = time.monotonic() + RESUME_TIMEOUT
        while True:
            if not machine.alive():
                raise machine.exit_error() or LabError(f"QEMU of lab {config.name!r} exited")
            status = machine.qmp.status()
            if status == "running":
                break
            if time.monotonic() > deadline:
                raise LabError(f"lab {config.name!r} did not load its checkpoint RAM within "
                               f"{RESUME_TIMEOUT:g} s (QEMU status {status!r})")
            time.sleep(0.05)
        origin = Origin.of(config)
        if origin is not None:
            origin.resume = False
            config.origin = asdict(origin)
        machine.console.sendline("")          # a fresh prompt for login to find
        return BootResult.READY

    def login(self, machine, lab, config, steps):
        return self.inner.login(machine, lab, config, steps)


def starting_strategy(config: Any, strategy: Any) -> Any:
    """The strategy for starting a stopped lab: :class:`ResumeStrategy` for a clone whose
    checkpoint RAM has not been loaded yet, else ``strategy``."""
    origin = Origin.of(config)
    if origin is not None and origin.resume and origin.ram:
        return ResumeStrategy(strategy, Path(origin.ram))
    return strategy


# --- helpers ---------------------------------------------------------------------------------------
def lab_folder(path: Path) -> Path:
    """The lab folder ``path`` (or the lab of that name in your labs folder), checked readable."""
    path = Path(path).expanduser()
    if len(path.parts) == 1 and not str(path).startswith("."):
        from .lab import LabDir
        path = LabDir(str(path)).path
    path = path.resolve()
    try:
        exists = (path / "lab.json").is_file()
        readable = exists and os.access(path / "lab.json", os.R_OK) and \
            os.access(path, os.R_OK | os.X_OK)
    except PermissionError:
        exists, readable = True, False
    if not exists:
        raise LabNotFound(f"no lab at {path} (no lab.json there)")
    if not readable:
        raise LabError(f"cannot read lab folder {path} (permission denied): a shared golden lab "
                       f"must be readable by you; its owner runs 'smartos-lab share {path} "
                       f"--group GROUP'")
    return path


def _load_config(source: Path):
    from .lab import LabDir
    return LabDir(source.name, source.parent).load()


def _qcow2_files(lab_path: Path) -> list[str]:
    found = []
    for path in sorted(lab_path.rglob("*")):
        rel = path.relative_to(lab_path)
        if rel.parts[0] in NOT_COPIED or path.is_symlink() or not path.is_file():
            continue
        if path.name.endswith(".tmp") or not qcow2.is_qcow2(path):
            continue
        found.append(str(rel))
    return found


def is_running(name: str, labs_root: Path | None = None) -> bool:
    from .lab import LabState, lookup
    return lookup(name, labs_root).state is LabState.RUNNING


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _mkdtemp(parent: Path, prefix: str) -> str:
    import tempfile
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def remove_tree(path: Path) -> None:
    def writable(func, p, _exc):
        os.chmod(p, 0o700)
        func(p)
    if path.exists():
        for p in path.rglob("*"):
            if p.is_dir():
                p.chmod(0o700)
        shutil.rmtree(path, onerror=writable)


def origin_label(name: str, labs_root: Path | None = None) -> str:
    """``golden@checkpoint`` for a clone, ``-`` for any other lab (for listings)."""
    from .lab import LabDir

    try:
        origin = Origin.of(LabDir(name, labs_root).load())
    except LabError:
        return "-"
    return origin.label() if origin is not None else "-"
