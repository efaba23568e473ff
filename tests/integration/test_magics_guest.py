"""The lab magics and panel in a real IPython InteractiveShell against the Linux test guest.

The test guest (a test substrate, not SmartOS) stands in for the lab: ``%%sh``
does not depend on SmartOS.  Everything below the magics - the Lab facade,
SSH and the console, streaming, interrupts, QEMU checkpoints - is the real code.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from smartos_lab.lab import Lab
from smartos_lab.notebook.cells import CellError
from smartos_lab.notebook.panel import LabPanel, lab_facts, panel_text
from tests.guest.strategy import TestGuestStrategy, booted_test_guest_lab
from tests.streams import Stamped

pytestmark = pytest.mark.guest

NAME = f"magics-{os.getpid()}"


@pytest.fixture(scope="module")
def lab():
    with booted_test_guest_lab(NAME) as lab:
        yield lab


@pytest.fixture(scope="module")
def ip(lab):
    shell = InteractiveShell.instance(history_load_length=0)
    shell.history_manager.enabled = False
    shell.run_line_magic("load_ext", "smartos_lab")
    assert shell.run_cell(f"%lab {NAME}").error_in_exec is None
    yield shell
    shell.run_line_magic("autocheckpoint", "off")
    InteractiveShell.clear_instance()


def test_lab_selects_the_running_lab_and_shows_it(ip, lab, capsys):
    assert ip.run_cell(f"%lab {NAME}").error_in_exec is None
    shown = capsys.readouterr().out
    assert f"lab {NAME}" in shown and "state:" in shown and "running" in shown
    assert ip.user_ns["lab"] is lab


def test_sh_streams_the_first_line_before_the_command_ends(ip, monkeypatch):
    out = Stamped()
    monkeypatch.setattr("sys.stdout", out)
    started = time.monotonic()
    assert ip.run_cell("%%sh\necho a; sleep 2; echo b").error_in_exec is None
    ended = time.monotonic()
    first = next(t for t, text in out.times if "a" in text)
    last = next(t for t, text in out.times if "b" in text)
    assert last - first > 1.5 and ended - first > 1.5, (started, first, last, ended)
    assert out.getvalue() == "a\nb\n"


def test_sh_over_the_console_streams_too(ip, monkeypatch):
    out = Stamped()
    monkeypatch.setattr("sys.stdout", out)
    assert ip.run_cell("%%sh --via console --out r\necho a; sleep 2; echo b").error_in_exec is None
    first = next(t for t, text in out.times if "a" in text)
    last = next(t for t, text in out.times if "b" in text)
    assert last - first > 1.5
    assert ip.user_ns["r"].transport == "console"


def test_a_failing_command_fails_the_cell_with_the_short_error(ip, capsys):
    err = ip.run_cell("%%sh\necho some output; echo no such thing >&2; exit 4").error_in_exec
    assert isinstance(err, CellError) and err.title == "exit status 4 (via ssh)"
    shown = capsys.readouterr().out
    assert "no such thing" in shown and "Traceback" not in shown


def test_an_interrupt_stops_the_guest_command_and_the_shell_stays_usable(ip, capsys):
    main = threading.main_thread().ident
    timer = threading.Timer(1.5, signal.pthread_kill, (main, signal.SIGINT))
    started = time.monotonic()
    timer.start()
    err = ip.run_cell("%%sh\necho started; sleep 60; echo never").error_in_exec
    took = time.monotonic() - started
    assert isinstance(err, CellError) and err.title == "interrupted", err
    assert took < 30
    capsys.readouterr()
    assert ip.run_cell("%%sh\necho usable; pgrep -x sleep || echo no-sleep-left").error_in_exec is None
    assert capsys.readouterr().out == "usable\nno-sleep-left\n"


def test_an_interrupt_over_the_console_leaves_it_usable_too(ip, capsys):
    main = threading.main_thread().ident
    timer = threading.Timer(1.5, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    err = ip.run_cell("%%sh --via console\nsleep 60; echo never").error_in_exec
    assert isinstance(err, CellError) and err.title == "interrupted", err
    capsys.readouterr()
    assert ip.run_cell("%%sh --via console\necho usable").error_in_exec is None
    assert capsys.readouterr().out == "usable\n"


def test_undo_brings_back_a_file_deleted_in_the_undone_cell(ip, capsys):
    assert ip.run_cell("%%sh\necho precious > /root/keep.txt").error_in_exec is None
    ip.run_line_magic("autocheckpoint", "on")
    try:
        assert ip.run_cell("%%sh\nrm /root/keep.txt").error_in_exec is None
        assert "[undo point undo-" in capsys.readouterr().err
        assert ip.run_cell("%undo").error_in_exec is None
        assert "undone: back to before 'rm /root/keep.txt'" in capsys.readouterr().out
        assert ip.run_cell("%%sh\ncat /root/keep.txt").error_in_exec is None
        assert capsys.readouterr().out == "precious\n"
    finally:
        ip.run_line_magic("autocheckpoint", "off")


def test_restore_of_an_unknown_checkpoint_names_the_ones_there_are(ip, capsys):
    assert ip.run_cell("%checkpoint magic-cp").error_in_exec is None
    err = ip.run_cell("%restore nosuch").error_in_exec
    assert "has no checkpoint 'nosuch'; type one of: " in str(err) and "%restore magic-cp" in str(err)


def test_the_panel_facts_say_running_over_ssh_with_the_checkpoints(lab, ip):
    ip.run_cell("%checkpoint panel-cp")
    facts = lab_facts(lab)
    assert (facts.name, facts.state, facts.transport) == (NAME, "running", "ssh")
    assert facts.accel in ("tcg", "kvm") and facts.accel_reason
    assert facts.uptime is not None and facts.uptime > 0
    assert "panel-cp" in [c.name for c in facts.checkpoints]
    assert f"lab {NAME}" in panel_text(facts) and "panel-cp" in panel_text(facts)


def test_the_panel_says_paused_while_the_guest_is_paused(lab):
    lab.machine.qmp.pause()
    try:
        facts = lab_facts(lab)
        assert facts.state == "paused" and facts.detail == "paused"
    finally:
        lab.machine.qmp.resume()
    assert lab_facts(lab).state == "running"


def test_the_panel_widget_saves_a_checkpoint_without_blocking_and_lists_it(lab):
    panel = LabPanel(lab)
    assert "running" in panel.header.value
    panel.name.value = "from-panel"
    started = time.monotonic()
    panel.save_button.click()
    assert time.monotonic() - started < 0.5                 # the click returns at once
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(getattr(row, "_checkpoint", None) == "from-panel" for row in panel.checkpoint_rows.children):
            break
        time.sleep(0.2)
    assert "saved checkpoint 'from-panel'" in panel.message.value
    assert any(getattr(row, "_checkpoint", None) == "from-panel" for row in panel.checkpoint_rows.children)


def test_only_the_newest_panel_of_a_lab_refreshes_on_its_timer(lab, monkeypatch):
    from smartos_lab.notebook import panel as panel_module
    monkeypatch.setattr(panel_module, "in_notebook", lambda: True)
    monkeypatch.setattr(panel_module, "display", lambda _widget: None)
    first = panel_module.panel(lab)
    second = panel_module.panel(lab)
    try:
        assert first._stop.is_set() and not second._stop.is_set()
        assert second._timer.is_alive()
    finally:
        second.stop()


def test_lab_follows_the_notebooks_lab_after_it_was_let_go_and_attached_again(ip, lab, capsys):
    """As notebooks 01, 01a and 06 do: ``lab.detach()`` (or a reboot), ``lab = Lab.up(NAME)``, then
    ``%lab NAME`` selects the new Lab and ``%%sh`` runs through it."""
    other = f"{NAME}-again"
    first = Lab.up(other, strategy=TestGuestStrategy(), progress=False)
    try:
        assert ip.run_cell(f"%lab {other}").error_in_exec is None
        first.detach()
        again = Lab.up(other, progress=False)
        assert again is not first
        assert ip.run_cell(f"%lab {other}").error_in_exec is None
        assert ip.magics_manager.registry["LabMagics"].lab is again
        capsys.readouterr()
        assert ip.run_cell("%%sh\necho through-the-new-lab").error_in_exec is None
        assert "through-the-new-lab" in capsys.readouterr().out
    finally:
        if Lab.attach(other).machine.alive():
            Lab.attach(other).down()
        assert ip.run_cell(f"%lab {NAME}").error_in_exec is None
