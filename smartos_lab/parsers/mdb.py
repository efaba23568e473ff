"""``echo ::memstat | mdb -k``: the kernel's page usage summary (mdb(1) ``::memstat``).

illumos (and so SmartOS) prints, from ``usr/src/cmd/mdb/common/modules/genunix/memory.c``::

    Page Summary                Pages                MB  %Tot
    ------------     ----------------  ----------------  ----
    Kernel                     692333              2704   19%
    ZFS File Data             1125020              4394   30%
    ...
    Free (freelist)            217036               847    6%

    Total                     3690945             14417
    Physical                  3690944             14417

Rows appear only when non-zero for some categories (``Boot pages``, ``ZFS File
Data``, ``VMM Memory``, ``Balloon``); ``Physical`` only when it differs from
``Total``.  Oracle Solaris 11 prints a ``Bytes`` column with sizes such as
``389.8M`` instead of ``MB``; both layouts are read.  The MB column is
truncated by mdb, so ``bytes`` is a whole number of MiB there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ParseError
from . import _table

#: the command as the SmartOS docs run it.  Not ``mdb -k ::memstat``: mdb(1) reads an operand
#: as an object file; a dcmd goes on standard input or after ``-e`` (``mdb -ke ::memstat``).
MEMSTAT = "echo ::memstat | mdb -k"

_HEADER = re.compile(r"\s*Page Summary\s+Pages\s+(MB|Bytes)\s+%Tot\s*$")
_RULE = re.compile(r"\s*-+(?:\s+-+){3}\s*$")
_ROW = re.compile(r"\s*(?P<name>\S.*?)\s+(?P<pages>\d+)\s+(?P<size>\d+(?:\.\d+)?[KMGTPE]?)"
                  r"(?:\s+(?P<pct>\d+)%)?\s*$")
_TOTALS = ("Total", "Physical")


@dataclass(frozen=True, slots=True)
class MemStatRow:
    """One ``::memstat`` line: pages, their size in bytes and the share of memory (``%Tot``)."""

    name: str
    pages: int
    bytes: int
    percent: int | None     # None for Total and Physical

    @property
    def mb(self) -> float:
        return self.bytes / (1 << 20)


@dataclass(slots=True)
class MemStat:
    """The page summary: ``rows`` are the categories in printed order."""

    rows: list[MemStatRow]
    total: MemStatRow
    physical: MemStatRow | None = None
    unit: str = "MB"        # the size column's header: "MB" (illumos) or "Bytes" (Solaris 11)
    by_name: dict[str, MemStatRow] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {row.name: row for row in self.rows}

    def __getitem__(self, name: str) -> MemStatRow:
        return self.by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def percentages(self) -> dict[str, int]:
        """``{category: %Tot}``, handy for a pie chart."""
        return {row.name: row.percent for row in self.rows if row.percent is not None}


def parse_mdb_memstat(text: str, *, command: str = MEMSTAT) -> MemStat:
    """Parse ``::memstat`` output; lines before the header (mdb notices) are skipped."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        raise ParseError(command, "no 'Page Summary  Pages  MB|Bytes  %Tot' header")
    unit = _HEADER.match(lines[start]).group(1)
    if start + 1 >= len(lines) or not _RULE.match(lines[start + 1]):
        raise ParseError(command, "the header is not followed by its '----' rule",
                         line=lines[start + 1] if start + 1 < len(lines) else "",
                         lineno=start + 2)
    rows: list[MemStatRow] = []
    totals: dict[str, MemStatRow] = {}
    for lineno, line in enumerate(lines[start + 2:], start + 3):
        if not line.strip():
            continue
        match = _ROW.match(line)
        if not match:
            raise ParseError(command, "not a memstat row", line=line, lineno=lineno)
        name = match.group("name")
        pct = match.group("pct")
        try:
            size = _size(match.group("size"), unit)
        except ValueError as exc:
            raise ParseError(command, str(exc), line=line, lineno=lineno) from None
        row = MemStatRow(name, int(match.group("pages")), size, int(pct) if pct else None)
        if name in _TOTALS:
            if pct is not None:
                raise ParseError(command, f"{name} row with a percentage", line=line, lineno=lineno)
            totals[name] = row
        else:
            if totals:
                raise ParseError(command, "category row after the Total line", line=line,
                                 lineno=lineno)
            if pct is None:
                raise ParseError(command, "category row without a %Tot value", line=line,
                                 lineno=lineno)
            rows.append(row)
    if "Total" not in totals:
        raise ParseError(command, "no Total line (truncated output?)",
                         line=lines[-1] if lines else "", lineno=len(lines))
    if not rows:
        raise ParseError(command, "no category rows")
    return MemStat(rows=rows, total=totals["Total"], physical=totals.get("Physical"), unit=unit)


def _size(text: str, unit: str) -> int:
    if unit == "MB":
        if not text.isdigit():
            raise ValueError(f"MB column holds {text!r}")
        return int(text) << 20
    return _table.size(text)
