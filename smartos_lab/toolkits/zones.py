"""Zones and VMs with vmadm, zoneadm and zlogin (vmadm(8), zlogin(1)).

VMs are addressed by UUID (vmadm accepts nothing else).  Payloads are
Python dicts: written as JSON to a temporary file in the guest, checked with
``vmadm validate create -f`` and created with ``vmadm create -f``.
"""
from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, ParseError
from ..machine.result import CommandResult
from ..parsers.mdata import mdata_value, parse_mdata_list
from ..parsers.vmadm import VmadmListEntry, VmadmVm, parse_vmadm_get, parse_vmadm_json, parse_vmadm_list
from ..parsers.vmadm_messages import VmadmReport, parse_vmadm_report
from ..parsers.zone_stats import PrstatSample, ZoneMemStat, parse_prstat_zones, parse_zonememstat
from ..parsers.zones import Zone, parse_zoneadm_list
from . import _cmd
from .base import Toolkit

_FIELD = re.compile(r"[a-z_][a-z0-9_.*]*")
_CREATED = re.compile(r"Successfully created VM ([0-9a-f-]{36})")
DEFAULT_LIST_FIELDS = ("uuid", "type", "ram", "state", "alias")


@dataclass(frozen=True)
class ResourceCaps:
    """The resource controls of a VM that can be changed live (vmadm(8) PROPERTIES)."""

    cpu_cap: int | None              # percent of one CPU (100 = one full CPU); 0/None: no cap
    max_physical_memory: int | None  # MiB
    quota: int | None                # GiB of the zone's dataset; 0/None: no quota


