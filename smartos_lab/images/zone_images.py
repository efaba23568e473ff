"""Zone images (an IMGAPI manifest + image file) kept on the host for offline workshops.

An image server (IMGAPI; default ``https://images.smartos.org``, or ``$SMARTOS_LAB_IMGAPI``)
serves each image as two objects (sdc-imgapi ``docs/index.md``, GetImage and GetImageFile)::

    GET <source>/images/<uuid>        the manifest (JSON)
    GET <source>/images/<uuid>/file   the file, compressed as the manifest's files[0] says

The cache (``<cache>/zone-images``, or ``$SMARTOS_LAB_ZONE_IMAGES``: e.g. a folder on a USB
stick) keeps each image ready for ``imgadm install -m <manifest> -f <file>``::

    <root>/<uuid>/manifest.json         the manifest exactly as served (or as added)
    <root>/<uuid>/<uuid>.zfs.bz2        the file, named the way ``imgadm create`` names one
    <root>/<uuid>/.verified             its size and sha1 matched the manifest (when, where from)

A folder made by hand (``manifest.json`` and the file under any name) is used too; it
counts as verified once :meth:`ZoneImageCache.verify` has checked it.  Downloads and
imports are staged in ``<root>/.incoming/`` (a broken download resumes there) and appear
as a whole ``<uuid>/`` directory only once verified.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import paths
from ..atomic import write_atomic
from ..errors import ChecksumMismatch, ConfigError, DownloadError, ImageError
from .checksums import Checksum, hash_file
from .filelock import exclusive
from .http_download import CONNECT_TIMEOUT, READ_TIMEOUT, download, fetch_text
from .progress import Progress

DEFAULT_SOURCE = "https://images.smartos.org"
SOURCE_ENV = "SMARTOS_LAB_IMGAPI"
ROOT_ENV = "SMARTOS_LAB_ZONE_IMAGES"
MANIFEST = "manifest.json"
RECORD = ".verified"
INCOMING = ".incoming"
LOCK_TIMEOUT = 3600.0

#: manifest ``files[0].compression`` -> file name suffix.  IMGAPI documents bzip2, gzip
#: and none; imgadm (smartos-live src/img/lib/imgadm.js) also installs and creates xz.
COMPRESSION_SUFFIX = {"none": "", "gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COPY_CHUNK = 1 << 20

OFFLINE_HINT = (
    "If this machine is offline or cannot reach the image server, fetch the image on one "
    f"that can (`{ROOT_ENV}=/media/stick/zone-images smartos-lab images zone fetch UUID`), "
    f"then point {ROOT_ENV} at that folder here, or import the pair with "
    "`smartos-lab images zone add MANIFEST FILE` (ZoneImageCache().add(manifest, file)); "
    f"or set {SOURCE_ENV} to another image server.")


def validate_uuid(value: str) -> str:
    """Return ``value`` if it is an image UUID as IMGAPI writes them (lowercase)."""
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ConfigError(f"not an image UUID: {value!r} (expected lowercase "
                          "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, as `imgadm avail` shows)")
    return value


def image_file_name(uuid: str, image_type: str, compression: str) -> str:
    """``<uuid>.zfs[.gz|.bz2|.xz]`` (``.zvol...`` for a zvol image), as ``imgadm create`` names files."""
    if compression not in COMPRESSION_SUFFIX:
        raise ImageError(f"unknown image file compression {compression!r} "
                         f"(expected one of {', '.join(COMPRESSION_SUFFIX)})")
    base = ".zvol" if image_type == "zvol" else ".zfs"
    return validate_uuid(uuid) + base + COMPRESSION_SUFFIX[compression]


# --- manifests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ZoneImageManifest:
    """The fields of an IMGAPI image manifest this cache uses (the file is ``files[0]``)."""

    uuid: str
    name: str
    version: str
    os: str
    type: str
    sha1: str
    size: int
    compression: str
    origin: str | None = None       # set for an incremental image: its origin must be installed first

    @property
    def file_name(self) -> str:
        return image_file_name(self.uuid, self.type, self.compression)


def parse_manifest(text: str, where: str = "manifest") -> ZoneImageManifest:
    """Read an IMGAPI manifest (JSON text); ImageError naming ``where`` and the field if it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ImageError(f"{where} is not an image manifest: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ImageError(f"{where} is not an image manifest: not a JSON object")

    def field(name: str, value, kind: type, what: str):
        if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
            raise ImageError(f"{where} is not a usable image manifest: {name} must be {what}, "
                             f"got {value!r}")
        return value

    uuid = field("uuid", data.get("uuid"), str, "a UUID")
    if not _UUID.fullmatch(uuid):
        raise ImageError(f"{where}: uuid {uuid!r} is not a UUID")
    files = data.get("files")
    if not isinstance(files, list) or not files or not isinstance(files[0], dict):
        raise ImageError(f"{where} is not a usable image manifest: it lists no image file "
                         "(files: [{sha1, size, compression}])")
    first = files[0]
    sha1 = field("files[0].sha1", first.get("sha1"), str, "a sha1 digest")
    try:
        sha1 = Checksum("sha1", sha1).hex
    except ImageError:
        raise ImageError(f"{where}: files[0].sha1 {sha1!r} is not a sha1 digest") from None
    size = field("files[0].size", first.get("size"), int, "a byte count")
    if size < 0:
        raise ImageError(f"{where}: files[0].size is negative ({size})")
    compression = field("files[0].compression", first.get("compression"), str, "a compression name")
    if compression not in COMPRESSION_SUFFIX:
        raise ImageError(f"{where}: unknown files[0].compression {compression!r} "
                         f"(expected one of {', '.join(COMPRESSION_SUFFIX)})")
    origin = data.get("origin")
    return ZoneImageManifest(
        uuid=uuid, name=field("name", data.get("name"), str, "a string"),
        version=field("version", data.get("version"), str, "a string"),
        os=field("os", data.get("os"), str, "a string"),
        type=field("type", data.get("type"), str, "a string"),
        sha1=sha1, size=size, compression=compression,
        origin=origin if isinstance(origin, str) else None)


def load_manifest(path: str | os.PathLike) -> ZoneImageManifest:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ImageError(f"cannot read the manifest {path}: {e}") from None
    return parse_manifest(text, str(path))


# --- the cache ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CachedZoneImage:
    uuid: str
    name: str
    version: str
    os: str
    type: str
    manifest_path: Path
    file_path: Path
    size: int               # bytes of the file on disk
    verified: bool          # its size and sha1 were checked against the manifest


def default_root() -> Path:
    """``$SMARTOS_LAB_ZONE_IMAGES``, else ``<cache>/zone-images``."""
    env = os.environ.get(ROOT_ENV)
    return Path(env).expanduser() if env else paths.cache_dir() / "zone-images"


class ZoneImageCache:
    """Zone images on the host: one ``<uuid>/`` directory with manifest and file each."""

    def __init__(self, root: str | os.PathLike | None = None, *, source: str | None = None,
                 timeout: float = READ_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.source = (source or os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE).rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"ZoneImageCache({str(self.root)!r}, source={self.source!r})"

    # --- queries --------------------------------------------------------------------------
    def list(self) -> list[CachedZoneImage]:
        """Every usable image by name, version, UUID (broken folders left out: :meth:`get` says why)."""
        found = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.is_dir() and _UUID.fullmatch(entry.name):
                    try:
                        found.append(_load(entry))
                    except ImageError:
                        continue
        return sorted(found, key=lambda i: (i.name, i.version, i.uuid))

    def get(self, uuid: str) -> CachedZoneImage | None:
        """The cached image ``uuid``, or None; ImageError if its folder is there but unusable."""
        entry = self.root / validate_uuid(uuid)
        return _load(entry) if entry.exists() else None

    # --- filling --------------------------------------------------------------------------
    def fetch(self, uuid: str, progress: Progress | None = None) -> CachedZoneImage:
        """The cached image, first downloaded from the image server if it is not here.

        GETs ``<source>/images/<uuid>`` (the manifest), then ``.../file`` with the
        resumable downloader, checks the file's sha1 and size against the manifest and
        only then adds the pair.  DownloadError (with what to do offline) when the server
        cannot be reached or has no such image; ChecksumMismatch when the data is wrong.
        """
        cached = self.get(uuid)
        if cached is not None:
            return cached
        with self._lock(uuid):
            cached = self.get(uuid)
            if cached is not None:
                return cached
            url = f"{self.source}/images/{uuid}"
            manifest, text = self._fetch_manifest(url, uuid)
            staging = self._incoming() / uuid
            label = f"downloading {manifest.name} {manifest.version} ({manifest.file_name})"
            try:
                got = download(url + "/file", staging / manifest.file_name,
                               expected=Checksum("sha1", manifest.sha1),
                               progress=_Relabelled(progress, label) if progress else None,
                               timeout=self.timeout, connect_timeout=self.connect_timeout)
            except ChecksumMismatch:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            except DownloadError as e:
                if not any(staging.glob("*.part")):
                    shutil.rmtree(staging, ignore_errors=True)
                raise _with_hint(e) from None
            if got.stat().st_size != manifest.size:
                shutil.rmtree(staging, ignore_errors=True)
                raise ChecksumMismatch(f"{url}/file is {got.stat().st_size} bytes, the manifest "
                                       f"says {manifest.size}; the download was deleted")
            write_atomic(staging / MANIFEST, text.encode("utf-8"))
            return self._commit(staging, manifest, source=url)

    def add(self, manifest_path: str | os.PathLike, file_path: str | os.PathLike, *,
            progress: Progress | None = None) -> CachedZoneImage:
        """Import a manifest + image file you have (e.g. from a USB stick): copied, never moved.

        The file must have the manifest's size and sha1 (ImageError otherwise, nothing is
        added); a file whose name carries another image's UUID is refused.  If the image
        is cached already, that entry is returned.
        """
        manifest_path, file_path = Path(manifest_path), Path(file_path)
        manifest = load_manifest(manifest_path)
        if not file_path.is_file():
            raise ImageError(f"image file {file_path} does not exist or is not a file")
        named = _UUID.search(file_path.name)
        if named and named.group(0) != manifest.uuid:
            raise ImageError(f"{file_path.name} is named for image {named.group(0)}, but "
                             f"{manifest_path} is the manifest of {manifest.uuid}: not a pair")
        size = file_path.stat().st_size
        if size != manifest.size:
            raise ImageError(f"{file_path} is {size} bytes, but {manifest_path} says image "
                             f"{manifest.uuid} is {manifest.size}: not this image's file "
                             "(or an incomplete copy)")
        cached = self.get(manifest.uuid)
        if cached is not None:
            return cached if cached.verified else self.verify(cached.uuid, progress=progress)
        with self._lock(manifest.uuid):
            cached = self.get(manifest.uuid)
            if cached is not None:
                return cached
            staging = self._incoming() / f"{manifest.uuid}.add-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                staging.mkdir(parents=True)
                sha1 = _copy_hashing(file_path, staging / manifest.file_name, progress)
                if sha1 != manifest.sha1:
                    raise ImageError(f"{file_path} has sha1 {sha1}, but {manifest_path} says "
                                     f"{manifest.sha1}: a damaged or different file; nothing was added")
                write_atomic(staging / MANIFEST, manifest_path.read_bytes())
                return self._commit(staging, manifest, source=str(file_path))
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def verify(self, uuid: str, progress: Progress | None = None) -> CachedZoneImage:
        """Check the cached file's size and sha1 against its manifest (ImageError if they
        differ; nothing is deleted) and record that it matched."""
        image = self.get(uuid)
        if image is None:
            raise ImageError(f"zone image {uuid} is not in {self.root}")
        manifest = load_manifest(image.manifest_path)
        if image.size != manifest.size:
            raise ImageError(f"{image.file_path} is {image.size} bytes; its manifest says "
                             f"{manifest.size}: incomplete or not this image's file")
        sha1 = hash_file(image.file_path, "sha1", progress=progress)
        if sha1 != manifest.sha1:
            raise ImageError(f"{image.file_path} has sha1 {sha1}; its manifest says "
                             f"{manifest.sha1}: damaged or not this image's file")
        try:
            _write_record(image.file_path, manifest, source=str(image.file_path))
        except OSError:
            pass            # a read-only folder (a write-protected stick): verified this time only
        return _load(image.manifest_path.parent, assume_verified=True)

    # --- internals ------------------------------------------------------------------------
    def _fetch_manifest(self, url: str, uuid: str) -> tuple[ZoneImageManifest, str]:
        try:
            text = fetch_text(url, timeout=self.timeout, connect_timeout=self.connect_timeout)
        except DownloadError as e:
            if getattr(e, "http_status", None) == 404:
                err = DownloadError(f"no image {uuid} on {self.source} ({url}: HTTP 404); "
                                    "check the UUID (`imgadm avail` lists what the server offers)")
                err.http_status = 404
                raise err from None
            raise _with_hint(e) from None
        try:
            manifest = parse_manifest(text, url)
        except ImageError as e:
            raise DownloadError(f"{e}; is {self.source} an image server (IMGAPI)?") from None
        if manifest.uuid != uuid:
            raise DownloadError(f"{url} returned the manifest of image {manifest.uuid}, not {uuid}")
        return manifest, text

    def _commit(self, staging: Path, manifest: ZoneImageManifest, source: str) -> CachedZoneImage:
        """Record the verified pair in ``staging`` and rename it to ``<root>/<uuid>``."""
        _write_record(staging / manifest.file_name, manifest, source=source)
        final = self.root / manifest.uuid
        os.rename(staging, final)
        return _load(final)

    def _incoming(self) -> Path:
        path = self.root / INCOMING
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _lock(self, uuid: str, timeout: float = LOCK_TIMEOUT):
        """One fetch/add per image at a time (``.incoming/<uuid>.lock``)."""
        lock = self._incoming() / f"{uuid}.lock"
        return exclusive(lock, timeout=timeout,
                         busy=f"another process has been fetching or adding image {uuid} for "
                              f"{timeout:.0f} s (lock {lock})")


def _load(entry: Path, *, assume_verified: bool = False) -> CachedZoneImage:
    manifest_path = entry / MANIFEST
    if not manifest_path.is_file():
        raise ImageError(f"{entry} has no {MANIFEST}: not a zone image folder")
    manifest = load_manifest(manifest_path)
    if manifest.uuid != entry.name:
        raise ImageError(f"{manifest_path} is the manifest of image {manifest.uuid}, but its "
                         f"folder is named {entry.name}")
    file_path = _image_file(entry, manifest)
    stat = file_path.stat()
    verified = assume_verified or _record_matches(entry, manifest, file_path, stat)
    return CachedZoneImage(uuid=manifest.uuid, name=manifest.name, version=manifest.version,
                           os=manifest.os, type=manifest.type, manifest_path=manifest_path,
                           file_path=file_path, size=stat.st_size, verified=verified)


def _image_file(entry: Path, manifest: ZoneImageManifest) -> Path:
    """The expected ``<uuid>.zfs.<ext>``, else the one other file in a folder made by hand."""
    expected = entry / manifest.file_name
    if expected.is_file():
        return expected
    others = sorted(p for p in entry.iterdir() if p.is_file() and p.name != MANIFEST
                    and not p.name.startswith(".") and not p.name.endswith(".part"))
    if len(others) == 1:
        return others[0]
    if not others:
        raise ImageError(f"{entry} has a manifest but no image file (expected {manifest.file_name})")
    raise ImageError(f"{entry} has several files ({', '.join(p.name for p in others)}); "
                     f"name the image file {manifest.file_name}")


def _record_matches(entry: Path, manifest: ZoneImageManifest, file_path: Path, stat) -> bool:
    try:
        record = json.loads((entry / RECORD).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("file") == file_path.name
            and record.get("sha1") == manifest.sha1 and record.get("size") == manifest.size
            and stat.st_size == manifest.size and record.get("mtime_ns") == stat.st_mtime_ns)


def _write_record(file_path: Path, manifest: ZoneImageManifest, *, source: str) -> None:
    stat = file_path.stat()
    record = {"file": file_path.name, "size": manifest.size, "sha1": manifest.sha1,
              "mtime_ns": stat.st_mtime_ns, "source": source,
              "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_atomic(file_path.parent / RECORD, (json.dumps(record, indent=2) + "\n").encode())


def _copy_hashing(src: Path, dst: Path, progress: Progress | None) -> str:
    """Copy ``src`` to ``dst`` and return the sha1 of what was written (one pass)."""
    h = hashlib.sha1()
    total, done = src.stat().st_size, 0
    if progress:
        progress.start(f"copying {src.name}", total)
    try:
        with open(src, "rb") as s, open(dst, "wb") as d:
            while chunk := s.read(_COPY_CHUNK):
                d.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress:
                    progress.update(done)
    except OSError as e:
        dst.unlink(missing_ok=True)
        full = " (the disk is full)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise ImageError(f"copying {src} to {dst.parent} failed{full}: {e}") from None
    if progress:
        progress.finish()
    return h.hexdigest()


class _Relabelled:
    """Progress whose download step says what is downloaded (the URL only ends in ``/file``)."""

    def __init__(self, progress: Progress, label: str):
        self.progress, self.label = progress, label

    def start(self, label: str, total: int | None) -> None:
        self.progress.start(self.label if label.startswith("downloading ") else label, total)

    def update(self, done: int) -> None:
        self.progress.update(done)

    def finish(self) -> None:
        self.progress.finish()


def _with_hint(err: DownloadError) -> DownloadError:
    if OFFLINE_HINT in str(err):
        return err
    new = type(err)(f"{err}\n{OFFLINE_HINT}")
    new.__dict__.update(err.__dict__)
    return new
