"""A notebook of the series without a SmartOS image, in a real IPython InteractiveShell.

The image cell stops with a formatted note (what to do, no traceback through
the package), and later cells say in one line that they wait for an image
instead of a NameError traceback; once an image is found, errors are ordinary
again.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from smartos_lab.notebook.images import WAITING, NoImage

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01-boot-smartos.ipynb"


@pytest.fixture
def ip(monkeypatch, tmp_path):
    monkeypatch.delenv("SMARTOS_LAB_IMAGE", raising=False)
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path / "empty-cache"))
    shell = InteractiveShell.instance(history_load_length=0)
    shell.history_manager.enabled = False
    yield shell
    InteractiveShell.clear_instance()


def _cells() -> list[str]:
    return [c.source for c in nbformat.read(str(NOTEBOOK), as_version=4).cells if c.cell_type == "code"]


def test_the_image_cell_is_a_note_and_the_next_cells_say_they_wait(ip, capsys):
    image_cell, boot_cell, *_ = _cells()
    err = ip.run_cell(image_cell).error_in_exec
    assert isinstance(err, NoImage)
    shown = capsys.readouterr().out
    assert "No SmartOS image for this notebook" in shown and "SMARTOS_LAB_IMAGE" in shown
    assert "Traceback" not in shown and "smartos_lab/" not in shown

    err = ip.run_cell(boot_cell).error_in_exec
    assert isinstance(err, NameError)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and "name 'IMAGE' is not defined" in lines[0] and WAITING in lines[0]


def test_once_an_image_is_found_errors_are_ordinary_again(ip, capsys, monkeypatch, tmp_path):
    ip.run_cell("from smartos_lab.notebook import require_image\nIMAGE = require_image()")
    pdir = tmp_path / "platform-20250101T000000Z"
    for part in ("i86pc/kernel/amd64/unix", "i86pc/amd64/boot_archive"):
        (pdir / part).parent.mkdir(parents=True, exist_ok=True)
        (pdir / part).write_bytes(b"\0")
    monkeypatch.setenv("SMARTOS_LAB_IMAGE", str(pdir))
    assert ip.run_cell("IMAGE = require_image()").error_in_exec is None
    capsys.readouterr()
    ip.run_cell("no_such_name")
    shown = capsys.readouterr().out
    assert WAITING not in shown and "Traceback" in shown
