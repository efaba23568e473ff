"""System inventory: ``sysinfo``, ``diskinfo``, ``dladm show-phys/show-vnic``, ``svcs``.

dladm prints through illumos libofmt: in tables an empty value shows as
``--`` and an unknown one as ``?``; a value wider than its column pushes the
rest of the row right (so rows are split on whitespace), and when stdout is
not a terminal the header is printed again every 24 rows.  With ``-p`` the
fields are ``:``-separated, ``:`` and ``\\`` inside values are escaped with
``\\`` (unless only one field is printed) and empty values stay empty.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ParseError
from . import _table

SYSINFO = "sysinfo"
DISKINFO = "diskinfo"
SHOW_PHYS = "dladm show-phys"
SHOW_VNIC = "dladm show-vnic"
SVCS = "svcs"
SVCS_X = "svcs -x"


# ----------------------------------------------------------------------------- sysinfo
@dataclass(slots=True)
class NetworkInterface:
    """An entry of sysinfo's "Network Interfaces" (or "Virtual Network Interfaces")."""

    name: str
    mac: str | None
    ip4addr: str | None
    link_status: str | None
    nic_names: list[str]
    raw: dict[str, Any]


@dataclass(slots=True)
class Sysinfo:
    """SmartOS ``sysinfo`` (sysinfo(8)); every key stays available in ``raw``.

    ``memory_mib`` comes from "MiB of Memory" (printed as a string),
    ``boot_time`` is seconds since the epoch, ``disks`` maps disk -> "Size in GB".
    """

    live_image: str | None
    hostname: str | None
    uuid: str | None
    system_type: str | None
    boot_time: int | None
    cpu_type: str | None
    cpu_virtualization: str | None
    cpu_total_cores: int | None
    memory_mib: int | None
    vm_capable: bool | None
    bhyve_capable: bool | None
    zpool: str | None
    zpool_disks: list[str]
    disks: dict[str, int | None]
    boot_parameters: dict[str, str]
    network_interfaces: dict[str, NetworkInterface]
    virtual_network_interfaces: dict[str, NetworkInterface]
    raw: dict[str, Any]


def parse_sysinfo(text: str) -> Sysinfo:
    """Parse the JSON object printed by ``sysinfo``."""
    raw = _table.load_json(SYSINFO, text)
    if not isinstance(raw, dict):
        raise ParseError(SYSINFO, f"expected a JSON object, got {type(raw).__name__}")
    if "UUID" not in raw and "Live Image" not in raw:
        raise ParseError(SYSINFO, "neither 'UUID' nor 'Live Image' present: not sysinfo output")
    disks = {}
    for name, info in _object(raw, "Disks").items():
        size = info.get("Size in GB") if isinstance(info, dict) else None
        disks[name] = _int(size, f"Disks.{name}")
    zpool_disks = raw.get("Zpool Disks") or ""
    return Sysinfo(
        live_image=raw.get("Live Image"), hostname=raw.get("Hostname"), uuid=raw.get("UUID"),
        system_type=raw.get("System Type"), boot_time=_int(raw.get("Boot Time"), "Boot Time"),
        cpu_type=raw.get("CPU Type"), cpu_virtualization=raw.get("CPU Virtualization"),
        cpu_total_cores=_int(raw.get("CPU Total Cores"), "CPU Total Cores"),
        memory_mib=_int(raw.get("MiB of Memory"), "MiB of Memory"),
        vm_capable=_bool(raw.get("VM Capable"), "VM Capable"),
        bhyve_capable=_bool(raw.get("Bhyve Capable"), "Bhyve Capable"),
        zpool=raw.get("Zpool"),
        zpool_disks=[d for d in str(zpool_disks).split(",") if d],
        disks=disks,
        boot_parameters={k: str(v) for k, v in _object(raw, "Boot Parameters").items()},
        network_interfaces=_interfaces(raw, "Network Interfaces"),
        virtual_network_interfaces=_interfaces(raw, "Virtual Network Interfaces"),
        raw=raw)


