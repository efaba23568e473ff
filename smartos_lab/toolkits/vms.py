"""Nested hardware VMs: can this lab run KVM-brand or bhyve guests, and making them.

Two sides:

* the host (:func:`host_virtualization`, :func:`nested_support`): does QEMU give
  the SmartOS guest VT-x/AMD-V with the features each brand needs?
  KVM brand (illumos-kvm): Intel VT-x with EPT only, no AMD SVM.
  bhyve brand: Intel VT-x with EPT and unrestricted guest, or AMD SVM with
  nested paging (NPT) and NRIP save (illumos ``hma.c`` / ``bhhwcompat``).
* the guest (:class:`Vms`): what SmartOS itself reports (``sysinfo`` fields
  ``CPU Virtualization``, ``Bhyve Capable``, ``Bhyve Max Vcpus``, ``HVM API``;
  device nodes ``/dev/kvm``, ``/dev/vmmctl``), vmadm payloads for brand
  ``kvm``/``bhyve`` and start/stop/console.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..machine.hostvirt import HostVirt, host_virtualization
from ..machine.result import CommandRunner
from ..parsers.system import parse_sysinfo
from . import _cmd
from .base import Toolkit
from .zones import Zones

# --------------------------------------------------------------------------- host side


@dataclass(frozen=True)
class NestedSupport:
    """Whether hardware-virtualized guests can run inside this lab's SmartOS, and why not."""

    kvm_brand: bool
    bhyve: bool
    reasons: list[str] = field(default_factory=list)   # why a brand cannot run
    notes: list[str] = field(default_factory=list)     # caveats that do not block

    def __str__(self) -> str:
        lines = [f"KVM brand: {'yes' if self.kvm_brand else 'no'}",
                 f"bhyve:     {'yes' if self.bhyve else 'no'}"]
        lines += [f"  - {r}" for r in self.reasons]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


HOW_TO_ENABLE = ("enable nesting on the host: 'modprobe -r kvm_intel && modprobe kvm_intel nested=1' "
                 "(AMD: kvm_amd nested=1), persist it in /etc/modprobe.d/kvm.conf, and run the lab "
                 "with -accel kvm and -cpu host (see kvm/README.md)")


def nested_support(accel: Any, host: HostVirt | None = None, *, cpu_model: str = "") -> NestedSupport:
    """Decide from the accelerator choice (``AccelChoice`` or "kvm"/"tcg") and host facts.

    ``cpu_model`` is the QEMU ``-cpu`` model of the lab ("" picks ``host`` under KVM).
    Without ``host`` the facts are read from this machine.
    """
    name = getattr(accel, "accel", accel)
    host = host if host is not None else host_virtualization()
    reasons: list[str] = []
    notes: list[str] = []
    if name != "kvm":
        why = getattr(accel, "reason", "") or "QEMU runs under TCG (software emulation)"
        reasons.append(f"no hardware virtualization for the guest: {why}. Under full emulation "
                       "SmartOS sees no VT-x/AMD-V, so KVM and bhyve guests cannot start "
                       "(joyent and LX zones still work)")
        if host.pvm_only:
            reasons.append("this host's /dev/kvm is PVM-only (kvm_pvm): it cannot run an "
                           "ordinary guest, let alone a nested one")
        return NestedSupport(False, False, reasons, notes)
    if cpu_model not in ("", "host"):
        reasons.append(f"QEMU -cpu {cpu_model} does not pass the host's VT-x/AMD-V features "
                       "through; use -cpu host")
        return NestedSupport(False, False, reasons, notes)
    nested = getattr(accel, "nested", None)
    if nested is None:
        nested = host.param_on("nested")
    if not nested:
        why = getattr(accel, "nested_reason", "") or "nested virtualization is off on the host"
        reasons.append(f"{why}; {HOW_TO_ENABLE}")
        return NestedSupport(False, False, reasons, notes)

    vendor = host.vendor or getattr(accel, "cpu_vendor", "")
    if vendor == "intel":
        ept = host.ept and host.param_on("ept") is not False
        ug = host.unrestricted_guest and host.param_on("unrestricted_guest") is not False
        kvm_brand = ept
        bhyve = ept and ug
        if not ept:
            reasons.append("the host CPU (or kvm_intel ept=N) gives no EPT: the KVM brand and "
                           "bhyve both need VT-x with extended page tables")
        elif not ug:
            reasons.append("no 'unrestricted guest' VMX feature on the host (or kvm_intel "
                           "unrestricted_guest=N): bhyve needs it")
        return NestedSupport(kvm_brand, bhyve, reasons, notes)
    if vendor == "amd":
        reasons.append("AMD host: the KVM brand needs Intel VT-x with EPT (illumos-kvm has no "
                       "AMD SVM support); use bhyve")
        npt = host.npt and host.param_on("npt") is not False
        nrips = host.nrip_save and host.param_on("nrips") is not False
        if not npt:
            reasons.append("no nested paging (NPT) for the guest (CPU flag npt, kvm_amd npt=1): "
                           "bhyve needs it")
        if not nrips:
            reasons.append("no NRIP save for the guest (CPU flag nrip_save, kvm_amd nrips=1): "
                           "bhyve needs it")
        if npt and nrips:
            notes.append("recent illumos bhhwcompat also requires SVM decode assists, which "
                         "Linux KVM did not pass to nested guests as of early 2026: check "
                         "'/usr/lib/brand/bhyve/bhhwcompat' (or sysinfo 'Bhyve Capable') "
                         "inside the lab")
        return NestedSupport(False, npt and nrips, reasons, notes)
    reasons.append("unknown CPU vendor: cannot tell whether VT-x or AMD-V is available")
    return NestedSupport(False, False, reasons, notes)


