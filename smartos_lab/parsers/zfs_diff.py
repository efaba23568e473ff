"""``zfs diff [-F] [-H] [-t]`` (zfs-diff(8)): what changed since a snapshot.

Each line is a change type (``-`` removed, ``+`` created, ``M`` modified,
``R`` renamed), with ``-t`` the inode change time first, with ``-F`` a file
type character, then the path; a rename gives ``old -> new`` (``-H``: the
two paths tab-separated, no arrow); a change of link count ends in ``(+1)``.
zfs diff escapes spaces and unprintable bytes in paths as ``\\0ooo`` octal
(unless ``-h``), so fields never hold spaces: the whitespace-expanded text
of a man page parses like the tab-separated original.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ParseError
from . import _table

COMMAND = "zfs diff"
CHANGES = {"-": "removed", "+": "created", "M": "modified", "R": "renamed"}
FILE_TYPES = {"B": "block device", "C": "character device", "/": "directory", ">": "door",
              "|": "named pipe", "@": "symbolic link", "P": "event port", "=": "socket",
              "F": "regular file"}
_LINKS = re.compile(r"\(([+-]\d+)\)")
_CTIME = re.compile(r"\d+\.\d+")
_OCTAL = re.compile(r"\\(0[0-7]{3})")


@dataclass(frozen=True, slots=True)
class ZfsDiffEntry:
    """One changed path (``new_path`` for renames; ``file_type`` with ``-F``)."""

    change: str                    # "-", "+", "M" or "R"
    path: str                      # unescaped
    new_path: str | None = None
    file_type: str | None = None   # "F", "/", "@", ... (see FILE_TYPES)
    link_delta: int | None = None  # the "(+1)" suffix
    ctime: float | None = None     # with -t

    @property
    def kind(self) -> str:
        return CHANGES[self.change]


def parse_zfs_diff(text: str, *, file_types: bool | None = None) -> list[ZfsDiffEntry]:
    """Parse zfs diff output.  ``file_types`` says whether ``-F`` was given (None: guess
    from the second field of the first line).  Empty output means no change."""
    entries = []
    for lineno, line in _table.content_lines(text):
        fields = line.split("\t") if "\t" in line else line.split()
        entries.append(_entry(fields, line, lineno, file_types))
        if file_types is None:
            file_types = entries[-1].file_type is not None
    return entries


def _entry(fields: list[str], line: str, lineno: int, file_types: bool | None) -> ZfsDiffEntry:
    fields = [f for f in fields if f != ""]
    ctime = None
    if fields and _CTIME.fullmatch(fields[0]):
        ctime = float(fields.pop(0))
    if len(fields) < 2 or fields[0] not in CHANGES:
        raise ParseError(COMMAND, "expected a change type (- + M R) and a path",
                         line=line, lineno=lineno)
    change = fields.pop(0)
    file_type = None
    if file_types or (file_types is None and fields[0] in FILE_TYPES and len(fields) > 1):
        if fields[0] not in FILE_TYPES:
            raise ParseError(COMMAND, f"unknown file type {fields[0]!r}", line=line, lineno=lineno)
        file_type = fields.pop(0)
    link_delta = None
    if fields and _LINKS.fullmatch(fields[-1]):
        link_delta = int(_LINKS.fullmatch(fields.pop()).group(1))
    if fields[1:2] == ["->"]:
        del fields[1]
    if change == "R":
        if len(fields) != 2:
            raise ParseError(COMMAND, "a rename needs the old and the new path (cut off?)",
                             line=line, lineno=lineno)
        return ZfsDiffEntry(change, _unescape(fields[0]), _unescape(fields[1]), file_type,
                            link_delta, ctime)
    if len(fields) != 1 or not fields[0].startswith("/"):
        raise ParseError(COMMAND, "expected one absolute path", line=line, lineno=lineno)
    return ZfsDiffEntry(change, _unescape(fields[0]), None, file_type, link_delta, ctime)


def _unescape(path: str) -> str:
    if not path.startswith("/"):
        raise ParseError(COMMAND, f"not an absolute path: {path!r}")
    raw = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), path)
    return raw.encode("latin-1", "surrogateescape").decode("utf-8", "replace") \
        if any(ord(c) > 127 for c in raw) else raw
