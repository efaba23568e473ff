"""OpenZFS for the ``zfs`` test guest variant: Debian's zfs-dkms built for the guest kernel.

Debian ships OpenZFS in ``contrib``: ``zfs-dkms`` (sources, built by dkms against
``linux-headers-<guest kernel>``) and ``zfsutils-linux`` (zpool, zfs, zdb).  ``fdisk``
provides ``sfdisk``, which the guest needs to partition disks before ``zpool create``.

:func:`ensure_zfs_build_deps` installs all of that on the build host (root, Debian):
it adds ``contrib`` to the Debian apt sources if missing, runs ``apt-get update`` and
``apt-get install --no-install-recommends``.  It does nothing when the packages are
installed already.  Building the modules takes minutes (about 4 on 2 cores).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from . import debs
from .debs import Package
from .errors import GuestBuildError

log = logging.getLogger(__name__)

ZFS_PACKAGES = ("zfs-dkms", "zfsutils-linux", "fdisk")
MODULES = ("spl", "zfs")
GUEST_BINARIES = {f"/usr/sbin/{name}": Path("/usr/sbin") / name
                  for name in ("zpool", "zfs", "zdb", "sfdisk")}
APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
DKMS_TREE = Path("/var/lib/dkms")


def build_packages(kernel_version: str) -> list[Package]:
    """The packages the zfs variant is built from: installed versions, else candidates."""
    names = [f"linux-headers-{kernel_version}", *ZFS_PACKAGES]
    installed = {n: debs.installed_version(n) for n in names}
    missing = [n for n in names if installed[n] is None]
    if missing:
        _ensure_contrib()
        installed.update((p.name, p.version) for p in debs.candidates(missing))
    return [Package(n, installed[n]) for n in names]


def ensure_zfs_build_deps(kernel_version: str | None = None) -> None:
    """Install headers for the guest kernel, zfs-dkms, zfsutils-linux and fdisk (as root).

    A no-op when all are installed.  ``kernel_version`` defaults to the guest kernel
    (the versioned dependency of ``linux-image-cloud-amd64``).
    """
    kver = kernel_version or debs.kernel_version_of(debs.guest_kernel_package())
    names = [f"linux-headers-{kver}", *ZFS_PACKAGES]
    missing = [n for n in names if not debs.is_installed(n)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise GuestBuildError(f"installing {', '.join(missing)} needs root (apt-get install)")
    _ensure_contrib()
    debs.apt_update()
    log.info("installing %s (zfs-dkms builds kernel modules: minutes)", ", ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    debs.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
             env=env, timeout=3600)


def prepare_modules(kernel_version: str, dest: Path) -> Path:
    """Build spl/zfs with dkms for ``kernel_version`` if needed; copy them, debug info stripped.

    Returns a module tree (``dest/updates/dkms/*.ko``) for :class:`kmods.ModuleIndex`.
    """
    version = _dkms_zfs_version()
    built = DKMS_TREE / "zfs" / version / kernel_version / "x86_64" / "module"
    if not list(built.glob("zfs.ko*")):
        log.info("dkms build zfs/%s for %s (minutes)", version, kernel_version)
        debs.run(["dkms", "build", "-m", "zfs", "-v", version, "-k", kernel_version],
                 timeout=3600)
    modules = sorted(built.glob("*.ko*"))
    if not modules:
        raise GuestBuildError(f"dkms built no modules in {built}")
    target = dest / "updates" / "dkms"
    target.mkdir(parents=True, exist_ok=True)
    for module in modules:
        copy = target / module.name
        shutil.copyfile(module, copy)
        if module.name.endswith(".ko") and shutil.which("strip"):
            debs.run(["strip", "--strip-debug", str(copy)])
    return dest


def _dkms_zfs_version() -> str:
    """The zfs source version dkms knows (``/usr/src/zfs-<version>``), e.g. ``2.1.11``."""
    installed = debs.installed_version("zfs-dkms")
    if installed is None:
        raise GuestBuildError("zfs-dkms is not installed: call ensure_zfs_build_deps() first")
    upstream = re.sub(r"^\d+:", "", installed).rsplit("-", 1)[0]
    if not (Path("/usr/src") / f"zfs-{upstream}").is_dir():
        raise GuestBuildError(f"zfs-dkms {installed} is installed "
                              f"but /usr/src/zfs-{upstream} is missing")
    return upstream


def _ensure_contrib() -> None:
    """Add ``contrib`` next to ``main`` in Debian's own apt sources (deb822 or one-line)."""
    changed = False
    for path in sorted(APT_SOURCES_DIR.glob("*.sources")):
        text = path.read_text()
        new = _add_contrib_deb822(text)
        if new != text:
            path.write_text(new)
            changed = True
    if APT_SOURCES.exists():
        text = APT_SOURCES.read_text()
        new = "".join(_add_contrib_one_line(line) for line in text.splitlines(keepends=True))
        if new != text:
            APT_SOURCES.write_text(new)
            changed = True
    if changed:
        log.info("added the contrib component to the Debian apt sources")
        debs.apt_update(force=True)


def _add_contrib_deb822(text: str) -> str:
    stanzas = text.split("\n\n")
    for i, stanza in enumerate(stanzas):
        uris = re.search(r"^URIs:\s*(.*)$", stanza, re.MULTILINE)
        if not uris or "debian" not in uris.group(1):
            continue
        stanzas[i] = re.sub(r"^(Components:[ \t]*)(.*)$",
                            lambda m: m.group(0) if "contrib" in m.group(2).split()
                            else f"{m.group(1)}{m.group(2)} contrib",
                            stanza, flags=re.MULTILINE)
    return "\n\n".join(stanzas)


def _add_contrib_one_line(line: str) -> str:
    words = line.split()
    if (len(words) >= 4 and words[0] in ("deb", "deb-src") and "debian" in line
            and "main" in words[3:] and "contrib" not in words[3:]):
        return line.rstrip("\n") + " contrib\n"
    return line
