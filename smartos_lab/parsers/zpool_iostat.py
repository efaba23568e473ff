"""``zpool iostat`` (zpool-iostat(8)): I/O of pools and vdevs.

Two forms:

* the table: two header lines (``capacity operations bandwidth`` over
  ``pool alloc free read write read write``; older releases say ``used avail``
  and print the pool's name instead of ``pool`` under ``-v``), ``-----``
  separator lines, vdevs indented two spaces per level under ``-v``, and
  values in ``zfs_nicenum`` units (``20.0G``, ``1.2M``);
* ``-H`` (scripted): one tab-separated line per row, no header, no
  indentation, and with ``-p`` exact integers.

The first report covers the time since the pool was imported; with an
interval each later report covers the last interval.  Reports are not
separated under ``-H``: a name seen again at the top level starts the next
sample (``sample`` counts from 0).  Columns added with ``-c`` are kept in
``extra``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ParseError
from . import _table

COMMAND = "zpool iostat"
_GROUPS = ["capacity", "operations", "bandwidth"]


@dataclass(frozen=True, slots=True)
class IostatRow:
    """One pool or vdev in one report (sizes and bandwidth in bytes, ops as counts
    per second; None for ``-``)."""

    name: str
    depth: int                      # 0: pool (or top-level vdev in an old -v table)
    alloc: int | None
    free: int | None
    read_ops: int | None
    write_ops: int | None
    read_bytes: int | None
    write_bytes: int | None
    sample: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def parse_zpool_iostat(text: str) -> list[IostatRow]:
    """Parse ``zpool iostat [-v] [-H] [-p] [-c ...] [pool ...] [interval [count]]``."""
    lines = [(n, line) for n, line in _table.content_lines(text)]
    if not lines:
        raise ParseError(COMMAND, "empty output: no pools")
    if lines[0][1].split() == _GROUPS:
        return _table_form(lines)
    return _scripted(lines)


def _table_form(lines: list[tuple[int, str]]) -> list[IostatRow]:
    if len(lines) < 2:
        raise ParseError(COMMAND, "the output ends after the first header line (cut off?)")
    n, header = lines[1]
    names = header.split()
    if len(names) < 7 or names[1:3] not in (["alloc", "free"], ["used", "avail"]) \
            or names[3:7] != ["read", "write", "read", "write"]:
        raise ParseError(COMMAND, "expected the header 'pool alloc free read write read write'",
                         line=header, lineno=n)
    extra_names = names[7:]
    rows: list[IostatRow] = []
    seen: set[str] = set()
    sample = 0
    for n, line in lines[2:]:
        if set(line.replace(" ", "")) == {"-"}:
            continue
        if line.split() == _GROUPS or line.split() == names:
            continue                                    # the headers repeated
        depth = (len(line) - len(line.lstrip(" "))) // 2
        values = line.split()
        if len(values) < 7 or len(values) > 7 + len(extra_names):
            raise ParseError(COMMAND, f"expected 7 columns ({' '.join(names[:7])}), found "
                             f"{len(values)} (cut off?)", line=line, lineno=n)
        if depth == 0:
            if values[0] in seen:
                sample, seen = sample + 1, set()
            seen.add(values[0])
        rows.append(_row(values, depth, sample, extra_names, line, n, human=True))
    if not rows:
        raise ParseError(COMMAND, "headers but no rows (cut off?)")
    return rows


def _scripted(lines: list[tuple[int, str]]) -> list[IostatRow]:
    rows: list[IostatRow] = []
    seen: set[str] = set()
    sample = 0
    for n, line in lines:
        values = line.split("\t") if "\t" in line else line.split()
        values = [v.strip() for v in values]
        if len(values) < 7:
            raise ParseError(COMMAND, f"expected 7 tab-separated fields (name alloc free "
                             f"read-ops write-ops read-bytes write-bytes), found {len(values)}",
                             line=line, lineno=n)
        if values[0] in seen:
            sample, seen = sample + 1, set()
        seen.add(values[0])
        rows.append(_row(values, 0, sample, [f"c{i}" for i in range(len(values) - 7)],
                         line, n, human=False))
    return rows


def _row(values: list[str], depth: int, sample: int, extra_names: list[str], line: str,
         n: int, *, human: bool) -> IostatRow:
    def conv(func, text, what):
        return _table.convert(COMMAND, func, text, what, line, n)

    size = _table.size
    ops = _ops if human else _table.integer
    return IostatRow(values[0], depth, conv(size, values[1], "alloc"), conv(size, values[2], "free"),
                     conv(ops, values[3], "read operations"),
                     conv(ops, values[4], "write operations"),
                     conv(size, values[5], "read bandwidth"),
                     conv(size, values[6], "write bandwidth"), sample,
                     dict(zip(extra_names, values[7:])))


def _ops(text: str) -> int | None:
    return None if text == "-" else _table.count(text)
