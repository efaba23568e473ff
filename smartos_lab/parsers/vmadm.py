"""``vmadm list``, ``vmadm get`` and ``vmadm lookup -j`` (vmadm(8)).

``vmadm list`` pads each field to a fixed width, separates fields by two
spaces and prints ``-`` for a missing value; ``-p`` separates them by ``:``
and prints nothing for a missing value.  vmadm does *not* escape ``:`` inside
values under ``-p`` (smartos-live src/vm/sbin/vmadm.js, outputVMListLine), so
a row with more fields than asked for cannot be split safely and is refused.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from . import _table

LIST = "vmadm list"
JSON = "vmadm get/lookup -j"

# vmadm.js LIST_FIELDS headers whose field name is not simply the lower-cased header.
_HEADER_FIELDS = {
    "CPU_SHARE": "cpu_shares", "DOMAIN": "dns_domain", "DNI": "do_not_inventory",
    "EXIT": "exit_status", "FLEX_DISK_SIZE": "flexible_disk_size",
    "INDESTR_DATA": "indestructible_delegated", "INDESTR_ROOT": "indestructible_zoneroot",
    "MAX_LOCKED": "max_locked_memory", "MAX_LWP": "max_lwps", "MAX_PHYS": "max_physical_memory",
    "PACKAGE_VER": "package_version", "IO_PRIORITY": "zfs_io_priority",
}
_INTS = {"ram", "max_physical_memory", "max_locked_memory", "max_swap", "max_lwps", "quota",
         "cpu_cap", "cpu_shares", "vcpus", "zoneid", "pid", "tmpfs", "zfs_io_priority",
         "exit_status", "free_space", "flexible_disk_size"}
_BOOLS = {"autoboot", "firewall_enabled", "docker", "hvm", "do_not_inventory",
          "indestructible_delegated", "indestructible_zoneroot"}
_HEADER = re.compile(r"[A-Z][A-Z0-9_.]*(?: +[A-Z][A-Z0-9_.]*)*")
#: Fields of ``vmadm list`` without ``-o``.
VMADM_LIST_DEFAULT_FIELDS = ("uuid", "type", "ram", "state", "alias")
#: The values of the virtual ``type`` field (vmadm(8) PROPERTIES, ``type``): brand joyent*,
#: lx, kvm, bhyve.  Its list column is 4 wide; ``BHYVE`` overflows it, pushing the row right.
VM_TYPES = ("OS", "LX", "KVM", "BHYVE")


def _bool(text: str) -> bool | None:
    if text in ("", "-"):
        return None
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(text)


def _converter(name: str) -> Callable[[str], Any]:
    if name in _INTS:
        return _table.integer
    if name in _BOOLS:
        return _bool
    return _table.dash_none


@dataclass(slots=True)
class VmadmListEntry:
    """One row of ``vmadm list``; ``fields`` holds every column, typed, by field name.

    ``type`` is one of :data:`VM_TYPES` (OS, LX, KVM, BHYVE); ``ram`` is MiB.  Missing values
    are None.
    """

    uuid: str | None
    type: str | None
    ram: int | None
    state: str | None
    alias: str | None
    fields: dict[str, Any]
    raw: dict[str, str]


def parse_vmadm_list(text: str, fields: Sequence[str] | str | None = None) -> list[VmadmListEntry]:
    """Parse ``vmadm list [-o ...]`` (with header) or, given ``fields``, ``vmadm list -p -o ...``.

    Pass ``fields`` for ``-p`` output (``VMADM_LIST_DEFAULT_FIELDS`` when no
    ``-o`` was used): it has no header to read the columns from.
    """
    if fields is None:
        lines = list(_table.content_lines(text))
        if not lines:
            raise ParseError(LIST, "empty output: expected a header line starting with a "
                             "field name such as UUID")
        lineno, header = lines[0]
        if not _HEADER.fullmatch(header):
            raise ParseError(LIST, "expected a header of upper-case field names such as "
                             "'UUID  TYPE  RAM  STATE  ALIAS'", line=header, lineno=lineno)
        names = [_HEADER_FIELDS.get(h, h.lower()) for h in header.split()]
        table = _table.Table(LIST, header, lineno, free_last=names[-1] == "alias")
        return [_entry(names, table.split(line, n), line, n, missing="-")
                for n, line in lines[1:]]
    names = _table.field_list(LIST, fields)
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        values = line.split(":")
        if len(values) != len(names):
            raise ParseError(LIST, f"expected {len(names)} ':'-separated fields, found "
                             f"{len(values)} (vmadm does not escape ':' inside values under -p; "
                             f"do not list fields such as MAC addresses with -p)",
                             line=line, lineno=lineno)
        out.append(_entry(names, values, line, lineno, missing=""))
    return out


def _entry(names: list[str], values: list[str], line: str, lineno: int,
           missing: str) -> VmadmListEntry:
    typed = {}
    for name, value in zip(names, values):
        if value == missing:
            typed[name] = None
        else:
            typed[name] = _table.convert(LIST, _converter(name), value, name, line, lineno)
    return VmadmListEntry(typed.get("uuid"), typed.get("type"), typed.get("ram"),
                          typed.get("state"), typed.get("alias"), typed,
                          dict(zip(names, values)))


# ----------------------------------------------------------------------------- JSON
@dataclass(slots=True)
class VmNic:
    """One entry of a VM's ``nics`` (``ip``/``netmask``/``gateway`` of old payloads,
    ``ips``/``gateways`` of new ones)."""

    interface: str | None
    mac: str | None
    nic_tag: str | None
    ip: str | None
    netmask: str | None
    gateway: str | None
    primary: bool
    ips: list[str]
    raw: dict[str, Any]


@dataclass(slots=True)
class VmadmVm:
    """A VM object from ``vmadm get`` / ``vmadm lookup -j`` (all keys kept in ``raw``).

    ``ram`` and ``max_physical_memory`` are MiB, ``quota`` GiB.
    """

    uuid: str
    alias: str | None
    brand: str | None
    state: str | None
    zonename: str | None
    ram: int | None
    max_physical_memory: int | None
    quota: int | None
    cpu_shares: int | None
    autoboot: bool | None
    nics: list[VmNic]
    raw: dict[str, Any]


def parse_vmadm_json(text: str) -> list[VmadmVm] | VmadmVm:
    """Parse ``vmadm lookup -j`` (a JSON array -> list) or ``vmadm get`` (an object -> one VM)."""
    value = _table.load_json(JSON, text)
    if isinstance(value, dict):
        return _vm(value, 0)
    if isinstance(value, list):
        return [_vm(item, index) for index, item in enumerate(value)]
    raise ParseError(JSON, f"expected a JSON object or array, got {type(value).__name__}")


def parse_vmadm_get(text: str) -> VmadmVm:
    """Parse ``vmadm get <uuid>``: exactly one VM object."""
    vm = parse_vmadm_json(text)
    if not isinstance(vm, VmadmVm):
        raise ParseError("vmadm get", f"expected one JSON object, got an array of {len(vm)}")
    return vm


def _vm(obj: Any, index: int) -> VmadmVm:
    if not isinstance(obj, dict):
        raise ParseError(JSON, f"VM #{index} is a {type(obj).__name__}, not an object")
    uuid = obj.get("uuid")
    if not isinstance(uuid, str):
        raise ParseError(JSON, f"VM #{index} has no 'uuid'")
    nics = obj.get("nics", [])
    if not isinstance(nics, list) or not all(isinstance(n, dict) for n in nics):
        raise ParseError(JSON, f"VM {uuid}: 'nics' is not a list of objects")
    return VmadmVm(
        uuid=uuid, alias=obj.get("alias"), brand=obj.get("brand"), state=obj.get("state"),
        zonename=obj.get("zonename"), ram=_int(obj, "ram", uuid),
        max_physical_memory=_int(obj, "max_physical_memory", uuid),
        quota=_int(obj, "quota", uuid), cpu_shares=_int(obj, "cpu_shares", uuid),
        autoboot=obj.get("autoboot"), nics=[_nic(n) for n in nics], raw=obj)


def _int(obj: dict, key: str, uuid: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(JSON, f"VM {uuid}: {key} is a boolean, expected a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParseError(JSON, f"VM {uuid}: {key} is {value!r}, expected a number") from None


def _nic(nic: dict) -> VmNic:
    ips = nic.get("ips") or ([nic["ip"]] if nic.get("ip") else [])
    return VmNic(nic.get("interface") or nic.get("physical"), nic.get("mac"), nic.get("nic_tag"),
                 nic.get("ip"), nic.get("netmask"), nic.get("gateway"), bool(nic.get("primary", False)),
                 list(ips), nic)
