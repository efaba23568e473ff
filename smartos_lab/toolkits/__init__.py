"""Typed toolkits over a command runner, in the pytest-testinfra shape (``lab.zfs`` ...).

Each builds commands (every argument quoted), runs them through a
:class:`~smartos_lab.machine.result.CommandRunner` and parses the output with
:mod:`smartos_lab.parsers`.  :mod:`.plots` (matplotlib) is imported on demand.
"""
from __future__ import annotations

from .dtrace import DTrace, DTraceResult, Interval
from .images import Images
from .oneliners import ONE_LINERS, OneLiner
from .selfheal import SelfHealingDemo, SelfHealingReport
from .sysinfo import HostSummary, SysInfo
from .vms import GuestVirt, HostVirt, NestedSupport, Vms, bhyve_payload, kvm_payload, nested_support
from .workload import BackgroundLoad
from .zfs import Zfs
from .zones import ResourceCaps, Zones

__all__ = [
    "BackgroundLoad", "DTrace", "DTraceResult", "GuestVirt", "HostSummary", "HostVirt", "Images", "Interval",
    "NestedSupport", "ONE_LINERS", "OneLiner", "ResourceCaps", "SelfHealingDemo",
    "SelfHealingReport", "SysInfo", "Vms", "Zfs", "Zones", "bhyve_payload", "kvm_payload",
    "nested_support",
]
