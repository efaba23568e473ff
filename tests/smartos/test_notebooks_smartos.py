"""Execute notebooks 01-06 (01a, 02a, ... included) against a real SmartOS.

Only when SMARTOS_LAB_IMAGE names one.

Each notebook runs top to bottom in a fresh python3 kernel with nbclient; a
cell that raises fails the test.  The labs get their own names
(``SMARTOS_LAB_NAME``/``SMARTOS_LAB_KERNEL_LAB``) in the session's private lab
home (tests/conftest.py), and are stopped afterwards whatever happened.

Per-cell limit: ``SMARTOS_LAB_NB_CELL_TIMEOUT`` seconds (default 10800: a first
boot with setup under TCG).  Executed copies are written to
``SMARTOS_LAB_NB_OUTPUT`` (default: ``$SMARTOS_LAB_ARTIFACTS/notebooks`` if set, else the
test's tmp dir) for reading afterwards, serial logs to ``$SMARTOS_LAB_ARTIFACTS/serial-logs``.

Prerequisites beyond the image: 03, 03a, 03b and 04a need a zone image and 05a an
LX image (Internet access from the lab, or SMARTOS_LAB_ZONE_IMAGES); 05 creates a
bhyve guest only on a host with nested KVM (otherwise it explains why not, which is what it checks then).
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from smartos_lab.errors import LabNotFound
from smartos_lab.lab import LabDir
from tests.smartos.artifacts import artifacts_dir, keep_serial_log

pytestmark = [pytest.mark.smartos, pytest.mark.slow, pytest.mark.timeout(12 * 3600)]

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("0[1-6]*-*.ipynb"))     # 01, 01a, ... 06
LAB = "nbtest"
KERNEL_LAB = "nbtest-kernel"


@pytest.fixture(scope="module", autouse=True)
def _lab_names_and_cleanup():
    old = {k: os.environ.get(k) for k in ("SMARTOS_LAB_NAME", "SMARTOS_LAB_KERNEL_LAB")}
    os.environ["SMARTOS_LAB_NAME"] = LAB
    os.environ["SMARTOS_LAB_KERNEL_LAB"] = KERNEL_LAB
    yield
    from smartos_lab.machine.registry import stop
    for name in (LAB, KERNEL_LAB):
        try:
            stop(name, timeout=30)
        except LabNotFound:
            pass
        keep_serial_log(LabDir(name).serial_log, f"notebooks-{name}")
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_on_real_smartos(path, tmp_path):
    import nbclient

    timeout = int(os.environ.get("SMARTOS_LAB_NB_CELL_TIMEOUT", "10800"))
    out_dir = Path(os.environ.get("SMARTOS_LAB_NB_OUTPUT") or artifacts_dir("notebooks") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(out_dir / path.name))
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors, errors
