"""The local image cache (``~/.cache/smartos-lab/images``, never committed).

Layout::

    images/<release>/smartos-<TS>-USB.img        decompressed USB image (sparse)
    images/<release>/smartos-<TS>-USB.img.json   sidecar: kind, release, size, checksum, source
    images/<release>/smartos-<TS>.iso (+ .json)
    images/<release>/platform-...-<TS>.tgz (+ .json)
    images/<release>/direct/platform/...         unix + boot_archive for a direct boot

``<release>`` is the build stamp, or ``local-<sha256 prefix>`` for an added
file whose stamp could not be found.  The checksum in a sidecar is that of
the file as published (for the USB image: the ``.img.gz``); ``verified``
says whether it matched the mirror's checksum file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import paths
from ..atomic import replace_durably, staged_dir, write_atomic
from ..errors import ChecksumMismatch, ConfigError, DownloadError, ImageError
from .checksums import Checksum, hash_file
from .decompress import gunzip
from .fat import fat_read
from .filelock import exclusive
from .gpt import find_partition
from .http_download import download
from .labcopy import copy_for_lab
from .local import VERSION_FILE, identify, stamp_in
from .mirror import KINDS, Mirror, iso_name, validate_ts, with_hint
from .platform import ROOT_PARTITION, PlatformFiles, extract_platform, platform_files
from .progress import Progress

DIRECT = "direct"


@dataclass(frozen=True)
class CachedImage:
    kind: str                   # "usb" | "iso" | "platform"
    release: str                # build stamp, or "local-<sha256 prefix>"
    path: Path
    size: int
    checksum: Checksum | None   # of the file as downloaded or added (USB: the .img.gz)
    verified: bool              # checksum matched the mirror's published one
    source: str                 # URL or local path it came from


class ImageCache:
    """Downloaded and imported SmartOS images, one directory per release."""

    def __init__(self, root: str | os.PathLike | None = None, *, mirror: Mirror | None = None):
        self.root = Path(root) if root is not None else paths.images_cache_dir()
        self.mirror = mirror or Mirror()

    def __repr__(self) -> str:
        return f"ImageCache({str(self.root)!r})"

    # --- queries --------------------------------------------------------------
    def list(self) -> list[CachedImage]:
        """Every cached image, newest release first."""
        try:
            readable = not self.root.exists() or os.access(self.root, os.R_OK | os.X_OK)
        except PermissionError:         # a folder above it is closed to us
            readable = False
        if not readable:
            raise ImageError(f"cannot read the image cache {self.root} (permission denied); a "
                             "shared cache (SMARTOS_LAB_CACHE) must be readable by every user: "
                             f"chmod -R g+rX {self.root} and add them to its group")
        found = []
        for sidecar in self.root.glob("*/*.json"):
            image = _load_sidecar(sidecar)
            if image is not None:
                found.append(image)
        return sorted(found, key=lambda i: (_order(i.release), i.kind), reverse=True)

    def get(self, release: str = "latest", kind: str = "usb") -> CachedImage | None:
        """The cached image of ``kind`` for ``release`` (``"latest"``: the newest cached), or None."""
        _check_kind(kind)
        for image in self.list():
            if image.kind == kind and release in ("latest", image.release):
                return image
        return None

    # --- filling --------------------------------------------------------------
    def fetch(self, release: str = "latest", kind: str = "usb", *,
              progress: Progress | None = None, verify: bool = True) -> CachedImage:
        """The cached image, downloaded (resumably), verified and decompressed if missing.

        ``"latest"`` asks the mirror which release is newest; if the mirror cannot be
        reached and an image of ``kind`` is cached, the newest cached one is returned
        with a warning.  With ``verify`` (default) a release without a published
        checksum for the file is refused.
        """
        _check_kind(kind)
        if release != "latest":
            cached = self.get(_check_release(release), kind)
            if cached:
                return cached
            if release.startswith("local-"):
                raise ImageError(f"no {kind} image of {release} in {self.root} (it was added "
                                 "by hand, so it cannot be downloaded)")
        try:
            rel = self.mirror.resolve(release)
        except DownloadError as e:
            cached = self.get(release, kind) if release == "latest" else None
            if cached is None:
                raise
            warnings.warn(f"using cached release {cached.release}: {str(e).splitlines()[0]}", stacklevel=2)
            return cached
        cached = self.get(rel.ts, kind)
        if cached:
            return cached
        expected = rel.checksum(kind)
        if expected is None and verify:
            where = rel.checksum_url or f"{rel.base_url} (no sha256sums.txt or md5sums.txt)"
            raise DownloadError(f"no published checksum for {rel.filename(kind)} in {where}; "
                                "pass verify=False to download it unverified")
        url = rel.url(kind)
        reldir = self.root / rel.ts
        with _locked(reldir):
            cached = self.get(rel.ts, kind)     # another process may have finished it
            if cached:
                return cached
            try:
                got = download(url, reldir / rel.filename(kind), expected=expected, progress=progress)
            except ChecksumMismatch:
                raise
            except DownloadError as e:
                raise with_hint(e) from None
            return self._store(got, kind, rel.ts, expected, verified=expected is not None,
                               source=url, progress=progress)

    def add(self, path: str | os.PathLike, *, release: str | None = None,
            progress: Progress | None = None) -> CachedImage:
        """Import a USB image (.img/.img.gz), ISO or platform tarball the user has.

        The file is copied (a ``.img.gz`` decompressed), never moved or changed.
        ``release`` overrides the build stamp found in the file or its name.
        """
        info = identify(path)
        if info.kind == "platform-dir":
            raise ImageError(f"{info.path} is a platform directory; it is used in place "
                             "(extract_platform links it), not copied into the cache")
        checksum = Checksum("sha256", hash_file(info.path, "sha256", progress=progress, label="computing"))
        ts = validate_ts(release) if release else info.release
        staging = self.root / f".add-{os.getpid()}"
        try:
            src = info.path
            if info.kind == "usb":
                staging.mkdir(parents=True, exist_ok=True)
                src = staging / "image.img"
                if info.compressed:
                    gunzip(info.path, src, progress=progress)
                else:
                    copy_for_lab(info.path, src, overwrite=True)
                ts = ts or _usb_version(src)
            ts = ts or f"local-{checksum.hex[:12]}"
            with _locked(self.root / ts):
                existing = self.get(ts, info.kind)
                if existing:
                    return existing
                dest = self.root / ts / _cache_name(info.kind, ts, info.path.name)
                if src == info.path:
                    copy_for_lab(src, dest, overwrite=True)
                else:
                    replace_durably(src, dest)
                return self._write_sidecar(dest, info.kind, ts, checksum, verified=False,
                                           source=str(info.path))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def platform(self, release: str = "latest", *, progress: Progress | None = None) -> PlatformFiles:
        """``unix`` and ``boot_archive`` of a release for a direct boot (``images/<TS>/direct``).

        Uses a cached platform tarball, USB image or ISO of the release, else downloads
        the platform tarball.  ``"latest"`` is the mirror's latest release, or the newest
        cached one (with a warning) when the mirror cannot be reached.
        """
        ts = self._latest_ts() if release == "latest" else _check_release(release)
        source = self.get(ts, "platform") or self.get(ts, "usb") or self.get(ts, "iso")
        if source is None:
            source = self.fetch(ts, "platform", progress=progress)
        direct = self.root / source.release / DIRECT
        if (direct / "platform").exists():
            return platform_files(direct)
        with _locked(self.root / source.release):
            if (direct / "platform").exists():
                return platform_files(direct)
            with staged_dir(direct) as tmp:
                extract_platform(source.path, tmp)
        return platform_files(direct)

    def remove(self, release: str, kind: str | None = None) -> list[Path]:
        """Delete the cached images of ``release`` (of one ``kind``, or all); return what was removed."""
        if kind is not None:
            _check_kind(kind)
        removed: list[Path] = []
        reldir = self.root / _check_release(release)
        if not reldir.is_dir():
            return removed
        for image in self.list():
            if image.release == release and kind in (None, image.kind):
                for p in (image.path, _sidecar_path(image.path)):
                    if p.exists():
                        p.unlink()
                        removed.append(p)
        if kind is None and (reldir / DIRECT).exists():
            shutil.rmtree(reldir / DIRECT)
            removed.append(reldir / DIRECT)
        if kind is None:
            for p in reldir.glob("*.part"):
                p.unlink()
                removed.append(p)
        if not any(p for p in reldir.iterdir() if p.name != ".lock"):
            shutil.rmtree(reldir)
        return removed

    # --- internals ------------------------------------------------------------
    def _latest_ts(self) -> str:
        try:
            return self.mirror.latest_ts()
        except DownloadError as e:
            cached = self.list()
            if not cached:
                raise
            warnings.warn(f"using cached release {cached[0].release}: {str(e).splitlines()[0]}",
                          stacklevel=3)
            return cached[0].release

    def _store(self, got: Path, kind: str, ts: str, checksum: Checksum | None, *, verified: bool,
               source: str, progress: Progress | None) -> CachedImage:
        if kind == "usb" and got.name.endswith(".gz"):
            raw = got.with_name(got.name[:-3])
            try:
                gunzip(got, raw, progress=progress)
            except ImageError as e:
                got.unlink()                # verified, but not a whole gzip stream
                raise DownloadError(f"{source}: {e}") from None
            got.unlink()                    # only once decompressed: an interrupt keeps the download
            got = raw
        try:
            found = identify(got).kind
        except ImageError as e:
            found = str(e)
        if found != kind:
            got.unlink()
            raise DownloadError(f"{source} is not a SmartOS {kind} image ({found}); deleted it")
        return self._write_sidecar(got, kind, ts, checksum, verified=verified, source=source)

    def _write_sidecar(self, path: Path, kind: str, ts: str, checksum: Checksum | None, *,
                       verified: bool, source: str) -> CachedImage:
        image = CachedImage(kind=kind, release=ts, path=path, size=path.stat().st_size,
                            checksum=checksum, verified=verified, source=source)
        data = {"kind": kind, "release": ts, "file": path.name, "size": image.size,
                "checksum": str(checksum) if checksum else None, "verified": verified,
                "source": source, "added": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_atomic(_sidecar_path(path), json.dumps(data, indent=2) + "\n")
        return image


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown image kind {kind!r}: expected one of {', '.join(KINDS)}")


def _check_release(release: str) -> str:
    """A cache directory name: a build stamp or ``local-<12 hex digits>``."""
    if not re.fullmatch(r"local-[0-9a-f]{12}", release or ""):
        validate_ts(release)
    return release


def _order(release: str) -> tuple[int, str]:
    """Build stamps sort by time; ``local-*`` releases sort before all of them."""
    return (1, release) if stamp_in(release) == release else (0, release)


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _load_sidecar(sidecar: Path) -> CachedImage | None:
    try:
        data = json.loads(sidecar.read_text())
        path = sidecar.with_name(data["file"])
        if not path.is_file():
            return None
        checksum = None
        if data.get("checksum"):
            algo, hexdigest = data["checksum"].split(":", 1)
            checksum = Checksum(algo, hexdigest)
        return CachedImage(kind=data["kind"], release=data["release"], path=path,
                           size=path.stat().st_size, checksum=checksum,
                           verified=bool(data.get("verified")), source=data.get("source", ""))
    except (OSError, ValueError, KeyError, ImageError):
        return None


def _cache_name(kind: str, ts: str, original: str) -> str:
    if kind == "usb":
        return f"smartos-{ts}-USB.img"
    if kind == "iso":
        return iso_name(ts)
    if stamp_in(original) == ts and original.endswith(".tgz"):
        return original
    return f"platform-{ts}.tgz"


def _usb_version(image: Path) -> str | None:
    """The build stamp in ``/platform/etc/version/platform`` of a raw USB image."""
    try:
        part = find_partition(image, ROOT_PARTITION)
        version = fat_read(image, part.offset_bytes, "/platform/" + VERSION_FILE)
        return stamp_in(version.decode(errors="replace"))
    except ImageError:
        return None


LOCK_TIMEOUT = 3 * 3600.0      # seconds to wait for another process fetching the same release


def _locked(directory: Path, timeout: float = LOCK_TIMEOUT):
    """Hold ``directory/.lock`` (one fetch per release at a time).

    Another process may be downloading the same release (minutes to hours on a
    slow link): wait for it, but not for ever.
    """
    directory.mkdir(parents=True, exist_ok=True)
    return exclusive(directory / ".lock", timeout=timeout,
                     busy=f"{directory} is locked by another smartos-lab process for more than "
                          f"{timeout:.0f} s (a download of the same release?); if none runs, "
                          f"delete {directory / '.lock'}")
