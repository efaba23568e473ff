"""The one-line reports of vmadm's changing commands (smartos-live ``src/vm/sbin/vmadm.js``).

``create`` prints ``Successfully created VM <uuid>``; ``update`` prints
``Successfully updated VM <uuid>`` (releases before 2013 printed
``Successfully updated <uuid>``); ``create-snapshot``, ``delete-snapshot``
and ``rollback-snapshot`` print ``Created snapshot <name> for VM <uuid>``,
``Deleted snapshot ...`` and ``Rolled back snapshot ...``.  vmadm logs
bunyan JSON on stderr around them, so the report is searched for, not
expected alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ParseError

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SNAP = r"[A-Za-z0-9_.:%-]{1,64}"
_PATTERNS = [
    ("created", re.compile(rf"Successfully created VM ({_UUID})$")),
    ("updated", re.compile(rf"Successfully updated (?:VM )?({_UUID})$")),
    ("snapshot created", re.compile(rf"Created snapshot ({_SNAP}) for VM ({_UUID})$")),
    ("snapshot deleted", re.compile(rf"Deleted snapshot ({_SNAP}) for VM ({_UUID})$")),
    ("snapshot rolled back", re.compile(rf"Rolled back snapshot ({_SNAP}) for VM ({_UUID})$")),
]


@dataclass(frozen=True, slots=True)
class VmadmReport:
    action: str                  # "created", "updated", "snapshot created", ...
    uuid: str
    snapshot: str | None = None


def parse_vmadm_report(text: str, expect: str) -> VmadmReport:
    """The report line of action ``expect`` in vmadm's output; ParseError if it is missing
    (for example a report cut off before the UUID ends)."""
    if expect not in dict(_PATTERNS):
        raise ValueError(f"unknown vmadm action {expect!r}")
    pattern = dict(_PATTERNS)[expect]
    for line in text.splitlines():
        match = pattern.fullmatch(line.strip())
        if match:
            groups = match.groups()
            if len(groups) == 1:
                return VmadmReport(expect, groups[0])
            return VmadmReport(expect, groups[1], groups[0])
    tail = text.strip().splitlines()[-1] if text.strip() else ""
    raise ParseError("vmadm", f"no '{expect}' report line in the output", line=tail)
