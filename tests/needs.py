"""Tools a test needs: skipped on a developer's machine without them, a failure in CI.

``./setup.sh test`` installs every one of them, so in CI (``CI`` set) a missing tool is a
broken set-up, not a reason to skip.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail with it in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; ./setup.sh test installs it, so CI must have it", pytrace=False)
    pytest.skip(reason)


def module(name: str) -> ModuleType:
    """Import ``name``, or :func:`missing`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"needs the Python module {name}")
        raise           # not reached
