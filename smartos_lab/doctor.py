"""``smartos-lab doctor``: is this host ready to run labs?"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from . import paths
from .errors import HostError, RunDirError
from .machine.accel import detect_accel
from .machine.rundir import check_private_dir

MIN_QEMU = (6, 2)
GIB = 1 << 30
DISK_WARN_GIB = 4
DISK_FAIL_GIB = 1
PYTHON_DEPS = ("qemu.qmp", "pexpect", "paramiko")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True       # a failed required check makes ``doctor`` exit 1

    @property
    def level(self) -> str:
        return "ok" if self.ok else "FAIL" if self.required else "warn"


def run_checks() -> list[Check]:
    return [
        check_qemu(),
        check_binary("qemu-img", "apt-get install qemu-utils"),
        *check_accel(),
        check_binary("mcopy", "apt-get install mtools", name="mtools",
                     why="reads SmartOS USB images"),
        check_disk_space("cache", paths.cache_dir()),
        check_disk_space("home", paths.home_dir()),
        check_run_root(paths.run_root()),
        check_network(),
        *[check_python(mod) for mod in PYTHON_DEPS],
    ]


def check_qemu(binary: str = "qemu-system-x86_64") -> Check:
    path = shutil.which(binary)
    fix = "apt-get install qemu-system-x86"
    if not path:
        return Check(binary, False, "not found on PATH", fix)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(binary, False, f"{path} does not run: {exc}", fix)
    version = parse_qemu_version(out)
    if version is None:
        return Check(binary, False, f"cannot read the version of {path}: {out.strip()[:80]!r}", fix)
    text = ".".join(map(str, version))
    if version[:2] < MIN_QEMU:
        return Check(binary, False, f"{path} is QEMU {text}; need >= {'.'.join(map(str, MIN_QEMU))}",
                     "install a newer QEMU")
    return Check(binary, True, f"{path}, QEMU {text}")


def parse_qemu_version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def check_binary(binary: str, fix: str, *, name: str | None = None, why: str = "") -> Check:
    path = shutil.which(binary)
    label = name or binary
    if path:
        return Check(label, True, path)
    return Check(label, False, f"{binary} not found" + (f" ({why})" if why else ""), fix)


def check_accel() -> list[Check]:
    try:
        choice = detect_accel("auto")
    except HostError as exc:
        return [Check("accelerator", False, str(exc), required=False)]
    kvm = choice.accel == "kvm"
    accel = Check("accelerator", kvm, choice.reason,
                  "" if kvm else "labs run under TCG (slower); for speed use a host with real KVM",
                  required=False)
    nested = Check("nested virtualization", choice.nested, choice.nested_reason,
                   "" if choice.nested else
                   "KVM guests inside SmartOS need a KVM host with nested=1 (kvm_intel/kvm_amd)",
                   required=False)
    return [accel, nested]


def check_network() -> Check:
    """Which guest network backend labs use, and why (informational)."""
    passt = shutil.which("passt")
    if passt is None:
        why = "passt is not installed"
    else:
        why = (f"passt ({passt}) is installed but not used: through QEMU 7.2's -netdev stream "
               "its 127.0.0.1 forwards did not reach the test guest here (see "
               "benchmarks/README.md)")
    return Check("guest network", True,
                 f"QEMU user-mode networking (slirp), forwards on 127.0.0.1 only; {why}",
                 required=False)


def check_disk_space(label: str, path: Path) -> Check:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        return Check(f"disk space ({label})", False, f"cannot check {path}: {exc}")
    detail = f"{free / GIB:.1f} GiB free for {path}"
    if free < DISK_FAIL_GIB * GIB:
        return Check(f"disk space ({label})", False, detail, f"free space on {probe}")
    if free < DISK_WARN_GIB * GIB:
        return Check(f"disk space ({label})", False, detail,
                     f"a SmartOS lab wants >= {DISK_WARN_GIB} GiB", required=False)
    return Check(f"disk space ({label})", True, detail)


def check_run_root(root: Path) -> Check:
    if not root.exists():
        parent = root.parent
        if os.access(parent, os.W_OK | os.X_OK):
            return Check("run root", True, f"{root} (will be created, mode 0700)")
        return Check("run root", False, f"cannot create {root}: {parent} is not writable",
                     "set SMARTOS_LAB_RUNDIR to a short private directory")
    try:
        check_private_dir(root, "run root")
    except RunDirError as exc:
        return Check("run root", False, str(exc), f"chmod 700 {root} (and make sure you own it)")
    return Check("run root", True, f"{root} (private)")


def check_python(module: str) -> Check:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return Check(f"python: {module}", found, "importable" if found else "missing",
                 "" if found else f"pip install {module}")


def all_required_ok(checks: list[Check]) -> bool:
    return all(c.ok or not c.required for c in checks)


def format_report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"[{c.level:>4}] {c.name:<{width}}  {c.detail}")
        if c.fix and not c.ok:
            lines.append(f"       {'':<{width}}  fix: {c.fix}")
    verdict = "ready" if all_required_ok(checks) else "NOT ready: fix the FAIL lines"
    lines.append(f"\nsmartos-lab: {verdict}")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps({"ok": all_required_ok(checks),
                       "checks": [{**asdict(c), "level": c.level} for c in checks]}, indent=2)
