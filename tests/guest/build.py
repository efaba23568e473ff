"""Build (or reuse) the Linux *test guest*: a test substrate for smartos-lab, not SmartOS.

It is a Debian cloud kernel plus a small initramfs (busybox-static, dropbear, the
virtio drivers; the ``zfs`` variant adds OpenZFS modules built with dkms and
zpool/zfs/zdb/sfdisk), made from Debian packages and cached under
``smartos_lab.paths.cache_dir() / "test-guest" / "<variant>-<key>"``.  The key hashes
the package versions, the files in ``rootfs/`` (the init script...) and
``RECIPE_VERSION``, so changing any of them builds a new guest.

Guest behaviour (other code relies on it):

- Console on ttyS0 at 115200; default command line ``DEFAULT_CMDLINE`` (``panic=0``
  keeps a panicked guest halted so the panic text stays readable).
- Init prints ``READY_LINE`` when done, then loops ``getty -L 115200 ttyS0 vt100``:
  prompt ``testguest login: ``; user root, password ``ROOT_PASSWORD``; the shell is
  busybox ash with prompt ``testguest:~# `` (``\\h:\\w\\$``).
- eth0 (virtio-net; the cloud kernel has no e1000 driver) is 10.0.2.15/24 via
  10.0.2.2, for QEMU user-mode networking.  dropbear listens on port 22: root logs
  in with keys from /root/.ssh/authorized_keys (empty at boot) or the password;
  exec channels run ``/bin/sh -c``, so ``cat > file`` / ``cat file`` move files.
- ``poweroff -f`` powers off; ``echo c > /proc/sysrq-trigger`` panics the kernel.
- Variant ``zfs`` loads spl/zfs at boot and has zpool, zfs, zdb and sfdisk (partition
  disks first: whole-disk vdevs wait for udev, which the guest does not run).

Command line: ``python -m tests.guest.build [--variant base|zfs]``.
"""
from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from smartos_lab import paths

from . import debs, kmods, libs, zfs
from .cpio import Initramfs
from .debs import Package
from .errors import GuestBuildError

log = logging.getLogger(__name__)

RECIPE_VERSION = 2            # bump when the build steps change in a way the key can't see
VARIANTS = ("base", "zfs")
ROOT_PASSWORD = "lab"
DEFAULT_CMDLINE = "console=ttyS0,115200 panic=0 quiet loglevel=3"
READY_LINE = "smartos-lab test guest: ready"
LOGIN_PROMPT = "testguest login: "
SHELL_PROMPT = "testguest:~# "

ROOTFS_DIR = Path(__file__).with_name("rootfs")   # copied verbatim into the initramfs
USERLAND_PACKAGES = ("busybox-static", "dropbear-bin")
# Drivers for QEMU's virtio devices; their dependencies are added from .modinfo.
BASE_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "net_failover", "virtio_rng", "e1000")
OPTIONAL_MODULES = ("e1000",)     # not in Debian's cloud kernel: virtio-net is the NIC
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
_MANIFEST = "guest.json"


@dataclass(frozen=True)
class TestGuest:
    """A built test guest: boot it with ``-kernel``, ``-initrd`` and ``-append cmdline``."""

    __test__ = False          # not a pytest test class despite the name

    kernel: Path              # vmlinuz
    initrd: Path              # gzip-compressed newc initramfs
    cmdline: str              # default kernel command line
    root_password: str        # root's password at the console login prompt
    variant: str              # "base" or "zfs"
    kernel_version: str       # e.g. "6.1.0-56-cloud-amd64"


def ensure_test_guest(variant: str = "base", cache_dir: Path | None = None,
                      lock_timeout: float = 3600) -> TestGuest:
    """Return the cached guest for the current inputs, building it first if needed.

    ``cache_dir`` holds the ``<variant>-<key>`` directories (default
    ``smartos_lab.paths.cache_dir() / "test-guest"``).  Concurrent callers serialise
    on a file lock; a build happens in a temporary directory that is renamed into
    place, so an interrupted build never leaves a half-made cache entry.
    """
    if variant not in VARIANTS:
        raise GuestBuildError(f"unknown test guest variant {variant!r}; use one of {VARIANTS}")
    root = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "test-guest"
    root.mkdir(parents=True, exist_ok=True)
    inputs = _resolve_inputs(variant)
    final = root / f"{variant}-{_cache_key(inputs)}"
    if (guest := _load(final)) is not None:
        return guest
    with _locked(root / f".{variant}.lock", lock_timeout):
        if (guest := _load(final)) is not None:
            return guest
        _remove_stale(root, f".tmp-{variant}-")
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{variant}-", dir=root))
        try:
            _build(inputs, tmp)
            tmp.chmod(0o755)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_stale(root, f"{variant}-", keep=final)
    guest = _load(final)
    if guest is None:
        raise GuestBuildError(f"test guest build finished but {final} is incomplete")
    return guest