class Zones(Toolkit):
    """vmadm / zoneadm / zlogin over a command runner (``lab.zones``)."""

    # ---------------------------------------------------------------- listing
    def list(self, fields: tuple[str, ...] = DEFAULT_LIST_FIELDS, **filters: Any) -> list[VmadmListEntry]:
        """``vmadm list -o <fields> [key=value ...]``, parsed (one row per VM).

        The table form, not ``-p``: ``-p`` does not escape ``:`` inside values
        (MACs, IPv6).  Put a field whose values may hold spaces (``alias``) last.
        """
        command = _cmd.cmd("vmadm", "list", "-o", _fields(fields), *_filters(filters))
        out = self._ok(command).stdout
        return parse_vmadm_list(out) if out.strip() else []

    def lookup(self, *, fields: tuple[str, ...] = (), **filters: Any) -> list[VmadmVm]:
        """``vmadm lookup -j [-o fields] [key=value ...]``: the matching VM objects."""
        args = ["vmadm", "lookup", "-j"]
        if fields:
            args += ["-o", _fields(fields)]
        parsed = parse_vmadm_json(self._ok(_cmd.cmd(*args, *_filters(filters))).stdout)
        if not isinstance(parsed, list):
            raise ParseError("vmadm lookup -j", "expected a JSON array")
        return parsed

    def get(self, uuid: str) -> VmadmVm:
        """``vmadm get <uuid>``: the VM object (every key in ``.raw``)."""
        return parse_vmadm_get(self._ok(_cmd.cmd("vmadm", "get", _cmd.uuid(uuid))).stdout)

    def zoneadm_list(self) -> list[Zone]:
        """``zoneadm list -cp``: every configured zone, parsed."""
        return parse_zoneadm_list(self._ok("zoneadm list -cp").stdout)

    # ---------------------------------------------------------------- lifecycle
    def validate(self, payload: dict) -> str:
        """``vmadm validate create -f``; returns the VALID line or raises ConfigError."""
        with self._payload_file(payload) as path:
            result = self._run(_cmd.cmd("vmadm", "validate", "create", "-f", path))
        text = (result.stdout + result.stderr).strip()
        if result.exit_status != 0:
            raise ConfigError(f"vmadm rejected the payload: {text}")
        return text

    def create(self, payload: dict, *, validate: bool = True, timeout: float = 600.0) -> str:
        """Create a VM from ``payload`` (validated first); returns its UUID."""
        if not isinstance(payload, dict) or "brand" not in payload:
            raise ConfigError("a vmadm payload is a dict with at least 'brand'")
        if validate:
            self.validate(payload)
        with self._payload_file(payload) as path:
            result = self._ok(_cmd.cmd("vmadm", "create", "-f", path), timeout)
        match = _CREATED.search(result.stdout + "\n" + result.stderr)
        if not match:
            raise ParseError("vmadm create", "no 'Successfully created VM <uuid>' line",
                             line=(result.stdout + result.stderr).strip()[-200:])
        return match.group(1)

    def start(self, uuid: str) -> None:
        self._ok(_cmd.cmd("vmadm", "start", _cmd.uuid(uuid)))

    def stop(self, uuid: str, *, force: bool = False, timeout: float = 300.0) -> None:
        """Graceful stop (``-F``: forced).  vmadm itself halts after its own timer."""
        self._ok(_cmd.cmd("vmadm", "stop", _cmd.uuid(uuid), "-F" if force else None), timeout)

    def reboot(self, uuid: str, *, force: bool = False, timeout: float = 300.0) -> None:
        self._ok(_cmd.cmd("vmadm", "reboot", _cmd.uuid(uuid), "-F" if force else None), timeout)

    def delete(self, uuid: str, *, timeout: float = 300.0) -> None:
        self._ok(_cmd.cmd("vmadm", "delete", _cmd.uuid(uuid)), timeout)

    def update(self, uuid: str, **properties: Any) -> None:
        """``vmadm update <uuid> key=value ...`` (simple properties only)."""
        if not properties:
            raise ConfigError("vmadm update needs at least one property")
        for key in properties:
            if not _FIELD.fullmatch(key):
                raise ConfigError(f"invalid vmadm property name {key!r}")
        self._ok(_cmd.cmd("vmadm", "update", _cmd.uuid(uuid),
                          *_cmd.key_values(properties, "property")))

    # ---------------------------------------------------------------- resource caps
    def caps(self, uuid: str) -> ResourceCaps:
        vm = self.get(uuid)
        return ResourceCaps(_int_or_none(vm.raw.get("cpu_cap")), vm.max_physical_memory, vm.quota)

    def set_caps(self, uuid: str, *, cpu_cap: int | None = None,
                 max_physical_memory: int | None = None, quota: int | None = None) -> ResourceCaps:
        """Change CPU cap (%), memory cap (MiB) and/or quota (GiB) live; returns the new caps."""
        changes = {k: v for k, v in (("cpu_cap", cpu_cap),
                                     ("max_physical_memory", max_physical_memory),
                                     ("quota", quota)) if v is not None}
        for key, value in changes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
        self.update(uuid, **changes)
        return self.caps(uuid)

    # ---------------------------------------------------------------- zlogin
    def zlogin(self, uuid: str, command: str, *, timeout: float = 60.0) -> CommandResult:
        """Run ``command`` in the zone; the result carries the command's own exit status.

        zlogin hands its argument to the zone's shell, so ``command`` is shell
        text (pipes and redirections happen inside the zone); it reaches
        zlogin as a single quoted argument.  Newlines are refused (join
        commands with ``;``).
        """
        _cmd.no_control(command, "zlogin command")
        return self._run(_cmd.cmd("zlogin", _cmd.uuid(uuid), command), timeout)

    # ---------------------------------------------------------------- internals
    def _payload_file(self, payload: dict) -> AbstractContextManager[str]:
        """The payload as JSON in a private temporary file in the guest (removed afterwards)."""
        try:
            text = json.dumps(payload, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"payload is not JSON-serialisable: {exc}") from None
        return self._guest_file(text, prefix="smartos-lab-payload", suffix=".json")

    # ---------------------------------------------------------------- JSON updates, snapshots
    def update_json(self, uuid: str, payload: dict, *, timeout: float = 300.0) -> VmadmReport:
        """``vmadm update <uuid> -f payload.json``: the JSON form, for what ``key=value``
        cannot say (``add_nics``, ``set_customer_metadata``, ``update_disks`` ...)."""
        if not isinstance(payload, dict) or not payload:
            raise ConfigError("a vmadm update payload is a non-empty dict")
        with self._payload_file(payload) as path:
            result = self._ok(_cmd.cmd("vmadm", "update", _cmd.uuid(uuid), "-f", path), timeout)
        return parse_vmadm_report(result.stdout + "\n" + result.stderr, "updated")

    def create_snapshot(self, uuid: str, name: str, *, timeout: float = 300.0) -> VmadmReport:
        """``vmadm create-snapshot <uuid> <name>`` (OS and bhyve VMs without delegated
        datasets; the ZFS snapshot is ``<dataset>@vmsnap-<name>``)."""
        return self._snapshot("create-snapshot", "snapshot created", uuid, name, timeout)

    def rollback_snapshot(self, uuid: str, name: str, *, timeout: float = 600.0) -> VmadmReport:
        """``vmadm rollback-snapshot <uuid> <name>``: stops the VM, rolls back, starts it
        again; newer snapshots are destroyed (vmadm(8))."""
        return self._snapshot("rollback-snapshot", "snapshot rolled back", uuid, name, timeout)

    def delete_snapshot(self, uuid: str, name: str, *, timeout: float = 300.0) -> VmadmReport:
        return self._snapshot("delete-snapshot", "snapshot deleted", uuid, name, timeout)

    def snapshots(self, uuid: str) -> list[str]:
        """The names of the VM's vmadm snapshots (``vmadm get`` ``.snapshots[].name``)."""
        return [str(s.get("name")) for s in self.get(uuid).raw.get("snapshots") or []]

    def _snapshot(self, verb: str, action: str, uuid: str, name: str,
                  timeout: float) -> VmadmReport:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:%-]{1,64}", name):
            raise ConfigError(f"invalid snapshot name {name!r}: 1-64 letters, digits and "
                              "-_.:% (vmadm(8))")
        result = self._ok(_cmd.cmd("vmadm", verb, _cmd.uuid(uuid), name), timeout)
        return parse_vmadm_report(result.stdout + "\n" + result.stderr, action)

    # ---------------------------------------------------------------- metadata, usage
    def mdata_get(self, uuid: str, key: str) -> str | None:
        """``mdata-get <key>`` inside the zone: the value, or None when the key is not set."""
        _mdata_key(key)
        result = self.zlogin(uuid, _cmd.cmd("/usr/sbin/mdata-get", key))
        return mdata_value(result.stdout, result.exit_status, key)

    def mdata_list(self, uuid: str) -> list[str]:
        """``mdata-list`` inside the zone: the customer_metadata keys it can read."""
        return parse_mdata_list(self.zlogin(uuid, "/usr/sbin/mdata-list").check().stdout)

    def memstat(self, zone: str | None = None) -> list[ZoneMemStat]:
        """``zonememstat [-z zone]``: RSS, memory cap, times over the cap, paged out (MiB)."""
        args = ["zonememstat"] + (["-z", _cmd.no_control(zone, "zone name")] if zone else [])
        return parse_zonememstat(self._ok(_cmd.cmd(*args)).stdout)

    def prstat(self, *, top: int = 20) -> PrstatSample:
        """One ``prstat -Z -c -n <top>,500 1 1`` sample: the busiest processes and every zone
        (prstat(8): the second ``-n`` number bounds the zone table, 5 by default)."""
        if not isinstance(top, int) or top < 1:
            raise ConfigError(f"top must be a positive integer, got {top!r}")
        return parse_prstat_zones(self._ok(_cmd.cmd("prstat", "-Z", "-c", "-n", f"{top},500",
                                                     "1", "1")).stdout)


def _mdata_key(key: str) -> str:
    _cmd.no_control(key, "metadata key")
    if not re.fullmatch(r"[A-Za-z0-9_.:@/-]+", key):
        raise ConfigError(f"invalid metadata key {key!r}")
    return key

def _fields(fields: tuple[str, ...] | list[str]) -> str:
    for f in fields:
        if not _FIELD.fullmatch(f):
            raise ConfigError(f"invalid vmadm field name {f!r}")
    if not fields:
        raise ConfigError("at least one field is needed")
    return ",".join(fields)


def _filters(filters: dict[str, Any]) -> list[str]:
    for key in filters:
        if not _FIELD.fullmatch(key):
            raise ConfigError(f"invalid vmadm filter field {key!r}")
    return list(_cmd.key_values(filters, "filter"))


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParseError("vmadm get", f"expected an integer, got {value!r}") from None