def _object(raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ParseError(SYSINFO, f"{key!r} is a {type(value).__name__}, expected an object")
    return value


def _int(value: Any, key: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(SYSINFO, f"{key!r} is a boolean, expected a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParseError(SYSINFO, f"{key!r} is {value!r}, expected a number") from None


def _bool(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ParseError(SYSINFO, f"{key!r} is {value!r}, expected true or false")


def _interfaces(raw: dict, key: str) -> dict[str, NetworkInterface]:
    out = {}
    for name, info in _object(raw, key).items():
        if not isinstance(info, dict):
            raise ParseError(SYSINFO, f"{key}.{name} is not an object")
        names = info.get("NIC Names", [])
        out[name] = NetworkInterface(name, info.get("MAC Address"), info.get("ip4addr") or None,
                                     info.get("Link Status"),
                                     list(names) if isinstance(names, list) else [str(names)],
                                     info)
    return out


# ----------------------------------------------------------------------------- diskinfo
@dataclass(slots=True)
class Disk:
    """One disk from ``diskinfo`` (default mode).  ``size_bytes`` is exact with ``-p``
    and rounded to the printed 0.01 GiB otherwise; ``size`` is the printed text."""

    type: str | None
    name: str
    vid: str | None
    pid: str | None
    size_bytes: int | None
    size: str
    removable: bool | None
    ssd: bool | None


_DISKINFO_HEADER = ["TYPE", "DISK", "VID", "PID", "SIZE", "RMV", "SSD"]
# Default mode prints "%-7s %-22s  %-8s %-16s %-13s %-3s %-3s" (illumos diskinfo.c).
_DISK_ROW = re.compile(r"(?P<type>\S+)\s+(?P<disk>\S+)  (?P<mid>.*?)\s+"
                       r"(?P<size>\d+\.\d\d [KMGTPE]iB|\d+)\s+(?P<rmv>yes|no|-)\s+"
                       r"(?P<ssd>yes|no|-)")


def parse_diskinfo(text: str) -> list[Disk]:
    """Parse ``diskinfo`` (table) or ``diskinfo -H [-p]`` (tab-separated) output."""
    lines = list(_table.content_lines(text))
    if not lines:
        return []
    if lines[0][1].split() == _DISKINFO_HEADER:
        return [_disk_row(line, n) for n, line in lines[1:]]
    if lines[0][1].split()[:2] == ["DISK", "VID"] or lines[0][1].split()[:1] == ["TYPE"]:
        raise ParseError(DISKINFO, "only the default mode is supported (not -P or -c)",
                         line=lines[0][1], lineno=lines[0][0])
    disks = []
    for lineno, line in lines:
        if "\t" not in line:
            raise ParseError(DISKINFO, "expected the TYPE DISK VID PID SIZE RMV SSD header or "
                             "tab-separated -H rows", line=line, lineno=lineno)
        values = _table.split_scripted(DISKINFO, line, lineno, 7)
        kind, name, vid, pid, size, rmv, ssd = values
        disks.append(Disk(_table.dash_none(kind), name, _table.dash_none(vid),
                          _table.dash_none(pid),
                          _table.convert(DISKINFO, _table.size, size, "SIZE", line, lineno),
                          size, _yes_no(rmv, line, lineno), _yes_no(ssd, line, lineno)))
    return disks


def _disk_row(line: str, lineno: int) -> Disk:
    match = _DISK_ROW.fullmatch(line)
    if not match:
        raise ParseError(DISKINFO, "expected TYPE DISK VID PID SIZE RMV SSD", line=line,
                         lineno=lineno)
    mid = match["mid"].lstrip()
    # VID is printed as "%-8s " so, unless it overflowed, PID starts 9 characters later.
    if len(mid) > 9 and mid[8] == " ":
        vid, pid = mid[:8].strip(), mid[9:].strip()
    else:
        parts = mid.split(None, 1)
        if len(parts) != 2:
            raise ParseError(DISKINFO, "cannot tell VID from PID", line=line, lineno=lineno)
        vid, pid = parts
    return Disk(_table.dash_none(match["type"]), match["disk"], _table.dash_none(vid),
                _table.dash_none(pid),
                _table.convert(DISKINFO, _table.size, match["size"], "SIZE", line, lineno),
                match["size"], _yes_no(match["rmv"], line, lineno),
                _yes_no(match["ssd"], line, lineno))


def _yes_no(text: str, line: str, lineno: int) -> bool | None:
    return _table.convert(DISKINFO, _table.yes_no, text, "yes/no", line, lineno)


# ----------------------------------------------------------------------------- dladm
@dataclass(slots=True)
class PhysLink:
    """A row of ``dladm show-phys``: ``speed`` in Mb/s; ``--`` and ``?`` become None."""

    link: str
    media: str | None
    state: str | None
    speed: int | None
    duplex: str | None
    device: str | None
    fields: dict[str, str]


@dataclass(slots=True)
class Vnic:
    """A row of ``dladm show-vnic``; ``zone`` is None when the VNIC is in no zone (``--``)."""

    link: str
    over: str | None
    speed: int | None
    macaddress: str | None
    macaddrtype: str | None
    vid: int | None
    zone: str | None
    fields: dict[str, str]


def _ofmt_none(text: str) -> str | None:
    return None if text in ("--", "?", "") else text


def _ofmt_int(text: str) -> int | None:
    return None if text in ("--", "?", "") else int(text)


def _dladm_rows(command: str, text: str, fields: Sequence[str] | str | None,
                required: tuple[str, ...]) -> list[tuple[dict[str, str], str, int]]:
    """(column -> value, line, lineno) for each row of a dladm table or ``-p`` output."""
    rows = []
    if fields is not None:
        names = _table.field_list(command, fields)
        for lineno, line in enumerate(text.splitlines(), 1):
            if line:
                values = _table.split_parseable(command, line, lineno, len(names))
                rows.append((dict(zip(names, values)), line, lineno))
        return rows
    table, lines = _table.header_and_rows(command, text, "LINK")
    names = [n.lower() for n in table.names]
    missing = [c for c in required if c not in names]
    if missing:
        raise ParseError(command, f"header lacks {', '.join(c.upper() for c in missing)}",
                         line=" ".join(table.names), lineno=table.lineno)
    for lineno, line in lines:
        if line.split() == table.names:         # ofmt repeats the header every 24 rows
            continue
        rows.append((dict(zip(names, table.split(line, lineno))), line, lineno))
    return rows


def parse_dladm_show_phys(text: str, fields: Sequence[str] | str | None = None) -> list[PhysLink]:
    """Parse ``dladm show-phys`` (table) or, given ``fields``, ``dladm show-phys -p -o <fields>``."""
    out = []
    for row, line, lineno in _dladm_rows(SHOW_PHYS, text, fields,
                                         ("link", "media", "state", "speed", "duplex")):
        speed = _table.convert(SHOW_PHYS, _ofmt_int, row.get("speed", ""), "SPEED", line, lineno)
        out.append(PhysLink(row.get("link", ""), _ofmt_none(row.get("media", "")),
                            _ofmt_none(row.get("state", "")), speed,
                            _ofmt_none(row.get("duplex", "")), _ofmt_none(row.get("device", "")),
                            row))
    return out


def parse_dladm_show_vnic(text: str, fields: Sequence[str] | str | None = None) -> list[Vnic]:
    """Parse ``dladm show-vnic`` (table) or, given ``fields``, ``dladm show-vnic -p -o <fields>``."""
    out = []
    for row, line, lineno in _dladm_rows(SHOW_VNIC, text, fields,
                                         ("link", "over", "macaddress")):
        speed = _table.convert(SHOW_VNIC, _ofmt_int, row.get("speed", ""), "SPEED", line, lineno)
        vid = _table.convert(SHOW_VNIC, _ofmt_int, row.get("vid", ""), "VID", line, lineno)
        out.append(Vnic(row.get("link", ""), _ofmt_none(row.get("over", "")), speed,
                        _ofmt_none(row.get("macaddress", "")),
                        _ofmt_none(row.get("macaddrtype", "")), vid,
                        _ofmt_none(row.get("zone", "")), row))
    return out


# ----------------------------------------------------------------------------- svcs
_SMF_STATES = {"online", "offline", "disabled", "maintenance", "degraded", "legacy_run",
               "uninitialized"}


@dataclass(slots=True)
class ServiceState:
    """A row of ``svcs`` / ``svcs -a`` / ``svcs -o ...``.

    ``state`` drops the ``*`` that marks an instance in transition
    (``transitioning`` is then True); ``fields`` holds every column by name.
    """

    fmri: str | None
    state: str | None
    stime: str | None
    transitioning: bool
    fields: dict[str, str]


def parse_svcs(text: str) -> list[ServiceState]:
    """Parse the ``svcs`` table (default ``STATE STIME FMRI`` or any ``-o`` columns).

    For the explanations printed by ``svcs -x`` use :func:`parse_svcs_x`.
    """
    lines = list(_table.content_lines(text))
    if lines and lines[0][1].startswith(("svc:/", "lrc:/")):
        raise ParseError(SVCS, "this is 'svcs -x' output: use parse_svcs_x",
                         line=lines[0][1], lineno=lines[0][0])
    if not lines:
        return []
    lineno, header = lines[0]
    if not re.fullmatch(r"[A-Z]+(?: +[A-Z]+)*", header):
        raise ParseError(SVCS, "expected a header of column names such as 'STATE STIME FMRI'",
                         line=header, lineno=lineno)
    table = _table.Table(SVCS, header, lineno, free_last=header.split()[-1] == "DESC")
    names = [n.lower() for n in table.names]
    out = []
    for n, line in lines[1:]:
        row = dict(zip(names, table.split(line, n)))
        state = row.get("state")
        transitioning = bool(state and state.endswith("*"))
        if state is not None:
            state = state.rstrip("*")
            if state not in _SMF_STATES:
                raise ParseError(SVCS, f"unknown service state {state!r}", line=line, lineno=n)
        fmri = row.get("fmri")
        if fmri is not None and not fmri.startswith(("svc:/", "lrc:/")):
            raise ParseError(SVCS, f"not an FMRI: {fmri!r}", line=line, lineno=n)
        out.append(ServiceState(fmri, state, row.get("stime"), transitioning, row))
    return out


@dataclass(slots=True)
class ServiceExplanation:
    """One block of ``svcs -x`` / ``svcs -xv``.

    ``state`` and ``since`` come from the ``State:`` line; ``reason`` and
    ``impact`` are the (joined) texts; ``see`` lists every ``See:`` entry;
    ``path`` the dependency chain of ``-v``; ``impacted`` the services listed
    under ``Impact:`` by ``-v``.
    """

    fmri: str
    description: str | None
    state: str | None
    since: str | None
    reason: str | None
    see: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    impact: str | None = None
    impacted: list[str] = field(default_factory=list)


_X_HEAD = re.compile(r"((?:svc|lrc):/\S+)(?: \((.*)\))?")
_X_KEY = re.compile(r"\s*(State|Reason|See|Path|Impact):\s?(.*)")
_X_STATE = re.compile(r"(\S+)(?: since (.*))?")


def parse_svcs_x(text: str) -> list[ServiceExplanation]:
    """Parse ``svcs -x [-v]``: one explanation per service (empty output: none)."""
    out: list[ServiceExplanation] = []
    key = None
    for lineno, line in _table.content_lines(text):
        head = _X_HEAD.fullmatch(line)
        if head:
            out.append(ServiceExplanation(head.group(1), head.group(2), None, None, None))
            key = None
            continue
        if not out:
            raise ParseError(SVCS_X, "expected a service FMRI line", line=line, lineno=lineno)
        entry = out[-1]
        match = _X_KEY.fullmatch(line)
        if match:
            key, value = match.group(1), match.group(2).strip()
            if key == "State":
                state = _X_STATE.fullmatch(value)
                if not state:
                    raise ParseError(SVCS_X, "bad State: line", line=line, lineno=lineno)
                entry.state, entry.since = state.group(1), state.group(2)
            elif key == "Reason":
                entry.reason = value
            elif key == "See":
                entry.see.append(value)
            elif key == "Path":
                entry.path.append(value)
            else:
                entry.impact = value
            continue
        value = line.strip()
        if key == "Reason":
            entry.reason = f"{entry.reason} {value}".strip()
        elif key == "Path":
            entry.path.append(value)
        elif key == "Impact" and value.startswith(("svc:/", "lrc:/")):
            entry.impacted.append(value)
        elif key == "Impact":
            entry.impact = f"{entry.impact} {value}".strip()
        else:
            raise ParseError(SVCS_X, "unexpected line", line=line, lineno=lineno)
    return out