# --- inputs and cache ---------------------------------------------------------
def _resolve_inputs(variant: str) -> dict:
    inputs = {
        "recipe": RECIPE_VERSION,
        "variant": variant,
        **_package_inputs(variant),
        "rootfs": {str(p.relative_to(ROOTFS_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in sorted(ROOTFS_DIR.rglob("*")) if p.is_file()},
        "cmdline": DEFAULT_CMDLINE,
    }
    return inputs


@functools.cache
def _package_inputs(variant: str) -> dict:
    """Package versions (apt-cache is slow here: asked once per process and variant)."""
    kernel, *userland = debs.candidates([debs.guest_kernel_name(), *USERLAND_PACKAGES])
    packages = {"kernel": asdict(kernel), "packages": [asdict(p) for p in userland]}
    if variant == "zfs":
        packages["zfs"] = [asdict(p) for p in zfs.build_packages(debs.kernel_version_of(kernel))]
    return packages


def _cache_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def load_test_guest(directory: Path) -> TestGuest | None:
    """The built guest in ``directory`` (e.g. a copy in a shared cache), None if incomplete."""
    return _load(directory)


def _load(directory: Path) -> TestGuest | None:
    try:
        meta = json.loads((directory / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    guest = TestGuest(kernel=directory / "vmlinuz", initrd=directory / "initrd.img",
                      cmdline=meta["cmdline"], root_password=meta["root_password"],
                      variant=meta["variant"], kernel_version=meta["kernel_version"])
    return guest if guest.kernel.is_file() and guest.initrd.is_file() else None


class _locked:
    """An exclusive fcntl lock on ``path``, waited for at most ``timeout`` seconds."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise GuestBuildError(f"another process held {self.path} for more than "
                                          f"{self.timeout:.0f}s (a test guest build?)") from None
                time.sleep(0.5)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _remove_stale(root: Path, prefix: str, keep: Path | None = None) -> None:
    for entry in root.glob(f"{prefix}*"):
        if entry.is_dir() and entry != keep:
            shutil.rmtree(entry, ignore_errors=True)


# --- the build ----------------------------------------------------------------
def _build(inputs: dict, out: Path) -> None:
    started = time.monotonic()
    variant = inputs["variant"]
    kernel_pkg = Package(**inputs["kernel"])
    kver = debs.kernel_version_of(kernel_pkg)
    work, root = out / "work", out / "work" / "root"
    log.info("test guest %s: downloading %s and %s", variant, kernel_pkg.spec,
             ", ".join(p["name"] for p in inputs["packages"]))
    debs.download_and_extract([kernel_pkg, *(Package(**p) for p in inputs["packages"])],
                              work / "debs", root)
    vmlinuz = root / "boot" / f"vmlinuz-{kver}"
    moddir = root / "lib" / "modules" / kver
    if not vmlinuz.is_file() or not moddir.is_dir():
        raise GuestBuildError(f"{kernel_pkg.spec} has no boot/vmlinuz-{kver} or lib/modules/{kver}")

    image = Initramfs()
    _add_base_layout(image)
    _add_busybox(image, root / "bin" / "busybox")
    lib_dirs = _ensure_dropbear_libs(root, work)
    _add_binary(image, "/usr/sbin/dropbear", root / "usr" / "sbin" / "dropbear", lib_dirs)
    _add_host_keys(image, root / "usr" / "bin" / "dropbearkey", lib_dirs, work / "keys")
    image.add_file("/etc/shadow", _shadow_line(root / "bin" / "busybox"), 0o600)

    module_dirs, wanted = [moddir / "kernel"], list(BASE_MODULES)
    if variant == "zfs":
        zfs.ensure_zfs_build_deps(kver)
        module_dirs.append(zfs.prepare_modules(kver, work / "zfs-modules"))
        wanted += zfs.MODULES
        for guest_path, host_path in zfs.GUEST_BINARIES.items():
            _add_binary(image, guest_path, host_path, [])
        image.add_dir("/etc/zfs")
        image.add_symlink("/etc/mtab", "/proc/self/mounts")
    _add_modules(image, kver, kmods.ModuleIndex(module_dirs, moddir / "modules.builtin"), wanted)

    for path in sorted(ROOTFS_DIR.rglob("*")):      # last: the recipe's own files win
        if path.is_file():
            rel = str(path.relative_to(ROOTFS_DIR))
            mode = 0o755 if rel == "init" or os.access(path, os.X_OK) else 0o644
            image.add_file("/" + rel, path.read_bytes(), mode)

    shutil.copyfile(vmlinuz, out / "vmlinuz")
    image.write_gzip(out / "initrd.img")
    shutil.rmtree(work)
    meta = {
        "variant": variant, "kernel_version": kver, "cmdline": DEFAULT_CMDLINE,
        "root_password": ROOT_PASSWORD, "inputs": inputs,
        "initramfs_bytes": (out / "initrd.img").stat().st_size,
        "initramfs_uncompressed_bytes": image.size(),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (out / _MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("test guest %s built in %.0fs: initramfs %d bytes", variant,
             meta["build_seconds"], meta["initramfs_bytes"])


def _add_base_layout(image: Initramfs) -> None:
    for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/lib64", "/proc", "/sys", "/dev",
              "/run", "/mnt", "/var/log", "/etc/dropbear"):
        image.add_dir(d)
    image.add_dir("/tmp", 0o1777)
    image.add_dir("/root", 0o700)
    image.add_dir("/root/.ssh", 0o700)
    image.add_file("/root/.ssh/authorized_keys", b"", 0o600)
    image.add_char_device("/dev/console", 5, 1)     # the kernel opens it before /init runs
    image.add_char_device("/dev/null", 1, 3, 0o666)


def _add_busybox(image: Initramfs, busybox: Path) -> None:
    image.add_host_file("/bin/busybox", busybox, 0o755)
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet not in ("bin/busybox", "linuxrc"):
            image.add_symlink("/" + applet, "/bin/busybox")
    for required in ("/bin/sh", "/bin/ash", "/sbin/getty", "/bin/login", "/sbin/insmod"):
        if required not in image:
            raise GuestBuildError(f"busybox-static provides no {required}")


def _ensure_dropbear_libs(root: Path, work: Path) -> list[Path]:
    """Library dirs to search besides the host's: dropbear's deps, if the host lacks any."""
    lib_dirs = [root / "lib" / "x86_64-linux-gnu", root / "usr" / "lib" / "x86_64-linux-gnu"]
    dropbear = root / "usr" / "sbin" / "dropbear"
    if not libs.missing_libs(dropbear):
        return []
    deps = [debs.candidate(n) for n in debs.direct_depends("dropbear-bin") if n != "libc6"]
    log.info("host lacks dropbear's libraries; downloading %s", ", ".join(p.spec for p in deps))
    debs.download_and_extract(deps, work / "debs", root)
    return lib_dirs


def _add_binary(image: Initramfs, guest_path: str, host_path: Path, lib_dirs: list[Path]) -> None:
    image.add_host_file(guest_path, host_path, 0o755)
    for lib in libs.shared_libs(host_path, lib_dirs):
        if lib.guest_path not in image:
            image.add_host_file(lib.guest_path, lib.host_path, 0o755)


def _add_host_keys(image: Initramfs, dropbearkey: Path, lib_dirs: list[Path], keydir: Path) -> None:
    keydir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if lib_dirs:
        env["LD_LIBRARY_PATH"] = ":".join(map(str, lib_dirs))
    for kind in HOST_KEY_TYPES:
        key = keydir / f"dropbear_{kind}_host_key"
        debs.run([str(dropbearkey), "-t", kind, "-f", str(key)], env=env)
        image.add_file(f"/etc/dropbear/{key.name}", key.read_bytes(), 0o600)


def _shadow_line(busybox: Path) -> bytes:
    hashed = debs.run([str(busybox), "mkpasswd", "-m", "sha512", ROOT_PASSWORD]).stdout.strip()
    if not hashed.startswith("$6$"):
        raise GuestBuildError(f"busybox mkpasswd gave no SHA-512 hash: {hashed!r}")
    return f"root:{hashed}:19000:0:99999:7:::\n".encode()


def _add_modules(image: Initramfs, kver: str, index: kmods.ModuleIndex, wanted: list[str]) -> None:
    order = index.load_order(wanted, optional=OPTIONAL_MODULES)
    guest_paths = []
    for module in order:
        guest_path = f"/lib/modules/{kver}/{module.relpath}"
        image.add_file(guest_path, module.elf(), 0o644)
        guest_paths.append(guest_path)
    image.add_file("/etc/guest-modules", "".join(p + "\n" for p in guest_paths).encode())


# --- command line ---------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.guest.build",
                                     description="Build or reuse the Linux test guest "
                                                 "(a test substrate, not SmartOS).")
    parser.add_argument("--variant", choices=VARIANTS, default="base")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        guest = ensure_test_guest(args.variant)
    except GuestBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for field, value in asdict(guest).items():
        print(f"{field}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