# --------------------------------------------------------------------------- payloads

def hvm_payload(brand: str, image_uuid: str, *, alias: str, ram: int = 1024, vcpus: int = 1,
                nic_tag: str = "admin", ips: tuple[str, ...] = ("dhcp",),
                resolvers: tuple[str, ...] = (), extra: dict[str, Any] | None = None) -> dict:
    """A vmadm create payload for a ``kvm`` or ``bhyve`` VM booting from an installed image.

    ``image_uuid`` names a zvol image from ``imgadm list``; it goes on the boot
    disk (``disks.*.image_uuid``), not the zone root (see vmadm(8)).
    """
    if brand not in ("kvm", "bhyve"):
        raise ConfigError(f"hardware VM brand must be 'kvm' or 'bhyve', got {brand!r}")
    _cmd.uuid(image_uuid)
    _cmd.no_control(alias, "alias")
    for value, what in ((ram, "ram (MiB)"), (vcpus, "vcpus")):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    payload: dict[str, Any] = {
        "brand": brand,
        "alias": alias,
        "ram": ram,
        "vcpus": vcpus,
        "disks": [{"image_uuid": image_uuid, "boot": True, "model": "virtio"}],
        "nics": [{"nic_tag": nic_tag, "ips": list(ips), "model": "virtio", "primary": True}],
    }
    if resolvers:
        payload["resolvers"] = list(resolvers)
    payload.update(extra or {})
    return payload


def bhyve_payload(image_uuid: str, **kw: Any) -> dict:
    """:func:`hvm_payload` for brand ``bhyve``."""
    return hvm_payload("bhyve", image_uuid, **kw)


def kvm_payload(image_uuid: str, **kw: Any) -> dict:
    """:func:`hvm_payload` for brand ``kvm``."""
    return hvm_payload("kvm", image_uuid, **kw)


# --------------------------------------------------------------------------- guest side


@dataclass(frozen=True)
class GuestVirt:
    """What SmartOS reports about its own hardware virtualization."""

    cpu_virtualization: str          # sysinfo "CPU Virtualization": "vmx" | "svm" | "none"
    bhyve_capable: bool | None       # sysinfo "Bhyve Capable" (bhhwcompat said yes)
    bhyve_max_vcpus: int | None      # sysinfo "Bhyve Max Vcpus"
    hvm_api: bool | None             # sysinfo "HVM API"
    devices: tuple[str, ...]         # present among /dev/kvm, /dev/vmmctl

    @property
    def kvm_brand_ready(self) -> bool:
        """VT-x seen and the illumos-kvm driver's /dev/kvm present."""
        return self.cpu_virtualization == "vmx" and "/dev/kvm" in self.devices

    @property
    def bhyve_ready(self) -> bool:
        return bool(self.bhyve_capable)


_DEVICES = ("/dev/kvm", "/dev/vmmctl")
# Fixed text, no user input: lists which of the device nodes exist.
_DEVICE_PROBE = "for p in " + " ".join(_DEVICES) + '; do [ -e "$p" ] && echo "$p"; done; true'


class Vms(Toolkit):
    """Hardware VMs (brands ``kvm`` and ``bhyve``) in a SmartOS lab."""

    def __init__(self, runner: CommandRunner, *, accel: Any = None, timeout: float = 120.0,
                 zones: Zones | None = None):
        super().__init__(runner, timeout=timeout)
        self.accel = accel            # the lab's AccelChoice (host side of the question)
        self.zones = zones or Zones(runner, timeout=timeout)

    def nested_support(self, host: HostVirt | None = None) -> NestedSupport:
        """Can this lab run KVM-brand or bhyve guests, judged from the host (see
        :func:`nested_support`); :meth:`capability` asks SmartOS itself."""
        if self.accel is None:
            raise ConfigError("this Vms toolkit was made without the lab's accelerator choice")
        return nested_support(self.accel, host)

    def capability(self) -> GuestVirt:
        """Read ``sysinfo`` and the device nodes in the guest."""
        raw = parse_sysinfo(self._ok("sysinfo").stdout).raw
        present = self._ok(_DEVICE_PROBE).stdout.split()
        return GuestVirt(
            cpu_virtualization=str(raw.get("CPU Virtualization", "none")),
            bhyve_capable=_opt_bool(raw.get("Bhyve Capable")),
            bhyve_max_vcpus=_opt_int(raw.get("Bhyve Max Vcpus")),
            hvm_api=_opt_bool(raw.get("HVM API")),
            devices=tuple(d for d in _DEVICES if d in present),
        )

    def create(self, payload: dict, *, validate: bool = True, timeout: float = 600.0) -> str:
        """Create a hardware VM from a payload (see :func:`bhyve_payload`); returns its UUID."""
        if payload.get("brand") not in ("kvm", "bhyve"):
            raise ConfigError("Vms.create takes brand 'kvm' or 'bhyve' payloads; use lab.zones "
                              "for joyent/lx zones")
        return self.zones.create(payload, validate=validate, timeout=timeout)

    def start(self, uuid: str) -> None:
        self.zones.start(uuid)

    def stop(self, uuid: str, *, force: bool = False) -> None:
        self.zones.stop(uuid, force=force)

    def delete(self, uuid: str) -> None:
        self.zones.delete(uuid)

    @staticmethod
    def console_command(uuid: str) -> str:
        """The command for the VM's serial console: ``vmadm console <uuid>``.

        The console is interactive (leave with Ctrl-]): run it from the lab's
        terminal (``smartos-lab shell`` / SSH), not through a notebook cell.
        """
        return _cmd.cmd("vmadm", "console", _cmd.uuid(uuid))


def _opt_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def _opt_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None

