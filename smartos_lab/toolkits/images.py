"""Images with imgadm (imgadm(8)): list, avail, import, and offline install.

Offline workshops: the lab caches image files on the host (vm-images/) and
copies them into the guest; this toolkit then installs them from those guest
paths with ``imgadm install -m <manifest> -f <file>``.
"""
from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError, ParseError
from ..machine.result import CommandResult
from ..parsers.imgadm import ImgadmImage, parse_imgadm_avail, parse_imgadm_list
from . import _cmd
from .base import Toolkit


class Images(Toolkit):
    """imgadm over a command runner (``lab.images``)."""

    def list(self, **filters: Any) -> list[ImgadmImage]:
        """Installed images: ``imgadm list [field=value ...]`` (the table, header included)."""
        out = self._ok(_cmd.cmd("imgadm", "list", *_cmd.key_values(filters, "filter")))
        return parse_imgadm_list(out.stdout)

    def manifests(self, **filters: Any) -> list[ImgadmImage]:
        """Installed images with their full manifests: ``imgadm list -j [field=value ...]``."""
        out = self._ok(_cmd.cmd("imgadm", "list", "-j", *_cmd.key_values(filters, "filter")))
        return parse_imgadm_list(out.stdout)

    def avail(self, **filters: Any) -> list[ImgadmImage]:
        """Images offered by the sources (needs network): ``imgadm avail [field=value ...]``.

        The table, not ``-j`` (the catalogue's manifests are megabytes); over a
        serial console filter it (``name="base-64"``): the full list is long.
        """
        out = self._ok(_cmd.cmd("imgadm", "avail", *_cmd.key_values(filters, "filter")),
                       timeout=max(self.timeout, 300.0))
        return parse_imgadm_avail(out.stdout)

    def get(self, uuid: str, *, pool: str | None = None) -> dict:
        """``imgadm get <uuid>``: the installed image's manifest and local info."""
        out = self._ok(_cmd.cmd("imgadm", "get", *_pool(pool), _cmd.uuid(uuid))).stdout
        try:
            value = json.loads(out)
        except json.JSONDecodeError as exc:
            raise ParseError("imgadm get", str(exc), line=out[:200]) from None
        if not isinstance(value, dict):
            raise ParseError("imgadm get", "expected a JSON object")
        return value

    def import_image(self, uuid: str, *, pool: str | None = None, source: str | None = None,
                     timeout: float = 1800.0) -> CommandResult:
        """``imgadm import -q [-P pool] [-S source] <uuid>`` (downloads: needs network)."""
        args = ["imgadm", "import", "-q", *_pool(pool)]
        if source is not None:
            args += ["-S", _cmd.no_control(source, "image source URL")]
        return self._ok(_cmd.cmd(*args, _cmd.uuid(uuid)), timeout=timeout)

    def install_local(self, manifest_path: str, file_path: str, *, pool: str | None = None,
                      timeout: float = 1800.0) -> CommandResult:
        """``imgadm install -q [-P pool] -m <manifest> -f <file>`` from files already in the guest."""
        _cmd.no_control(manifest_path, "manifest path")
        _cmd.no_control(file_path, "image file path")
        return self._ok(_cmd.cmd("imgadm", "install", "-q", *_pool(pool),
                                 "-m", manifest_path, "-f", file_path), timeout=timeout)

    def delete(self, uuid: str, *, pool: str | None = None) -> None:
        self._ok(_cmd.cmd("imgadm", "delete", *_pool(pool), _cmd.uuid(uuid)))


def _pool(pool: str | None) -> list[str]:
    if pool is None:
        return []
    if not isinstance(pool, str):
        raise ConfigError(f"pool must be a string, got {pool!r}")
    return ["-P", _cmd.pool_name(pool)]
