"""Test-wide set-up: every test session gets private lab home and run directories."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_lab_dirs():
    home = tempfile.mkdtemp(prefix="sl-home-")
    run = tempfile.mkdtemp(prefix="sl-", dir="/tmp")   # short: unix socket paths are limited
    old = {k: os.environ.get(k) for k in ("SMARTOS_LAB_HOME", "SMARTOS_LAB_RUNDIR")}
    os.environ["SMARTOS_LAB_HOME"] = home
    os.environ["SMARTOS_LAB_RUNDIR"] = run
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SMARTOS_LAB_IMAGE"):
        return
    skip = pytest.mark.skip(reason="needs a real SmartOS image: set SMARTOS_LAB_IMAGE")
    for item in items:
        if item.get_closest_marker("smartos") is not None:
            item.add_marker(skip)
