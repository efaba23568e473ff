"""Keep what a real-SmartOS run leaves for reading afterwards (CI uploads it).

With ``SMARTOS_LAB_ARTIFACTS`` set (``.github/workflows/smartos.yml`` sets it), each
lab's serial log is copied to ``$SMARTOS_LAB_ARTIFACTS/serial-logs/<label>.log``
before the lab is destroyed, and executed notebooks go to
``$SMARTOS_LAB_ARTIFACTS/notebooks/`` unless ``SMARTOS_LAB_NB_OUTPUT`` says otherwise.
Without it nothing is kept (labs live in temporary homes).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ENV = "SMARTOS_LAB_ARTIFACTS"


def artifacts_dir(sub: str) -> Path | None:
    """``$SMARTOS_LAB_ARTIFACTS/<sub>`` (created), or None when the variable is unset."""
    root = os.environ.get(ENV, "").strip()
    if not root:
        return None
    path = Path(root) / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_serial_log(serial_log: Path, label: str) -> Path | None:
    """Copy a lab's serial log under the artifacts folder (a missing log is skipped)."""
    folder = artifacts_dir("serial-logs")
    if folder is None or not Path(serial_log).is_file():
        return None
    target = folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", label) + ".log")
    shutil.copyfile(serial_log, target)
    return target
