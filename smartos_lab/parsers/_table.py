"""Shared pieces of the output parsers: value conversion and column splitting.

Human-readable sizes follow ZFS's ``zfs_nicenum``: powers of 1024 with the
suffixes B, K, M, G, T, P, E (``1.23G`` is ``int(1.23 * 2**30)``, so it is as
exact as the printed digits).  ``-`` means "no value" and becomes ``None``.
"""
from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ParseError

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
          "P": 1 << 50, "E": 1 << 60, "Z": 1 << 70}
# "1.23G", "518K", "0", "0B", "931.51 GiB", "127.2 MiB", "16.5KB"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s?([BKMGTPEZ]?)(?:i?B)?")
_RATIO = re.compile(r"(\d+(?:\.\d+)?)x?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%?")


def size(text: str) -> int | None:
    """Bytes from ``1.23G`` / ``518K`` / ``42`` / ``931.51 GiB``; ``-`` and ``none`` give None."""
    if text.isdigit():                      # the -p fast path
        return int(text)
    if text in ("-", "none", ""):
        return None
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, unit = match.groups()
    if "." not in number:
        return int(number) * _UNITS[unit]
    return int(float(number) * _UNITS[unit])


def count(text: str) -> int:
    """An error counter as printed by zpool status: ``0``, ``542``, ``1.88K``, ``13.4M``."""
    if text.isdigit():
        return int(text)
    match = _SIZE.fullmatch(text)
    if not match or match.group(2) in ("", "B"):
        raise ValueError(f"not an error count: {text!r}")
    number, unit = match.groups()
    return round(float(number) * _UNITS[unit])


def ratio(text: str) -> float | None:
    """``1.50x`` (or ``1.50`` under -p) -> 1.5; ``-`` -> None."""
    if text in ("-", ""):
        return None
    match = _RATIO.fullmatch(text)
    if not match:
        raise ValueError(f"not a ratio: {text!r}")
    return float(match.group(1))


def percent(text: str) -> float | None:
    """``8%`` (or ``8`` under -p) -> 8.0; ``-`` -> None."""
    if text in ("-", ""):
        return None
    match = _PERCENT.fullmatch(text)
    if not match:
        raise ValueError(f"not a percentage: {text!r}")
    return float(match.group(1))


def integer(text: str) -> int | None:
    """An integer; ``-`` or empty -> None."""
    if text in ("-", ""):
        return None
    return int(text)


def yes_no(text: str) -> bool | None:
    """``yes``/``no`` (also ``on``/``off``, ``true``/``false``); ``-`` -> None."""
    lowered = text.lower()
    if lowered in ("yes", "on", "true"):
        return True
    if lowered in ("no", "off", "false"):
        return False
    if text in ("-", ""):
        return None
    raise ValueError(f"not a yes/no value: {text!r}")


def dash_none(text: str) -> str | None:
    """The text itself, or None for the ``-`` placeholder."""
    return None if text in ("-", "") else text


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Allocating ~100k dicts and dataclasses otherwise triggers repeated
    collections that cost more than the parsing itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without trailing whitespace) for every non-blank line."""
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.rstrip()
        if stripped:
            yield lineno, stripped


def load_json(command: str, text: str) -> Any:
    """``json.loads(text)``; text that is not JSON is a ParseError naming the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(command, f"not JSON: {exc.msg}", line=line, lineno=exc.lineno) from None


def convert(command: str, func: Callable[[str], Any], value: str, what: str,
            line: str, lineno: int) -> Any:
    """``func(value)``, turning a conversion failure into a ParseError naming the line."""
    try:
        return func(value)
    except ValueError:
        raise ParseError(command, f"bad {what} value {value!r}", line=line, lineno=lineno) from None


class Table:
    """A whitespace-aligned table with a header line (``NAME  USED  AVAIL ...``).

    Rows are split on runs of whitespace.  When ``free_last`` is set, the last
    column may itself contain spaces (a mountpoint, an alias, a description);
    otherwise a row must have exactly as many values as the header has names.
    """

    def __init__(self, command: str, header: str, lineno: int, *, free_last: bool = False):
        self.command = command
        self.names = header.split()
        self.lineno = lineno
        self.free_last = free_last

    def split(self, line: str, lineno: int) -> list[str]:
        width = len(self.names)
        values = line.split(None, width - 1) if self.free_last else line.split()
        if len(values) != width:
            raise ParseError(self.command, f"expected {width} columns "
                             f"({' '.join(self.names)}), found {len(values)}",
                             line=line, lineno=lineno)
        return values


def header_and_rows(command: str, text: str, expected_first: str, *,
                    free_last: bool = False) -> tuple[Table, list[tuple[int, str]]]:
    """Split ``text`` into its header (which must start with ``expected_first``) and rows."""
    lines = list(content_lines(text))
    if not lines:
        raise ParseError(command, f"empty output: expected a header line starting with "
                         f"{expected_first!r}")
    lineno, header = lines[0]
    if header.split()[0] != expected_first:
        raise ParseError(command, f"expected a header line starting with {expected_first!r}",
                         line=header, lineno=lineno)
    return Table(command, header, lineno, free_last=free_last), lines[1:]


def split_scripted(command: str, line: str, lineno: int, width: int) -> list[str]:
    """One line of ``-H`` output: tab-separated fields.

    Output copied from a terminal often has its tabs expanded to spaces; such
    a line is accepted only if splitting on whitespace gives exactly ``width``
    values (otherwise a value containing spaces cannot be told apart).
    """
    values = line.split("\t") if "\t" in line else line.split()
    if len(values) != width:
        raise ParseError(command, f"expected {width} tab-separated fields, found {len(values)}",
                         line=line, lineno=lineno)
    return values


def split_escaped(line: str) -> list[str]:
    """Split on ``:`` where a backslash escapes the next character (``\\:`` is a colon)."""
    if "\\" not in line:
        return line.split(":")
    values, current, chars = [], [], iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ":":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return values


def split_parseable(command: str, line: str, lineno: int, width: int) -> list[str]:
    """One line of ``-p`` output from illumos ofmt tools (dladm, zoneadm).

    Fields are separated by ``:``; a ``:`` or ``\\`` inside a value is escaped
    with a backslash (dladm(8) "parseable output format").  A single field is
    printed unescaped.
    """
    if width == 1:
        return [line]
    values = split_escaped(line)
    if len(values) != width:
        raise ParseError(command, f"expected {width} ':'-separated fields, found {len(values)}",
                         line=line, lineno=lineno)
    return values


def field_list(command: str, fields: Sequence[str] | str) -> list[str]:
    """The caller's ``-o`` field list as lower-case names (a list or ``"a,b,c"``)."""
    names = fields.split(",") if isinstance(fields, str) else list(fields)
    names = [name.strip().lower() for name in names]
    if not names or not all(names):
        raise ParseError(command, f"invalid field list {fields!r}")
    return names
