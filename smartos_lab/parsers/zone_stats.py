"""Per-zone resource usage: ``zonememstat`` and ``prstat -Z`` (one sample).

``zonememstat`` (smartos-live ``src/zonememstat.sh``) prints
``ZONE [ALIAS] RSS(MB) CAP(MB) NOVER POUT(MB) [SWAP%]``: a zone without a cap
(the global zone) has ``-`` for CAP, NOVER and POUT.  Releases before SWAP%
print five columns.  With ``-H`` there is no header: the column set is then
read from the number of values.

``prstat -Z`` prints a process table (``PID USERNAME SIZE RSS STATE PRI NICE
TIME CPU PROCESS/NLWP``), a zone table (``ZONEID NPROC SWAP RSS MEMORY TIME CPU
ZONE``; a long zone name is cut to 28 characters and ``*``) and a
``Total:`` line with the load averages.  Sizes use ``K``/``M``/
``G`` (KiB units, like ``ls -h``), TIME is ``[h]h:mm:ss``.  Give prstat ``-c``
and a count (``prstat -Z -c 1 1``) for exactly one sample.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ParseError
from . import _table

ZONEMEMSTAT = "zonememstat"
PRSTAT = "prstat -Z"
_MEM_HEADERS = {
    ("ZONE", "RSS(MB)", "CAP(MB)", "NOVER", "POUT(MB)"): False,
    ("ZONE", "RSS(MB)", "CAP(MB)", "NOVER", "POUT(MB)", "SWAP%"): False,
    ("ZONE", "ALIAS", "RSS(MB)", "CAP(MB)", "NOVER", "POUT(MB)", "SWAP%"): True,
}
_TIME = re.compile(r"(\d+):(\d\d):(\d\d)")
_TOTAL = re.compile(r"Total: (\d+) processes, (\d+) lwps, load averages: "
                    r"([\d.]+), ([\d.]+), ([\d.]+)")


@dataclass(frozen=True, slots=True)
class ZoneMemStat:
    """One zone's memory cap statistics (MiB; None where zonememstat prints ``-``)."""

    zone: str
    rss_mib: int
    cap_mib: int | None
    nover: int | None            # times the zone went over its cap
    pageout_mib: int | None      # memory paged out because of the cap
    swap_percent: float | None = None
    alias: str | None = None

    @property
    def over_cap(self) -> bool:
        """Has the cap ever bitten (NOVER > 0)?"""
        return bool(self.nover)


def parse_zonememstat(text: str) -> list[ZoneMemStat]:
    """Parse ``zonememstat [-a] [-t] [-H] [-o] [-z zone]`` output (one row per zone;
    a ``-t`` totals row has the zone name ``total``)."""
    lines = list(_table.content_lines(text))
    if not lines:
        raise ParseError(ZONEMEMSTAT, "empty output (the global zone is always listed)")
    names = tuple(lines[0][1].split())
    if names[:1] == ("ZONE",):
        if names not in _MEM_HEADERS:
            raise ParseError(ZONEMEMSTAT, "unknown header (expected ZONE [ALIAS] RSS(MB) CAP(MB) "
                             "NOVER POUT(MB) [SWAP%])", line=lines[0][1], lineno=lines[0][0])
        width, aliased, rows = len(names), _MEM_HEADERS[names], lines[1:]
    else:                                                     # -H: no header
        width = len(lines[0][1].split())
        if width not in (5, 6, 7):
            raise ParseError(ZONEMEMSTAT, f"expected 5, 6 or 7 columns, found {width}",
                             line=lines[0][1], lineno=lines[0][0])
        aliased, rows = width == 7, lines
    return [_mem_row(line, n, width, aliased) for n, line in rows]


def _mem_row(line: str, lineno: int, width: int, aliased: bool) -> ZoneMemStat:
    values = line.split()
    if len(values) != width:
        raise ParseError(ZONEMEMSTAT, f"expected {width} columns, found {len(values)} "
                         "(cut off?)", line=line, lineno=lineno)
    zone = values.pop(0)
    alias = _table.dash_none(values.pop(0)) if aliased else None

    def num(text: str, what: str, func=_table.integer):
        return _table.convert(ZONEMEMSTAT, func, text, what, line, lineno)

    rss = num(values[0], "RSS(MB)")
    if rss is None:
        raise ParseError(ZONEMEMSTAT, "RSS(MB) is never '-'", line=line, lineno=lineno)
    swap = num(values[4], "SWAP%", _float_or_none) if len(values) > 4 else None
    return ZoneMemStat(zone, rss, num(values[1], "CAP(MB)"), num(values[2], "NOVER"),
                       num(values[3], "POUT(MB)"), swap, alias)


def _float_or_none(text: str) -> float | None:
    return None if text == "-" else float(text)


# ------------------------------------------------------------------------------ prstat -Z


@dataclass(frozen=True, slots=True)
class PrstatProcess:
    """One row of the process table (sizes in bytes, CPU in percent)."""

    pid: int
    user: str
    size: int
    rss: int
    state: str
    priority: int
    nice: int
    cpu_seconds: int
    cpu_percent: float
    process: str
    nlwp: int


