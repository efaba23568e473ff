"""``zfs list`` and ``zfs get`` (zfs(8)).

Property values are typed by property: space properties become bytes (int),
``compressratio``-style ones floats, ``mounted``-style ones booleans; ``-``
(and ``none`` for quotas and reservations) becomes None.  The printed text of
every value is kept in ``raw``.  Column headers are the short property names
(``AVAIL``, ``REFER``, ``USEDSNAP`` ...); they are mapped to the full names.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from . import _table

LIST = "zfs list"
GET = "zfs get"

#: Short column names (headers, ``-o`` abbreviations) -> full property names.
ALIASES = {
    "avail": "available", "refer": "referenced", "usedsnap": "usedbysnapshots",
    "usedds": "usedbydataset", "usedchild": "usedbychildren",
    "usedrefreserv": "usedbyrefreservation", "reserv": "reservation",
    "refreserv": "refreservation", "ratio": "compressratio", "refratio": "refcompressratio",
    "lused": "logicalused", "lrefer": "logicalreferenced", "compress": "compression",
    "volblock": "volblocksize", "recsize": "recordsize", "rdonly": "readonly",
}
_SIZES = {"used", "available", "referenced", "usedbysnapshots", "usedbydataset",
          "usedbychildren", "usedbyrefreservation", "quota", "refquota", "reservation",
          "refreservation", "volsize", "volblocksize", "recordsize", "logicalused",
          "logicalreferenced", "written", "userrefs"}
_RATIOS = {"compressratio", "refcompressratio"}
_BOOLEANS = {"mounted", "defer_destroy"}
_INTEGERS = {"copies", "version", "filesystem_count", "snapshot_count", "createtxg", "guid"}


def canonical(name: str) -> str:
    """The full property name for a header or ``-o`` name (``AVAIL`` -> ``available``)."""
    lowered = name.lower()
    return ALIASES.get(lowered, lowered)


def converter(prop: str) -> Callable[[str], Any]:
    """How a value of property ``prop`` is typed."""
    if prop in _SIZES:
        return _table.size
    if prop in _RATIOS:
        return _table.ratio
    if prop in _BOOLEANS:
        return _table.yes_no
    if prop in _INTEGERS:
        return _table.integer
    if prop == "name":
        return str
    return _table.dash_none


@dataclass(slots=True)
class ZfsDataset:
    """One row of ``zfs list``: ``props`` (typed) keyed by full property name.

    ``raw`` gives the printed text of each column under the same keys.
    """

    name: str
    props: dict[str, Any]
    columns: tuple[str, ...]
    values: Sequence[str]

    @property
    def raw(self) -> dict[str, str]:
        return dict(zip(self.columns, self.values))

    @property
    def used(self) -> int | None:
        return self.props.get("used")

    @property
    def available(self) -> int | None:
        return self.props.get("available")

    @property
    def referenced(self) -> int | None:
        return self.props.get("referenced")

    @property
    def mountpoint(self) -> str | None:
        return self.props.get("mountpoint")

    @property
    def is_snapshot(self) -> bool:
        return "@" in self.name


def parse_zfs_list(text: str, fields: Sequence[str] | str | None = None) -> list[ZfsDataset]:
    """Parse ``zfs list`` (with header) or, given ``fields``, ``zfs list -H [-p] -o <fields>``.

    ``fields`` is the ``-o`` list the command was run with (list or
    ``"name,used"``); ``-H`` output has no header to read it from.  For plain
    ``zfs list -H`` pass ``("name", "used", "avail", "refer", "mountpoint")``.
    """
    if fields is None:
        if text.strip() == "no datasets available":
            return []
        table, rows = _table.header_and_rows(LIST, text, "NAME", free_last=True)
        props = [canonical(n) for n in table.names]
        if props[0] != "name":
            raise ParseError(LIST, "the first column must be NAME", line=" ".join(table.names),
                             lineno=table.lineno)
        return [_dataset(props, table.split(line, lineno), line, lineno) for lineno, line in rows]
    props = [canonical(n) for n in _table.field_list(LIST, fields)]
    return _scripted(text, props)


def _dataset(props: list[str], values: list[str], line: str, lineno: int) -> ZfsDataset:
    typed = {}
    for prop, value in zip(props, values):
        typed[prop] = _table.convert(LIST, converter(prop), value, prop, line, lineno)
    return ZfsDataset(typed.get("name", ""), typed, tuple(props), values)


def _scripted(text: str, props: list[str]) -> list[ZfsDataset]:
    """The -H fast path: split every line once, then convert column by column."""
    with _table.gc_paused():
        return _scripted_rows(text, props)


def _scripted_rows(text: str, props: list[str]) -> list[ZfsDataset]:
    width = len(props)
    lines = text.removesuffix("\n").split("\n") if text else []
    rows = [line.split("\t") for line in lines]
    linenos: list[int] | None = None          # None: row i is line i + 1
    lengths = list(map(len, rows))
    if rows and (min(lengths) != width or max(lengths) != width or width == 1):
        rows, linenos = [], []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            values = line.split("\t")
            if len(values) != width:
                values = _table.split_scripted(LIST, line.rstrip("\r"), lineno, width)
            rows.append(values)
            linenos.append(lineno)
    if not rows:
        return []
    columns = [_column(prop, converter(prop), col, rows, linenos)
               for prop, col in zip(props, zip(*rows))]
    keys = tuple(props)
    name_at = props.index("name") if "name" in props else None
    return [ZfsDataset(values[name_at] if name_at is not None else "", dict(zip(keys, typed)),
                       keys, values)
            for values, typed in zip(rows, zip(*columns))]


def _column(prop: str, func: Callable[[str], Any], column: tuple[str, ...],
            rows: list[list[str]], linenos: list[int] | None) -> Sequence[Any]:
    """One column converted; a bad value raises ParseError naming its line."""
    if func is str:
        return column
    if func is _table.size:
        try:
            return list(map(int, column))      # -p: all exact byte counts
        except ValueError:
            pass
    if func is _table.dash_none:
        return [None if v == "-" or v == "" else v for v in column]
    out = []
    for index, value in enumerate(column):
        try:
            out.append(func(value))
        except ValueError:
            raise ParseError(LIST, f"bad {prop} value {value!r}", line="\t".join(rows[index]),
                             lineno=index + 1 if linenos is None else linenos[index]) from None
    return out


# ----------------------------------------------------------------------------- get
@dataclass(slots=True)
class ZfsProperty:
    """One row of ``zfs get``: ``value`` typed as in :func:`converter`, ``raw`` as printed.

    ``source`` is ``local``, ``default``, ``temporary``, ``received``,
    ``inherited from <dataset>`` or None for ``-`` (read-only properties).
    """

    dataset: str | None
    property: str | None
    value: Any
    raw: str
    source: str | None


_SOURCE_TAIL = re.compile(r"\s+(inherited from \S+|\S+)$")
#: Fields of ``zfs get -H`` without ``-o``.
ZFS_GET_DEFAULT_FIELDS = ("name", "property", "value", "source")


def parse_zfs_get(text: str, fields: Sequence[str] | str | None = None) -> list[ZfsProperty]:
    """Parse ``zfs get`` (with header) or, given ``fields``, ``zfs get -H [-p] [-o fields]``.

    For ``-H`` without ``-o`` pass ``ZFS_GET_DEFAULT_FIELDS``.  Columns not
    selected by ``-o`` are None in the result (``property`` is then None too,
    and the value is left untyped).
    """
    if fields is None:
        table, rows = _table.header_and_rows(GET, text, "NAME")
        if table.names != ["NAME", "PROPERTY", "VALUE", "SOURCE"] and \
                table.names != ["NAME", "PROPERTY", "VALUE"]:
            raise ParseError(GET, "expected the header NAME PROPERTY VALUE [SOURCE]",
                             line=" ".join(table.names), lineno=table.lineno)
        has_source = len(table.names) == 4
        return [_get_row(line, lineno, has_source) for lineno, line in rows]
    names = _table.field_list(GET, fields)
    unknown = set(names) - set(ZFS_GET_DEFAULT_FIELDS)
    if unknown:
        raise ParseError(GET, f"unknown field(s) {', '.join(sorted(unknown))}; zfs get -o "
                         f"takes name, property, value, source")
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = dict(zip(names, _table.split_scripted(GET, line, lineno, len(names))))
        out.append(_property(row.get("name"), row.get("property"), row.get("value"),
                             row.get("source"), line, lineno))
    return out


def _get_row(line: str, lineno: int, has_source: bool) -> ZfsProperty:
    parts = line.split(None, 2)
    if len(parts) < 3:
        raise ParseError(GET, "expected NAME PROPERTY VALUE [SOURCE]", line=line, lineno=lineno)
    dataset, prop, rest = parts
    source = None
    if has_source:
        match = _SOURCE_TAIL.search(rest)
        if not match:
            raise ParseError(GET, "missing SOURCE column", line=line, lineno=lineno)
        source, rest = match.group(1), rest[:match.start()]
    return _property(dataset, prop, rest.strip(), source, line, lineno)


def _property(dataset: str | None, prop: str | None, raw: str | None, source: str | None,
              line: str, lineno: int) -> ZfsProperty:
    value: Any = raw
    if prop is not None and raw is not None:
        value = _table.convert(GET, converter(canonical(prop)), raw, prop, line, lineno)
    return ZfsProperty(dataset, canonical(prop) if prop else None, value, raw or "",
                       None if source in (None, "-") else source)
