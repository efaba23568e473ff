"""The SmartOS release mirror: resolve ``latest`` or a dated release to URLs and checksums.

Layout (smartos-live ``tools/smartos-release``, ``tools/generate-sums`` and
the ``smartos-publish`` Makefile target)::

    <root>/latest                          text: /Joyent_Dev/public/SmartOS/<TS>
    <root>/<TS>/smartos-<TS>-USB.img.gz
    <root>/<TS>/smartos-<TS>.iso
    <root>/<TS>/platform-<branch>-<TS>.tgz  e.g. platform-release-20250724-20250724T001011Z.tgz
    <root>/<TS>/md5sums.txt, sha256sums.txt (since 2025-08)   lines "<hash> <file>"

The platform tarball's name carries the build branch, so it is read from the
checksum file rather than guessed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

from ..errors import ChecksumMismatch, ConfigError, DownloadError
from .checksums import Checksum, parse_sums
from .http_download import CONNECT_TIMEOUT, READ_TIMEOUT, fetch_text

DEFAULT_ROOT = "https://us-central.manta.mnx.io/Joyent_Dev/public/SmartOS/"
MIRROR_ENV = "SMARTOS_LAB_MIRROR"
TS_PATTERN = r"\d{8}T\d{6}Z"
KINDS = ("usb", "iso", "platform")
SUM_FILES = (("sha256", "sha256sums.txt"), ("md5", "md5sums.txt"))  # preferred first

OFFLINE_HINT = (
    "If this machine is offline or the mirror is unreachable, supply an image by hand: "
    "`smartos-lab up --image /path/to/smartos-<TS>-USB.img.gz` or "
    "`smartos-lab images add PATH` (a USB image or platform tgz downloaded elsewhere); "
    f"or set {MIRROR_ENV} to another mirror.")


def validate_ts(ts: str) -> str:
    """Return ``ts`` if it is a SmartOS build stamp like ``20250724T001011Z``."""
    if not isinstance(ts, str) or not re.fullmatch(TS_PATTERN, ts):
        raise ConfigError(f"{ts!r} is not a SmartOS release: expected 'latest' or a build "
                          "stamp YYYYMMDDTHHMMSSZ such as 20250724T001011Z")
    try:
        datetime.strptime(ts, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise ConfigError(f"{ts!r} is not a valid date and time (YYYYMMDDTHHMMSSZ)") from None
    return ts


def usb_name(ts: str) -> str:
    return f"smartos-{ts}-USB.img.gz"


def iso_name(ts: str) -> str:
    return f"smartos-{ts}.iso"


def platform_name_guess(ts: str) -> str:
    """The platform tarball name of a release built from its ``release-YYYYMMDD`` branch."""
    return f"platform-release-{ts[:8]}-{ts}.tgz"


def platform_name_from(names, ts: str) -> str | None:
    """The (non-debug) platform tarball among ``names``, if there is one."""
    pat = re.compile(r"platform-(?!debug-)[\w.+-]*-" + re.escape(ts) + r"\.tgz")
    found = sorted(n for n in names if pat.fullmatch(n))
    return found[0] if found else None


@dataclass(frozen=True)
class Release:
    """One release on the mirror: its stamp, directory URL, files and published checksums."""

    ts: str
    base_url: str                       # ends with "/"
    files: dict[str, str]               # kind ("usb", "iso", "platform") -> file name
    checksums: dict[str, Checksum] = field(default_factory=dict)   # file name -> checksum
    checksum_url: str | None = None     # the sums file the checksums came from

    def filename(self, kind: str) -> str:
        if kind not in self.files:
            raise ConfigError(f"unknown image kind {kind!r}: expected one of {', '.join(KINDS)}")
        return self.files[kind]

    def url(self, kind: str) -> str:
        return self.base_url + self.filename(kind)

    def checksum(self, kind: str) -> Checksum | None:
        return self.checksums.get(self.filename(kind))


class Mirror:
    """A SmartOS release mirror (default: the official Manta one, or ``$SMARTOS_LAB_MIRROR``)."""

    def __init__(self, root: str | None = None, *, timeout: float = READ_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT):
        root = root or os.environ.get(MIRROR_ENV) or DEFAULT_ROOT
        self.root = root if root.endswith("/") else root + "/"
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"Mirror({self.root!r})"

    def release_url(self, ts: str) -> str:
        return urljoin(self.root, validate_ts(ts) + "/")

    def latest_ts(self) -> str:
        """Read the ``latest`` object (``/Joyent_Dev/public/SmartOS/<TS>``)."""
        url = urljoin(self.root, "latest")
        text = self._get(url).strip()
        ts = text.rstrip("/").rsplit("/", 1)[-1]
        if not re.fullmatch(TS_PATTERN, ts):
            raise DownloadError(f"{url} does not name a release (got {text[:80]!r}); "
                                "is this a SmartOS mirror?")
        return ts

    def resolve(self, release: str = "latest") -> Release:
        """``"latest"`` or a build stamp -> Release with file names, URLs and checksums."""
        ts = self.latest_ts() if release == "latest" else validate_ts(release)
        base = self.release_url(ts)
        checksums, checksum_url = self._checksums(base)
        if checksum_url is None:
            self._get(base + "index.html", missing=f"no release {ts} on the mirror {self.root}")
        platform = platform_name_from(checksums, ts) or platform_name_guess(ts)
        files = {"usb": usb_name(ts), "iso": iso_name(ts), "platform": platform}
        return Release(ts, base, files, checksums, checksum_url)

    def _checksums(self, base: str) -> tuple[dict[str, Checksum], str | None]:
        for algo, name in SUM_FILES:
            url = base + name
            try:
                text = self._get(url, missing="")
            except _Missing:
                continue
            return parse_sums(text, algo), url
        return {}, None

    def _get(self, url: str, missing: str | None = None) -> str:
        """Fetch a text object; a 404 raises _Missing if ``missing`` is given (its text
        becomes the error when non-empty), else DownloadError with the offline hint."""
        try:
            return fetch_text(url, timeout=self.timeout, connect_timeout=self.connect_timeout)
        except ChecksumMismatch:
            raise
        except DownloadError as e:
            if missing is not None and getattr(e, "http_status", None) == 404:
                if missing:
                    raise DownloadError(f"{missing} ({url}: HTTP 404)") from None
                raise _Missing(url) from None
            raise with_hint(e) from None


class _Missing(Exception):
    pass


def with_hint(err: DownloadError) -> DownloadError:
    """The same error with :data:`OFFLINE_HINT` appended (once)."""
    if OFFLINE_HINT in str(err):
        return err
    new = type(err)(f"{err}\n{OFFLINE_HINT}")
    new.__dict__.update(err.__dict__)
    return new
