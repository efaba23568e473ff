"""``zoneadm list`` (zoneadm(8)): plain, ``-v`` table and ``-p`` parseable forms.

``-p`` lines are ``zoneid:zonename:state:zonepath:uuid:brand:ip-type``; a
``:`` inside the zonepath is escaped as ``\\:``.  illumos-joyent (SmartOS)
and OmniOS append the zone's debug id as an eighth field; older releases
print only the first six.  Fields beyond those are kept in ``extra``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ParseError
from . import _table

COMMAND = "zoneadm list"
_V_HEADER = ["ID", "NAME", "STATUS", "PATH", "BRAND", "IP"]
_STATES = {"configured", "incomplete", "installed", "ready", "running", "shutting_down",
           "down", "mounted", "unavailable"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(slots=True)
class Zone:
    """One zone.  ``zoneid`` is None when the zone is not running (``-``);
    fields the output form does not show are None."""

    name: str
    zoneid: int | None = None
    state: str | None = None
    path: str | None = None
    uuid: str | None = None
    brand: str | None = None
    ip_type: str | None = None
    debugid: int | None = None
    extra: tuple[str, ...] = ()


def parse_zoneadm_list(text: str) -> list[Zone]:
    """Parse ``zoneadm list`` in any of its forms (``-v``/``-cv``/``-iv``, ``-p``/``-cp``, names)."""
    lines = [(n, line.strip()) for n, line in _table.content_lines(text)]
    if not lines:
        raise ParseError(COMMAND, "empty output (the global zone is always listed)")
    first = lines[0][1].split()
    if first[:2] == ["ID", "NAME"]:
        return _verbose(lines)
    if ":" in lines[0][1]:
        return [_parseable(line, n) for n, line in lines]
    zones = []
    for lineno, line in lines:
        if not _NAME.fullmatch(line):
            raise ParseError(COMMAND, "expected a zone name", line=line, lineno=lineno)
        zones.append(Zone(line))
    return zones


def _verbose(lines: list[tuple[int, str]]) -> list[Zone]:
    lineno, header = lines[0]
    names = header.split()
    if names != _V_HEADER[:len(names)] or len(names) < 4:
        raise ParseError(COMMAND, "expected the header ID NAME STATUS PATH [BRAND IP]",
                         line=header, lineno=lineno)
    table = _table.Table(COMMAND, header, lineno)
    zones = []
    for n, line in lines[1:]:
        values = table.split(line, n) + [None] * (6 - len(names))
        zoneid, name, state, path, brand, ip_type = values
        zones.append(Zone(name, _zoneid(zoneid, line, n), _state(state, line, n), path,
                          brand=brand, ip_type=ip_type))
    return zones


def _parseable(line: str, lineno: int) -> Zone:
    values = _table.split_escaped(line)
    if len(values) < 6:
        raise ParseError(COMMAND, f"expected at least 6 ':'-separated fields "
                         f"(zoneid:zonename:state:zonepath:uuid:brand[:ip-type...]), "
                         f"found {len(values)}", line=line, lineno=lineno)
    zoneid, name, state, path, uuid, brand = values[:6]
    ip_type = values[6] if len(values) > 6 else None
    debugid = values[7] if len(values) > 7 else ""
    if not _NAME.fullmatch(name):
        raise ParseError(COMMAND, f"bad zone name {name!r}", line=line, lineno=lineno)
    return Zone(name, _zoneid(zoneid, line, lineno), _state(state, line, lineno), path,
                uuid or None, brand or None, ip_type or None,
                _table.convert(COMMAND, _table.integer, debugid, "debugid", line, lineno),
                tuple(values[8:]))


def _zoneid(text: str, line: str, lineno: int) -> int | None:
    if text == "-":
        return None
    return _table.convert(COMMAND, int, text, "zone id", line, lineno)


def _state(text: str, line: str, lineno: int) -> str:
    if text not in _STATES:
        raise ParseError(COMMAND, f"unknown zone state {text!r}", line=line, lineno=lineno)
    return text
