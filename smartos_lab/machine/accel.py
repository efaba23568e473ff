"""Choose the QEMU accelerator: real KVM where it works, TCG otherwise.

"Real" KVM needs three things: ``/dev/kvm`` openable read-write, ``vmx`` or
``svm`` in ``/proc/cpuinfo``, and a hardware KVM module (``kvm_intel`` or
``kvm_amd``).  Some cloud hosts load only ``kvm_pvm`` (paravirtualised KVM): the
device exists, but an ordinary guest started with ``-accel kvm`` hangs silently,
so such hosts get TCG.

``proc_root`` lets tests point detection at a fake tree holding
``dev/kvm``, ``proc/cpuinfo`` and ``sys/module/...``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, HostError
from .hostvirt import parse_cpuinfo, read_text


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator a machine runs under, and why."""

    accel: str                  # "kvm" | "tcg"
    reason: str                 # one line, e.g. "KVM: /dev/kvm usable (kvm_intel, vmx)"
    nested: bool = False        # the guest can use VT-x/AMD-V itself
    nested_reason: str = ""
    cpu_vendor: str = ""        # "intel" | "amd" | ""


@dataclass(frozen=True)
class _HostFacts:
    dev_kvm: bool
    dev_kvm_rw: bool
    cpu_flag: str               # "vmx" | "svm" | ""
    cpu_vendor: str
    modules: frozenset[str]
    nested_param: str           # raw text of .../parameters/nested, "" if absent


def detect_accel(requested: str = "auto", *, proc_root: Path = Path("/")) -> AccelChoice:
    """Pick ``kvm`` or ``tcg`` for ``requested`` (``auto``, ``kvm`` or ``tcg``).

    ``kvm`` on a host without real KVM raises :class:`HostError` with the reason.
    """
    if requested not in ("auto", "kvm", "tcg"):
        raise ConfigError(f"unknown accelerator {requested!r}: use 'auto', 'kvm' or 'tcg'")
    facts = _read_host(Path(proc_root))
    kvm_problem = _kvm_problem(facts)
    if requested == "tcg":
        return AccelChoice("tcg", "TCG: requested", False, "nested virtualization needs KVM",
                           facts.cpu_vendor)
    if kvm_problem:
        if requested == "kvm":
            raise HostError(f"KVM requested but not usable: {kvm_problem}")
        return AccelChoice("tcg", f"TCG: {kvm_problem}", False,
                           "nested virtualization needs KVM", facts.cpu_vendor)
    module = "kvm_intel" if facts.cpu_flag == "vmx" else "kvm_amd"
    nested, nested_reason = _nested(facts, module)
    return AccelChoice("kvm", f"KVM: /dev/kvm usable ({module}, {facts.cpu_flag})",
                       nested, nested_reason, facts.cpu_vendor)


def _kvm_problem(f: _HostFacts) -> str:
    """Why KVM is not usable, or "" when it is."""
    hw_module = {"kvm_intel", "kvm_amd"} & f.modules
    if not f.dev_kvm:
        return "no /dev/kvm (KVM module not loaded, or no hardware virtualization)"
    if "kvm_pvm" in f.modules and not hw_module:
        flags = f"{f.cpu_flag} in /proc/cpuinfo" if f.cpu_flag else "no vmx/svm in /proc/cpuinfo"
        return (f"/dev/kvm is PVM-only (kvm_pvm loaded, {flags}); "
                "an ordinary guest would hang")
    if not f.cpu_flag:
        return "no vmx/svm in /proc/cpuinfo (the CPU exposes no hardware virtualization)"
    if not f.dev_kvm_rw:
        return "/dev/kvm is not readable and writable by this user (join the 'kvm' group)"
    return ""


def _nested(f: _HostFacts, module: str) -> tuple[bool, str]:
    value = f.nested_param.strip()
    if not value:
        return False, f"nested virtualization unknown: {module} has no 'nested' parameter"
    if value in ("Y", "y", "1"):
        return True, f"nested virtualization on ({module} nested={value}): the guest sees {f.cpu_flag}"
    return False, f"nested virtualization off ({module} nested={value})"


def _read_host(root: Path) -> _HostFacts:
    dev = root / "dev" / "kvm"
    cpu = parse_cpuinfo(read_text(root / "proc" / "cpuinfo"))
    module_dir = root / "sys" / "module"
    modules = frozenset(m for m in ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm")
                        if (module_dir / m).exists())
    hw = "kvm_intel" if "kvm_intel" in modules else "kvm_amd" if "kvm_amd" in modules else ""
    nested = read_text(module_dir / hw / "parameters" / "nested") if hw else ""
    return _HostFacts(dev.exists(), _openable_rw(dev), cpu.cpu_flag, cpu.vendor, modules, nested)


def _openable_rw(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True

