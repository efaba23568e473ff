"""Where smartos-lab keeps things on the host.

- cache (``SMARTOS_LAB_CACHE``, default ``~/.cache/smartos-lab``): downloaded images,
  the test guest; safe to delete, never committed.
- home (``SMARTOS_LAB_HOME``, default ``~/.local/share/smartos-lab``): per-lab
  state that must survive restarts: ``labs/<name>/`` with disks, keys, password.
- run root (``SMARTOS_LAB_RUNDIR``, default ``$XDG_RUNTIME_DIR/smartos-lab`` or
  ``/tmp/smartos-lab-<uid>``): one private (0700) directory per running lab
  with the QMP and console sockets and the pid file.  Kept short because unix
  socket paths are limited to 107 bytes.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("SMARTOS_LAB_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "smartos-lab"


def home_dir() -> Path:
    env = os.environ.get("SMARTOS_LAB_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "smartos-lab"


def run_root() -> Path:
    env = os.environ.get("SMARTOS_LAB_RUNDIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "smartos-lab"
    return Path(f"/tmp/smartos-lab-{os.getuid()}")


def labs_dir() -> Path:
    return home_dir() / "labs"


def images_cache_dir() -> Path:
    return cache_dir() / "images"