@dataclass(frozen=True, slots=True)
class PrstatZone:
    """One row of the zone table (sizes in bytes; MEMORY and CPU in percent)."""

    zoneid: int
    nproc: int
    swap: int
    rss: int
    memory_percent: float
    cpu_seconds: int
    cpu_percent: float
    zone: str


@dataclass(slots=True)
class PrstatSample:
    """One ``prstat -Z`` sample: both tables and the Total line."""

    processes: list[PrstatProcess] = field(default_factory=list)
    zones: list[PrstatZone] = field(default_factory=list)
    total_processes: int = 0
    total_lwps: int = 0
    load_averages: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def zone(self, name: str) -> PrstatZone:
        """The row of zone ``name``; prstat cuts long names (a UUID) to a prefix and ``*``."""
        for z in self.zones:
            if z.zone == name or (z.zone.endswith("*") and name.startswith(z.zone[:-1])):
                return z
        raise KeyError(f"zone {name!r} not in the prstat sample "
                       f"({', '.join(z.zone for z in self.zones)})")


_PROC_HEADER = ("PID", "USERNAME", "SIZE", "RSS", "STATE", "PRI", "NICE", "TIME", "CPU",
                "PROCESS/NLWP")
_ZONE_HEADER = ("ZONEID", "NPROC", "SWAP", "RSS", "MEMORY", "TIME", "CPU", "ZONE")


def parse_prstat_zones(text: str) -> PrstatSample:
    """Parse one sample of ``prstat -Z`` (``-c`` mode; a second sample is refused)."""
    lines = list(_table.content_lines(text))
    if not lines or tuple(lines[0][1].split()) != _PROC_HEADER:
        line, n = (lines[0][1], lines[0][0]) if lines else (None, None)
        raise ParseError(PRSTAT, "expected the process header PID USERNAME SIZE RSS STATE PRI "
                         "NICE TIME CPU PROCESS/NLWP", line=line, lineno=n)
    sample = PrstatSample()
    section = "processes"
    for n, line in lines[1:]:
        words = line.split()
        if tuple(words) == _ZONE_HEADER:
            if section != "processes":
                raise ParseError(PRSTAT, "a second zone table (two samples? use -c and a count "
                                 "of 1)", line=line, lineno=n)
            section = "zones"
            continue
        if line.startswith("Total:"):
            match = _TOTAL.fullmatch(line.strip())
            if not match or section != "zones":
                raise ParseError(PRSTAT, "bad Total line (or no zone table before it: was -Z "
                                 "given?)", line=line, lineno=n)
            procs, lwps, *loads = match.groups()
            sample.total_processes, sample.total_lwps = int(procs), int(lwps)
            sample.load_averages = (float(loads[0]), float(loads[1]), float(loads[2]))
            section = "done"
            continue
        if section == "processes":
            sample.processes.append(_process(words, line, n))
        elif section == "zones":
            sample.zones.append(_zone(words, line, n))
        else:
            raise ParseError(PRSTAT, "output after the Total line (more than one sample?)",
                             line=line, lineno=n)
    if section != "done":
        raise ParseError(PRSTAT, "no Total line: the sample is cut off")
    return sample


def _process(words: list[str], line: str, n: int) -> PrstatProcess:
    if len(words) != 10:
        raise ParseError(PRSTAT, f"expected 10 process columns, found {len(words)}",
                         line=line, lineno=n)
    pid, user, size, rss, state, pri, nice, time, cpu, proc = words
    name, slash, nlwp = proc.rpartition("/")
    if not slash:
        raise ParseError(PRSTAT, f"expected PROCESS/NLWP, got {proc!r}", line=line, lineno=n)

    def conv(func, text, what):
        return _table.convert(PRSTAT, func, text, what, line, n)

    return PrstatProcess(conv(int, pid, "PID"), user, conv(_kib_size, size, "SIZE"),
                         conv(_kib_size, rss, "RSS"), state, conv(int, pri, "PRI"),
                         conv(int, nice, "NICE"), conv(_seconds, time, "TIME"),
                         conv(_percent, cpu, "CPU"), name, conv(int, nlwp, "NLWP"))


def _zone(words: list[str], line: str, n: int) -> PrstatZone:
    if len(words) != 8:
        raise ParseError(PRSTAT, f"expected 8 zone columns, found {len(words)}",
                         line=line, lineno=n)
    zoneid, nproc, swap, rss, memory, time, cpu, zone = words

    def conv(func, text, what):
        return _table.convert(PRSTAT, func, text, what, line, n)

    return PrstatZone(conv(int, zoneid, "ZONEID"), conv(int, nproc, "NPROC"),
                      conv(_kib_size, swap, "SWAP"), conv(_kib_size, rss, "RSS"),
                      conv(_percent, memory, "MEMORY"), conv(_seconds, time, "TIME"),
                      conv(_percent, cpu, "CPU"), zone)


def _kib_size(text: str) -> int:
    value = _table.size(text)
    if value is None or not text[-1:].isalpha():
        raise ValueError(text)           # prstat always prints a unit (K, M, G, T)
    return value


def _seconds(text: str) -> int:
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueError(text)
    h, m, s = (int(g) for g in match.groups())
    return h * 3600 + m * 60 + s


def _percent(text: str) -> float:
    if not text.endswith("%"):
        raise ValueError(text)
    return float(text[:-1])
