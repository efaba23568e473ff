"""The SmartOS image a notebook boots: ``$SMARTOS_LAB_IMAGE`` or the newest cached one."""
from __future__ import annotations

import os
import sys
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


class NoImage(ImageError):
    """No SmartOS image: in Jupyter a formatted note (what to do), not a traceback."""

    def _render_traceback_(self) -> list[str]:
        first, *rest = str(self).split("\n")
        return [f"\x1b[1;33m{first}\x1b[0m", *rest]


WAITING = "this cell waits for a SmartOS image (see the note of the image cell above)"


def require_image(env: Mapping[str, str] | None = None, cache=None) -> NotebookImage:
    """Like :func:`find_image` but raise :class:`NoImage` (an :class:`ImageError`) explaining
    what to do when there is none.

    In IPython, until an image is found, a cell failing on a name that the
    notebook defines later (``NameError: IMAGE``, ``lab``) says in one line that it
    waits for an image instead of showing a traceback.
    """
    image = find_image(env, cache)
    if image is None:
        _name_errors_wait_for_image(True)
        raise NoImage(NO_IMAGE_HELP)
    _name_errors_wait_for_image(False)
    return image


def _name_errors_wait_for_image(on: bool) -> None:
    shell = _ipython()
    if shell is None:
        return
    ours = getattr(shell, "_smartos_lab_waiting", False)
    if on and not ours:
        shell.set_custom_exc((NameError,), _waiting_for_image)
        shell._smartos_lab_waiting = True
    elif not on and ours:
        shell.set_custom_exc((), None)
        shell._smartos_lab_waiting = False


def _waiting_for_image(shell, etype, value, tb, tb_offset=None) -> list[str]:
    stb = [f"\x1b[33m{etype.__name__}: {value} -- {WAITING}\x1b[0m"]
    shell._showtraceback(etype, value, stb)
    return stb


def _ipython():
    if "IPython" not in sys.modules:
        return None
    return sys.modules["IPython"].get_ipython()
