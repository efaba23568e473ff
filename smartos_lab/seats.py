"""Seats: N clones of one golden lab on one host, for a workshop.

``create`` makes seats ``<prefix>1..N`` (linked clones, :mod:`smartos_lab.clones`),
``up`` starts the stopped ones in parallel after *admission control* (their RAM
plus QEMU's own overhead must fit in the host's available memory times a
ratio), ``down`` stops them, ``reset`` puts them back on a checkpoint of the
golden in seconds, ``destroy`` deletes them, ``status`` reports state, RAM,
CPU% and last activity per seat.

Settings (also arguments): ``SMARTOS_LAB_OVERCOMMIT`` (ratio, default 1.0),
``SMARTOS_LAB_MEMAVAILABLE_MIB`` (stands in for the host's MemAvailable, e.g.
to plan for another host or to test admission), ``SMARTOS_LAB_SEAT_OVERHEAD_MIB``
(QEMU's memory beyond the guest RAM, default :data:`QEMU_OVERHEAD_MIB`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import clones
from .errors import ConfigError, HostError, LabError
from .machine.rundir import proc_rss_mib, validate_name
from .steps import StepEvent

MAX_SEATS = 500
QEMU_OVERHEAD_MIB = 64          # QEMU beyond guest RAM: 46 MiB RSS measured for a bare TCG QEMU
                                # (benchmarks/bench_seats.py), plus a margin
DEFAULT_RATIO = 1.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Capacity:
    """How many seats of ``seat_mib`` fit into this host's memory."""

    available_mib: int          # MemAvailable (or its stand-in)
    ratio: float
    seat_mib: int               # guest RAM per seat
    overhead_mib: int           # QEMU's own memory per seat
    cpus: int

    @property
    def per_seat_mib(self) -> int:
        return self.seat_mib + self.overhead_mib

    @property
    def limit_mib(self) -> int:
        return int(self.available_mib * self.ratio)

    @property
    def seats(self) -> int:
        return max(0, self.limit_mib // self.per_seat_mib)

    def describe(self) -> str:
        return (f"{self.seats} seats of {self.seat_mib} MiB fit: {self.available_mib} MiB available "
                f"x ratio {self.ratio:g} = {self.limit_mib} MiB, {self.per_seat_mib} MiB per seat "
                f"({self.seat_mib} MiB guest RAM + {self.overhead_mib} MiB QEMU); {self.cpus} CPUs")


@dataclass(frozen=True)
class SeatStart:
    name: str
    seconds: float              # from the start of `up` to this seat's logged-in shell
    resumed: bool               # loaded its checkpoint's RAM instead of booting


@dataclass(frozen=True)
class SeatStatus:
    name: str
    state: str                  # running | stopped
    pid: int | None
    ram_mib: int                # QEMU's resident memory
    cpu_percent: float          # of one core, sampled now
    last_activity: str          # ISO time of the last console output or disk write
    origin: str


# --- admission --------------------------------------------------------------------------------
def host_available_mib(available_mib: int | None = None) -> int:
    if available_mib is not None:
        return int(available_mib)
    env = os.environ.get("SMARTOS_LAB_MEMAVAILABLE_MIB")
    if env:
        return _number(env, "SMARTOS_LAB_MEMAVAILABLE_MIB", int)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError as exc:
        raise HostError(f"cannot read /proc/meminfo: {exc}") from exc
    raise HostError("/proc/meminfo has no MemAvailable line")


def capacity(seat_mib: int, *, ratio: float | None = None,
             available_mib: int | None = None) -> Capacity:
    """How many seats with ``seat_mib`` of guest RAM this host can hold."""
    if ratio is None:
        ratio = _number(os.environ.get("SMARTOS_LAB_OVERCOMMIT", str(DEFAULT_RATIO)),
                        "SMARTOS_LAB_OVERCOMMIT", float)
    if ratio <= 0:
        raise ConfigError(f"memory ratio must be positive, got {ratio:g}")
    overhead = _number(os.environ.get("SMARTOS_LAB_SEAT_OVERHEAD_MIB", str(QEMU_OVERHEAD_MIB)),
                       "SMARTOS_LAB_SEAT_OVERHEAD_MIB", int)
    return Capacity(available_mib=host_available_mib(available_mib), ratio=ratio,
                    seat_mib=int(seat_mib), overhead_mib=overhead, cpus=os.cpu_count() or 1)


def admit(seat_mibs: list[int], *, ratio: float | None = None,
          available_mib: int | None = None) -> Capacity:
    """Refuse (:class:`LabError`, with the numbers) to start seats whose memory would not fit."""
    if not seat_mibs:
        return capacity(0, ratio=ratio, available_mib=available_mib)
    cap = capacity(max(seat_mibs), ratio=ratio, available_mib=available_mib)
    need = sum(m + cap.overhead_mib for m in seat_mibs)
    if need > cap.limit_mib:
        raise LabError(
            f"admission refused: starting {len(seat_mibs)} seat(s) needs {need} MiB "
            f"({cap.per_seat_mib} MiB each: {cap.seat_mib} MiB guest RAM + {cap.overhead_mib} MiB "
            f"QEMU), but this host allows {cap.limit_mib} MiB ({cap.available_mib} MiB available "
            f"x ratio {cap.ratio:g}): room for {cap.seats}. Stop other labs, give seats less "
            f"memory, or raise the ratio (--ratio, SMARTOS_LAB_OVERCOMMIT)")
    return cap


# --- seats ---------------------------------------------------------------------------------------
def seats_of(golden: str | Path, labs_root: Path | None = None) -> list[str]:
    """Names of the seats made from ``golden``, in seat order."""
    from .lab import LabDir, lab_names

    source = str(clones.lab_folder(Path(golden)))
    found = []
    for name in lab_names(labs_root):
        try:
            origin = clones.Origin.of(LabDir(name, labs_root).load())
        except LabError:
            continue
        if origin is not None and origin.seat and origin.path == source:
            found.append((origin.seat, name))
    return [name for _, name in sorted(found)]


def create(golden: str | Path, count: int, *, prefix: str = "seat", checkpoint: str | None = None,
           labs_root: Path | None = None) -> list[clones.CloneInfo]:
    """Make ``count`` seats ``<prefix>1..<prefix>N`` from ``golden``; all or none."""
    from .lab import LabDir

    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEATS:
        raise ConfigError(f"seat count must be a whole number from 1 to {MAX_SEATS}, got {count!r}"
                          + (" (past one host, see deploy/kubernetes)" if isinstance(count, int)
                             and count > MAX_SEATS else ""))
    source = clones.lab_folder(Path(golden))
    names = [validate_name(f"{prefix}{i}") for i in range(1, count + 1)]
    taken = [n for n in names if LabDir(n, labs_root).path.exists()]
    if taken:
        raise ConfigError(f"seat name(s) already used by other labs: {', '.join(taken[:10])}"
                          f"{' ...' if len(taken) > 10 else ''}; choose another --prefix")
    made: list[clones.CloneInfo] = []
    try:
        for index, name in enumerate(names, 1):
            info = clones.clone(source, name, checkpoint=checkpoint, labs_root=labs_root)
            made.append(info)
            lab = LabDir(name, labs_root)
            config = lab.load()
            config.origin["seat"] = index
            lab.save(config)
    except BaseException:
        for info in made:
            clones.remove_tree(info.path)
        raise
    return made


def up(golden: str | Path, *, ratio: float | None = None, available_mib: int | None = None,
       labs_root: Path | None = None, progress: Progress | None = None,
       workers: int | None = None) -> list[SeatStart]:
    """Start every stopped seat of ``golden`` (in parallel) after admission control.

    Each started seat is left running (detached) with a logged-in shell."""
    from .lab import Lab, LabDir

    names = [n for n in _seats(golden, labs_root) if not clones.is_running(n)]
    admit([seat_memory_mib(n, labs_root) for n in names], ratio=ratio,
          available_mib=available_mib)
    report = progress or (lambda _msg: None)
    started = time.monotonic()

    def start(name: str) -> SeatStart:
        origin = clones.Origin.of(LabDir(name, labs_root).load())
        lab = Lab.up(name, progress=_prefixed(name, report), labs_root=labs_root)
        seconds = time.monotonic() - started
        lab.detach()
        report(f"{name}: shell ready after {seconds:.1f} s")
        return SeatStart(name, seconds, bool(origin and origin.resume))

    return _each(names, start, workers)


def down(golden: str | Path, *, labs_root: Path | None = None) -> list[str]:
    """Stop every running seat of ``golden``; returns their names."""
    from .machine.registry import stop

    names = [n for n in _seats(golden, labs_root) if clones.is_running(n)]
    for name in names:
        stop(name)
    return names


def reset(golden: str | Path, checkpoint: str | None = None, *, labs_root: Path | None = None,
          progress: Progress | None = None, workers: int | None = None) -> list[SeatStart]:
    """Put every seat back on ``checkpoint`` of the golden (default: the one it was made
    from); seats that were running run again from it.  Returns the restarted seats."""
    from .machine.registry import stop

    names = _seats(golden, labs_root)
    running = [n for n in names if clones.is_running(n)]
    if checkpoint is not None:
        clones.materialise(clones.lab_folder(Path(golden)), checkpoint)   # before any stop
    for name in running:
        stop(name, timeout=2.0)             # its state is thrown away anyway
    for name in names:
        clones.reset(name, checkpoint, labs_root=labs_root)
    if not running:
        return []
    from .lab import Lab

    started = time.monotonic()
    report = progress or (lambda _msg: None)

    def start(name: str) -> SeatStart:
        lab = Lab.up(name, progress=_prefixed(name, report), labs_root=labs_root)
        lab.detach()
        return SeatStart(name, time.monotonic() - started, True)

    return _each(running, start, workers)


def destroy(golden: str | Path, *, labs_root: Path | None = None) -> list[str]:
    """Stop and delete every seat of ``golden``."""
    from .lab import LabDir

    names = _seats(golden, labs_root)
    down(golden, labs_root=labs_root)
    for name in names:
        clones.remove_tree(LabDir(name, labs_root).path)
    return names


def status(golden: str | Path, *, labs_root: Path | None = None,
           sample: float = 0.5) -> list[SeatStatus]:
    """One :class:`SeatStatus` per seat (CPU% sampled over ``sample`` seconds)."""
    from .lab import LabDir
    from .machine.registry import running_labs

    names = _seats(golden, labs_root)
    pids = {s.name: s.pid for s in running_labs() if s.name in names and s.state != "dead"}
    before = {n: _cpu_ticks(p) for n, p in pids.items()}
    time.sleep(sample if pids else 0)
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    rows = []
    for name in names:
        pid = pids.get(name)
        cpu = 0.0
        if pid is not None:
            cpu = 100.0 * (_cpu_ticks(pid) - before[name]) / ticks_per_s / sample
        lab = LabDir(name, labs_root)
        rows.append(SeatStatus(name=name, state="running" if pid else "stopped", pid=pid,
                               ram_mib=proc_rss_mib(pid) if pid else 0, cpu_percent=round(cpu, 1),
                               last_activity=_last_activity(lab.path),
                               origin=clones.origin_label(name, labs_root)))
    return rows


def seat_memory_mib(name: str, labs_root: Path | None = None) -> int:
    """Guest RAM of lab ``name`` as its strategy would start it."""
    from .lab import LabDir, _default_strategy

    lab = LabDir(name, labs_root)
    config = lab.load()
    try:
        return _default_strategy(config.strategy).spec(lab, config, "tcg").memory_mib
    except (LabError, KeyError):
        return config.memory_mib


# --- helpers ---------------------------------------------------------------------------------
def _seats(golden: str | Path, labs_root: Path | None) -> list[str]:
    names = seats_of(golden, labs_root)
    if not names:
        raise LabError(f"lab {Path(golden).name!r} has no seats (make them with "
                       f"'smartos-lab seats create {golden} N')")
    return names


def _each(names: list[str], start: Callable[[str], SeatStart],
          workers: int | None) -> list[SeatStart]:
    if not names:
        return []
    results: list[SeatStart] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=workers or len(names)) as pool:
        futures = {pool.submit(start, n): n for n in names}
        for future, name in futures.items():
            try:
                results.append(future.result())
            except LabError as exc:
                errors.append(f"{name}: {exc}")
    if errors:
        raise LabError(f"{len(errors)} of {len(names)} seats did not start:\n" + "\n".join(errors))
    return results


def _prefixed(name: str, report: Progress) -> Callable[[StepEvent], None]:
    """A :meth:`Lab.up` progress subscriber that reports ``<seat>: <message>`` lines."""
    def show(event: StepEvent) -> None:
        if event.message:
            report(f"{name}: {event.message}")
    return show


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])        # utime + stime
    except (OSError, IndexError, ValueError):
        return 0




def _last_activity(lab_path: Path) -> str:
    stamps = [p.stat().st_mtime for p in [lab_path / "serial.log", *lab_path.rglob("*.qcow2")]
              if p.exists()]
    if not stamps:
        return ""
    return datetime.fromtimestamp(max(stamps), tz=timezone.utc).isoformat(timespec="seconds")


def _number(text: str, what: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{what}={text!r} is not a number") from None

