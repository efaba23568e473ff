"""Hardware-virtualization facts of the Linux host QEMU runs on (/proc/cpuinfo, kvm modules).

Used by :mod:`smartos_lab.machine.accel` (can QEMU use KVM?) and by
:mod:`smartos_lab.toolkits.vms` (can the SmartOS guest run nested KVM/bhyve guests?).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class HostVirt:
    """Hardware-virtualization facts of the Linux host QEMU runs on."""

    vendor: str = ""                    # "intel" | "amd" | ""
    cpu_flag: str = ""                  # "vmx" | "svm" | ""
    ept: bool = False                   # Intel extended page tables
    unrestricted_guest: bool = False    # Intel "unrestricted guest" (bhyve needs it)
    npt: bool = False                   # AMD nested page tables
    nrip_save: bool = False             # AMD NRIP save (bhyve needs it)
    decode_assists: bool = False        # AMD decode assists (newer bhhwcompat wants it)
    module: str = ""                    # "kvm_intel" | "kvm_amd" | ""
    params: dict[str, str] = field(default_factory=dict)   # module parameters (nested, ept, npt, ...)
    pvm_only: bool = False              # kvm_pvm loaded without a hardware KVM module

    def param_on(self, name: str) -> bool | None:
        """A module parameter as a bool (``Y``/``1`` -> True), None when unknown."""
        value = self.params.get(name)
        if value is None:
            return None
        return value.strip() in ("Y", "y", "1")


def host_virtualization(proc_root: Path | str = "/") -> HostVirt:
    """Read /proc/cpuinfo and /sys/module/kvm_*/parameters under ``proc_root``."""
    root = Path(proc_root)
    info = parse_cpuinfo(read_text(root / "proc" / "cpuinfo"))
    modules = root / "sys" / "module"
    module = next((m for m in ("kvm_intel", "kvm_amd") if (modules / m).exists()), "")
    params: dict[str, str] = {}
    if module:
        for name in ("nested", "ept", "unrestricted_guest", "npt", "nrips"):
            text = read_text(modules / module / "parameters" / name)
            if text:
                params[name] = text.strip()
    pvm_only = (modules / "kvm_pvm").exists() and not module
    return HostVirt(**{**info.__dict__, "module": module, "params": params, "pvm_only": pvm_only})


def parse_cpuinfo(text: str) -> HostVirt:
    """CPU vendor and virtualization features from Linux ``/proc/cpuinfo`` (first CPU).

    Newer kernels list VMX features on a ``vmx flags`` line (``ept``,
    ``unrestricted_guest``); AMD SVM features are in ``flags`` (``npt``,
    ``nrip_save``, ``decodeassists``).
    """
    flags: set[str] = set()
    vmx_flags: set[str] = set()
    vendor = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "amd"}.get(
                value.strip(), "")
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "vmx flags" and not vmx_flags:
            vmx_flags = set(value.split())
        elif not key and flags and vendor:
            break                        # end of the first processor block
    all_flags = flags | vmx_flags
    cpu_flag = "vmx" if "vmx" in flags else "svm" if "svm" in flags else ""
    return HostVirt(
        vendor=vendor, cpu_flag=cpu_flag,
        ept="ept" in all_flags,
        unrestricted_guest="unrestricted_guest" in vmx_flags,
        npt="npt" in flags, nrip_save="nrip_save" in flags,
        decode_assists="decodeassists" in flags,
    )


def read_text(path: Path) -> str:
    """The text of a /proc or /sys file, "" when it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
