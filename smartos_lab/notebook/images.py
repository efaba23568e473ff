"""The SmartOS image a notebook boots: ``$SMARTOS_LAB_IMAGE`` or the newest cached one."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError

NO_IMAGE_HELP = """\
No SmartOS image for this notebook.  Notebooks 01-06 boot a real SmartOS; give them one of:

  * export SMARTOS_LAB_IMAGE=/path/to/smartos-<TS>-USB.img.gz   (or a platform-<TS>.tgz,
    a smartos-<TS>.iso, or a build's output/platform-<TS>/ folder), then restart the
    notebook kernel;
  * put it in the cache:  smartos-lab images add /path/to/file   (offline workshops), or
    ImageCache().add(path) from Python (see 00-start-here.ipynb);
  * download the latest release (needs Internet; the USB image is about 1.9 GB once
    decompressed): ImageCache().fetch("latest") in 00-start-here.ipynb.

The USB image boots through its own loader; a platform tarball, folder or ISO is booted
directly (its unix and boot_archive are copied out; an ISO's loader is not used)."""


@dataclass(frozen=True)
class NotebookImage:
    """The SmartOS image a notebook boots: pass ``str(path)`` as ``Lab.up(image=...)``."""

    path: Path
    kind: str                   # "usb" | "iso" | "platform" | "platform-dir"
    release: str | None
    source: str                 # "SMARTOS_LAB_IMAGE" or "cache"

    def __str__(self) -> str:
        return f"{self.path} ({self.kind}, release {self.release or 'unknown'}, from {self.source})"


def find_image(env: Mapping[str, str] | None = None, cache=None) -> NotebookImage | None:
    """``$SMARTOS_LAB_IMAGE`` if set, else the newest bootable image in the cache, else None.

    A ``SMARTOS_LAB_IMAGE`` that is not a usable SmartOS image raises
    :class:`ImageError` (a typo should not silently boot something else).
    """
    env = os.environ if env is None else env
    named = env.get("SMARTOS_LAB_IMAGE", "").strip()
    if named:
        from ..images.local import identify
        info = identify(named)
        return NotebookImage(info.path, info.kind, info.release, "SMARTOS_LAB_IMAGE")
    if cache is None:
        from ..images.cache import ImageCache
        cache = ImageCache()
    for image in cache.list():                       # newest release first, then usb, platform, iso
        if Path(image.path).exists():
            return NotebookImage(Path(image.path), image.kind, image.release, "cache")
    return None


def require_image(env: Mapping[str, str] | None = None, cache=None) -> NotebookImage:
    """Like :func:`find_image` but raise :class:`ImageError` explaining what to do when there is none."""
    image = find_image(env, cache)
    if image is None:
        raise ImageError(NO_IMAGE_HELP)
    return image
