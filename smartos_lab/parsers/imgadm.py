"""``imgadm list`` and ``imgadm avail`` (imgadm(8)): tables and ``-j`` JSON.

Both commands print the same shapes (smartos-live src/img/lib/cli.js,
listImagesInfo): a table whose header is the upper-cased ``-o`` field names
(``-`` for a missing value), or with ``-j`` an array of image-info objects
``{"manifest": {...}, "zpool": ..., "source": ..., "clones": N}``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ParseError
from . import _table

_HEADER = re.compile(r"[A-Z][A-Z0-9_]*(?: +[A-Z][A-Z0-9_]*)*")
#: Columns of ``imgadm list``/``avail`` without ``-o`` on current SmartOS.
IMGADM_DEFAULT_FIELDS = ("uuid", "name", "version", "os", "type", "pub")


@dataclass(slots=True)
class ImgadmImage:
    """One image.  From a table only the listed columns are known (``fields``);
    from ``-j`` the whole ``manifest`` is there as well.

    ``published`` is the printed ``published``/``pub``/``published_at`` value.
    """

    uuid: str
    name: str | None
    version: str | None
    os: str | None
    type: str | None
    published: str | None
    zpool: str | None = None
    source: str | None = None
    clones: int | None = None
    manifest: dict[str, Any] | None = None
    fields: dict[str, str | None] = field(default_factory=dict)


def parse_imgadm_list(text: str, fields: Sequence[str] | str | None = None) -> list[ImgadmImage]:
    """Parse ``imgadm list`` output: a table (header read from the output), ``-H`` rows
    (pass the ``-o`` ``fields``; ``IMGADM_DEFAULT_FIELDS`` without ``-o``) or ``-j`` JSON."""
    return _parse("imgadm list", text, fields)


def parse_imgadm_avail(text: str, fields: Sequence[str] | str | None = None) -> list[ImgadmImage]:
    """Parse ``imgadm avail`` output (same forms as :func:`parse_imgadm_list`)."""
    return _parse("imgadm avail", text, fields)


def _parse(command: str, text: str, fields: Sequence[str] | str | None) -> list[ImgadmImage]:
    if text.lstrip().startswith("["):
        return _from_json(command, text)
    if fields is not None:
        names = _table.field_list(command, fields)
        rows = list(_table.content_lines(text))
        free_last = names[-1] == "description"
        table = _table.Table(command, " ".join(n.upper() for n in names), 0, free_last=free_last)
    else:
        rows = list(_table.content_lines(text))
        if not rows:
            raise ParseError(command, "empty output: expected a header line such as "
                             "'UUID  NAME  VERSION  OS  TYPE  PUB'")
        lineno, header = rows[0]
        if not _HEADER.fullmatch(header) or "UUID" not in header.split():
            raise ParseError(command, "expected a header of upper-case field names including "
                             "UUID", line=header, lineno=lineno)
        rows = rows[1:]
        table = _table.Table(command, header, lineno,
                             free_last=header.split()[-1] == "DESCRIPTION")
        names = [n.lower() for n in table.names]
    if "uuid" not in names:
        raise ParseError(command, "the field list must include uuid")
    return [_from_row(names, table.split(line, lineno)) for lineno, line in rows]


def _from_row(names: list[str], values: list[str]) -> ImgadmImage:
    row = {n: _table.dash_none(v) for n, v in zip(names, values)}
    published = row.get("published") or row.get("pub") or row.get("published_at") \
        or row.get("published_date")
    clones = row.get("clones")
    return ImgadmImage(row["uuid"] or "", row.get("name"), row.get("version"), row.get("os"),
                       row.get("type"), published, zpool=row.get("zpool"),
                       source=row.get("source"),
                       clones=int(clones) if clones and clones.isdigit() else None, fields=row)


def _from_json(command: str, text: str) -> list[ImgadmImage]:
    value = _table.load_json(command, text)
    if not isinstance(value, list):
        raise ParseError(command, f"expected a JSON array, got {type(value).__name__}")
    images = []
    for index, info in enumerate(value):
        manifest = info.get("manifest") if isinstance(info, dict) else None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("uuid"), str):
            raise ParseError(command, f"entry #{index} has no manifest with a uuid")
        clones = info.get("clones")
        if clones is not None and (isinstance(clones, bool) or not isinstance(clones, int)):
            raise ParseError(command, f"entry #{index}: clones is {clones!r}, expected a number")
        images.append(ImgadmImage(
            manifest["uuid"], manifest.get("name"), manifest.get("version"), manifest.get("os"),
            manifest.get("type"), manifest.get("published_at"), zpool=info.get("zpool"),
            source=info.get("source"), clones=clones, manifest=manifest))
    return images
