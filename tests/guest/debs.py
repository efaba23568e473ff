"""Debian packages for the test guest: resolve candidate versions, download, extract.

``apt-get download`` fetches a .deb without installing it (works as root, into the
current directory).  Package lists may be missing or stale on a fresh machine, so a
failed look-up or download runs ``apt-get update`` once and retries.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import GuestBuildError

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


_lists_updated = False


def apt_update(force: bool = False) -> None:
    """Run ``apt-get update`` (once per process unless ``force``)."""
    global _lists_updated
    if force or not _lists_updated:
        run(["apt-get", "update", "-q"], timeout=600)
        _lists_updated = True


def candidate(name: str) -> Package:
    """The version ``apt-get download``/``install`` would pick for ``name``."""
    return candidates([name])[0]


def candidates(names: list[str]) -> list[Package]:
    """Candidate versions of several packages with one ``apt-cache`` call (each costs ~0.5 s)."""
    versions = _candidate_versions(names)
    if any(versions.get(n) is None for n in names):
        apt_update()
        versions = _candidate_versions(names)
    missing = [n for n in names if versions.get(n) is None]
    if missing:
        raise GuestBuildError(f"apt has no installable candidate for {', '.join(missing)} "
                              "(is its component, e.g. contrib, in the apt sources?)")
    return [Package(n, versions[n]) for n in names]


def guest_kernel_name() -> str:
    """The versioned kernel image package that ``linux-image-cloud-amd64`` depends on."""
    depends = [d for d in direct_depends(KERNEL_METAPACKAGE) if d.startswith("linux-image-")]
    if not depends:
        apt_update()
        depends = [d for d in direct_depends(KERNEL_METAPACKAGE) if d.startswith("linux-image-")]
    if not depends:
        raise GuestBuildError(f"{KERNEL_METAPACKAGE} depends on no linux-image-* package")
    return depends[0]


def guest_kernel_package() -> Package:
    return candidate(guest_kernel_name())


def kernel_version_of(package: Package) -> str:
    """``linux-image-6.1.0-56-cloud-amd64`` -> ``6.1.0-56-cloud-amd64``."""
    return package.name.removeprefix("linux-image-")


def direct_depends(name: str) -> list[str]:
    """Names in the ``Depends:`` of the candidate version of ``name`` (first alternative)."""
    out = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests",
                          "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", name],
                         check=False, capture_output=True, text=True, timeout=120).stdout
    names, in_alternatives = [], False
    for line in out.splitlines():
        m = re.match(r"\s+(\|?)Depends: <?([^>\s]+)>?", line)
        if not m:
            continue
        if not in_alternatives:
            names.append(m.group(2))
        in_alternatives = m.group(1) == "|"
    return names


def installed_version(name: str) -> str | None:
    """The installed version of ``name``, or None."""
    proc = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", name],
                          check=False, capture_output=True, text=True)
    status, _, version = proc.stdout.strip().partition(" ")
    return version if proc.returncode == 0 and status == "installed" else None


def is_installed(name: str) -> bool:
    return installed_version(name) is not None


def download_and_extract(packages: list[Package], workdir: Path, root: Path) -> None:
    """``apt-get download`` the exact versions into ``workdir``, ``dpkg-deb -x`` into ``root``."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
            *(p.spec for p in packages)]
    try:
        run(argv, cwd=workdir, timeout=900)
    except GuestBuildError:
        apt_update()
        run(argv, cwd=workdir, timeout=900)
    for package in packages:
        debs = sorted(workdir.glob(f"{package.name}_*.deb"))
        if not debs:
            raise GuestBuildError(f"apt-get download left no .deb for {package.spec} in {workdir}")
        run(["dpkg-deb", "-x", str(debs[-1]), str(root)])


def _candidate_versions(names: list[str]) -> dict[str, str | None]:
    proc = subprocess.run(["apt-cache", "policy", *names], check=False,
                          capture_output=True, text=True, timeout=120)
    found = re.findall(r"^(\S+):\n\s+Installed:.*\n\s+Candidate:\s+(\S+)", proc.stdout,
                       re.MULTILINE)
    return {name: (None if version == "(none)" else version) for name, version in found}


def run(argv: list[str], *, cwd: Path | None = None, timeout: float = 120,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{argv[0]} not found: the test guest is built on Debian") from exc
    except subprocess.TimeoutExpired as exc:
        raise GuestBuildError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if proc.returncode != 0:
        raise GuestBuildError(f"failed (exit {proc.returncode}): {' '.join(argv)}\n"
                              f"{(proc.stderr or proc.stdout)[-2000:]}")
    return proc

