"""``kstat -p`` (kstat(8)) and the ZFS ARC statistics read through it.

``-p`` prints one statistic per line, ``module:instance:name:statistic``, a
tab, then the value (copied from a terminal the tab often arrives expanded to
spaces).  ``kstat -p ... interval count`` separates the samples with a blank
line; ``-T u`` / ``-T d`` put a timestamp line (seconds since the epoch, or
``date(1)`` format) before each sample.  Values are integers, decimals (times
in seconds) or text (``on-line``, a CPU brand string with spaces).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import ParseError

COMMAND = "kstat -p"
_KEY = re.compile(r"([^:\s]+):(\d+):([^:\s]*):(\S+)")
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")
_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d( [A-Z]+)? \d{4}")

Value = int | float | str


@dataclass(frozen=True, slots=True)
class KstatValue:
    """One statistic: ``module:instance:name:statistic`` and its typed value."""

    module: str
    instance: int
    name: str
    statistic: str
    value: Value

    @property
    def key(self) -> str:
        return f"{self.module}:{self.instance}:{self.name}:{self.statistic}"


@dataclass(slots=True)
class KstatSample:
    """The statistics printed in one interval (``timestamp``: the ``-T`` line, if any)."""

    values: list[KstatValue] = field(default_factory=list)
    timestamp: str | None = None

    def as_dict(self) -> dict[str, Value]:
        """``{"module:instance:name:statistic": value}``."""
        return {v.key: v.value for v in self.values}

    def get(self, key: str) -> Value:
        """The value of ``module:instance:name:statistic``; KeyError names what exists."""
        for v in self.values:
            if v.key == key:
                return v.value
        raise KeyError(f"no statistic {key!r} in this kstat sample ({len(self.values)} values)")


def parse_kstat(text: str) -> list[KstatSample]:
    """Every sample of ``kstat -p [-T u|d] ... [interval [count]]`` output, in order."""
    samples: list[KstatSample] = []
    current: KstatSample | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if current is not None and current.values:
                samples.append(current)
                current = None
            continue
        stripped = line.strip()
        if _INT.fullmatch(stripped) or _DATE.fullmatch(stripped):       # a -T u / -T d line
            if current is not None and current.values:
                samples.append(current)
            current = KstatSample(timestamp=stripped)
            continue
        if current is None:
            current = KstatSample()
        current.values.append(_value_line(line, lineno))
    if current is not None:
        if not current.values:
            raise ParseError(COMMAND, "output ends after a timestamp line (cut off?)",
                             line=current.timestamp, lineno=None)
        samples.append(current)
    if not samples:
        raise ParseError(COMMAND, "empty output: kstat matched no statistics (exit status 1)")
    return samples


def kstat_values(text: str) -> dict[str, Value]:
    """The last sample of ``kstat -p`` output as ``{key: value}``."""
    return parse_kstat(text)[-1].as_dict()


def _value_line(line: str, lineno: int) -> KstatValue:
    key, sep, rest = line.partition("\t")
    if not sep:
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ParseError(COMMAND, "expected 'module:instance:name:statistic<TAB>value'",
                             line=line, lineno=lineno)
        key, rest = parts
    match = _KEY.fullmatch(key.strip())
    if not match:
        raise ParseError(COMMAND, f"bad statistic name {key.strip()!r} (expected "
                         "module:instance:name:statistic)", line=line, lineno=lineno)
    module, instance, name, statistic = match.groups()
    return KstatValue(module, int(instance), name, statistic, _typed(rest.strip()))


def _typed(text: str) -> Value:
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


# ------------------------------------------------------------------------------ ARC


@dataclass(frozen=True, slots=True)
class ArcStats:
    """ZFS ARC statistics from ``kstat -p zfs:0:arcstats`` (None: not in the output).

    ``hits``/``misses`` count ARC lookups since boot; ``size`` is the ARC's
    current size, ``c`` its target and ``c_max`` its ceiling, in bytes.
    """

    hits: int | None
    misses: int | None
    size: int | None
    c: int | None
    c_max: int | None
    l2_hits: int | None
    l2_misses: int | None
    l2_size: int | None
    values: dict[str, Value]

    @property
    def hit_ratio(self) -> float | None:
        """hits / (hits + misses), or None without both counters or any lookup."""
        return _ratio(self.hits, self.misses)

    @property
    def l2_hit_ratio(self) -> float | None:
        return _ratio(self.l2_hits, self.l2_misses)


def parse_arcstats(text: str) -> ArcStats:
    """The ARC statistics of ``kstat -p zfs:0:arcstats[:stat]`` output (its last sample).

    Lines of other kstats are refused: this names the wrong command early.
    """
    sample = parse_kstat(text)[-1]
    stats: dict[str, Value] = {}
    for v in sample.values:
        if (v.module, v.name) != ("zfs", "arcstats"):
            raise ParseError("kstat -p zfs:0:arcstats", f"not an arcstats statistic: {v.key}")
        stats[v.statistic] = v.value
    return ArcStats(*(_count(stats, k) for k in ("hits", "misses", "size", "c", "c_max",
                                                 "l2_hits", "l2_misses", "l2_size")),
                    values=stats)


def _count(stats: dict[str, Value], key: str) -> int | None:
    value = stats.get(key)
    if value is None:
        return None
    if not isinstance(value, int):
        raise ParseError("kstat -p zfs:0:arcstats", f"arcstats:{key} is not an integer: {value!r}")
    return value


def _ratio(hits: int | None, misses: int | None) -> float | None:
    if hits is None or misses is None or hits + misses == 0:
        return None
    return hits / (hits + misses)


def hit_ratios(samples: Iterable[ArcStats]) -> Iterator[float | None]:
    """The hit ratio of each interval between consecutive samples (for plotting).

    The cumulative ratio since boot hides what happens now; the ratio of the
    counter deltas shows it.
    """
    previous: ArcStats | None = None
    for sample in samples:
        if previous is not None:
            if None in (sample.hits, sample.misses, previous.hits, previous.misses):
                yield None
            else:
                yield _ratio(sample.hits - previous.hits, sample.misses - previous.misses)
        previous = sample
