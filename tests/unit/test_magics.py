"""The lab magics in a real IPython InteractiveShell, with stand-ins where no guest is needed.

Commands run for real in a local ``/bin/sh`` that streams its output piece by
piece (:class:`StreamingShell`, a transport stand-in, not a guest); ``%%zone``
and ``%%dtrace`` get recorded real SmartOS output (``vmadm list``, DTrace Guide
and SmartOS FAQ captures) through the real toolkits and parsers.  The magics
against the test guest are in tests/integration/test_magics_guest.py.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from smartos_lab.errors import CheckpointError
from smartos_lab.machine.checkpoints import CheckpointInfo
from smartos_lab.machine.result import CommandResult
from smartos_lab.notebook import magics as magics_module
from smartos_lab.notebook.cells import CellError
from smartos_lab.toolkits.dtrace import DTrace
from smartos_lab.toolkits.zones import Zones
from tests.streams import Stamped

from ._parser_fixtures import fixture
from ._runners import RecordingRunner


class StreamingShell:
    """``lab.sh`` for a local /bin/sh: output handed to ``on_output`` as it is read."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.calls: list[tuple[str, str | None]] = []

    def sh(self, command: str, timeout: float = 60.0, *, via=None, on_output=None) -> CommandResult:
        self.calls.append((command, via))
        started = time.monotonic()
        proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=self.cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        out = {"stdout": "", "stderr": ""}
        while sel.get_map():
            for key, _ in sel.select(timeout):
                data = os.read(key.fileobj.fileno(), 4096)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                text = data.decode()
                out[key.data] += text
                if on_output:
                    on_output(text, key.data)
        return CommandResult(command, proc.wait(), out["stdout"], out["stderr"],
                             time.monotonic() - started, transport="local")


@dataclass
class FakeLab:
    """The parts of a Lab the magics use; checkpoints kept in memory (QEMU's are tested elsewhere)."""

    root: Path
    name: str = "unit"
    saved: dict[str, CheckpointInfo] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        self.shell = StreamingShell(self.root)
        self.sh = self.shell.sh
        self.machine = SimpleNamespace(alive=lambda: True)
        self.lab_dir = SimpleNamespace(disks_dir=self.root)
        self.config = SimpleNamespace(memory_mib=64)
        self.zones = Zones(RecordingRunner({"vmadm list": (fixture("vmadm/list_headnode_smartos.txt"), 0)}))
        self.dtrace_runner = RecordingRunner()
        self.dtrace = DTrace(self.dtrace_runner)

    def checkpoint(self, name: str) -> float:
        self.calls.append(("checkpoint", name))
        self.saved[name] = CheckpointInfo(name, 3 << 20, datetime.now(timezone.utc), 1.0)
        return 0.25

    def restore(self, name: str) -> float:
        if name not in self.saved:
            raise CheckpointError(f"no checkpoint {name!r}")
        self.calls.append(("restore", name))
        return 0.05

    def delete_checkpoint(self, name: str) -> None:
        self.calls.append(("delete", name))
        del self.saved[name]

    def checkpoints(self) -> list[CheckpointInfo]:
        return list(self.saved.values())


@pytest.fixture
def ip(monkeypatch):
    monkeypatch.delenv(magics_module.LAB_ENV, raising=False)
    monkeypatch.setattr(magics_module, "_told_sh", False)
    shell = InteractiveShell.instance(history_load_length=0)
    shell.history_manager.enabled = False
    yield shell
    InteractiveShell.clear_instance()


@pytest.fixture
def loaded(ip, capsys):
    ip.run_line_magic("load_ext", "smartos_lab")
    capsys.readouterr()
    return ip


@pytest.fixture
def lab(loaded, tmp_path):
    lab = FakeLab(tmp_path)
    loaded.magics_manager.registry["LabMagics"]._use(lab)
    return lab


def run(ip, cell: str):
    """Run a cell; return (error, output)."""
    result = ip.run_cell(cell)
    return result.error_in_exec


# ---------------------------------------------------------------- loading

def test_load_ext_replaces_the_host_sh_and_says_so_once(ip, capsys):
    ip.run_line_magic("load_ext", "smartos_lab")
    assert "now run in the lab's global zone" in capsys.readouterr().out
    cells = ip.magics_manager.magics["cell"]
    assert cells["sh"].__self__.__class__.__name__ == "LabMagics"
    assert "gz" in cells
    ip.run_line_magic("reload_ext", "smartos_lab")
    assert "global zone" not in capsys.readouterr().out


# ---------------------------------------------------------------- %%sh

def test_sh_streams_output_into_the_cell_as_it_is_printed(lab, loaded, monkeypatch):
    out = Stamped()
    monkeypatch.setattr("sys.stdout", out)
    started = time.monotonic()
    assert run(loaded, "%%sh\necho a; sleep 1; echo b") is None
    ended = time.monotonic()
    first = next(t for t, text in out.times if "a" in text)
    assert first - started < ended - started - 0.8
    assert out.getvalue().startswith("a\nb\n")


def test_sh_stderr_goes_to_the_cells_stderr_and_out_keeps_the_result(lab, loaded, capsys):
    assert run(loaded, "%%sh --out r --via ssh\necho out; echo err >&2") is None
    captured = capsys.readouterr()
    assert captured.out == "out\n" and captured.err == "err\n"
    result = loaded.user_ns["r"]
    assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 0)
    assert lab.shell.calls[-1] == ("echo out; echo err >&2\n", "ssh")


def test_a_failing_command_fails_the_cell_with_command_status_and_stderr_tail(lab, loaded, capsys):
    err = run(loaded, "%%sh\necho working; for i in 1 2 3 4 5 6 7; do echo e$i >&2; done; exit 3")
    assert isinstance(err, CellError)
    shown = capsys.readouterr().out
    assert "exit status 3 (via local)" in shown and "command: echo working" in shown
    assert "e7" in shown and "e2" not in shown.split("stderr:")[1]
    assert "Traceback" not in shown and "File " not in shown


def test_the_sh_alias_gz_runs_in_the_lab_too(lab, loaded, capsys):
    assert run(loaded, "%%gz\necho gz") is None
    assert capsys.readouterr().out == "gz\n"


# ---------------------------------------------------------------- bad input: one line each

@pytest.mark.parametrize("cell, says", [
    ("%%zone\nls", "%%zone: name the zone; type: %%zone ALIAS_OR_UUID"),
    ("%%dtrace --for banana\nBEGIN { exit(0); }", "'banana' is not a duration"),
    ("%restore nope", "has no checkpoint 'nope'; type one of:"),
    ("%%sh --via tcp\nls", "invalid choice: 'tcp'"),
    ("%%sh --out 1x\nls", "is not a Python variable name"),
    ("%checkpoint", "required: name; type: %checkpoint NAME"),
    ("%checkpoint bad/name", "invalid checkpoint name"),
    ("%autocheckpoint maybe", "'maybe' is not on or off"),
    ("%%sh\n   ", "the cell is empty"),
])
def test_bad_input_is_one_line_of_what_is_wrong_and_what_to_type(lab, loaded, cell, says):
    err = run(loaded, cell)
    assert isinstance(err, UsageError), err
    assert says in str(err) and "\n" not in str(err)
    assert "type" in str(err)
    assert lab.shell.calls == []


@pytest.mark.parametrize("cell", ["%%sh\nls", "%%zone z\nls", "%%dtrace\nBEGIN{}", "%checkpoint x",
                                  "%restore x", "%checkpoints", "%undo"])
def test_magics_with_no_lab_selected_say_to_select_one(loaded, cell):
    err = run(loaded, cell)
    assert isinstance(err, UsageError) and "no lab selected; type %lab NAME" in str(err)


def test_lab_without_a_running_lab_or_an_image_says_what_to_do(loaded, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTOS_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SMARTOS_LAB_IMAGE", raising=False)
    err = run(loaded, "%lab")
    assert isinstance(err, CellError) and err.title == "no lab selected"
    assert any("SMARTOS_LAB_IMAGE" in line for line in err.lines)
    err = run(loaded, "%lab workshop")
    assert isinstance(err, CellError) and "no SmartOS image" in err.title
    assert "Traceback" not in capsys.readouterr().out
    err = run(loaded, "%lab ../x")
    assert isinstance(err, UsageError) and "%lab" in str(err)


def test_lab_follows_the_lab_this_process_holds_now_not_one_it_let_go(loaded, monkeypatch, tmp_path):
    """``lab.detach()`` (or ``down()``) then ``lab = Lab.up(NAME)`` makes a new Lab: ``%lab NAME``
    selects it (the notebooks do this after a reboot); the same Lab again keeps its undo points."""
    from smartos_lab import lab as lab_module
    magics = loaded.magics_manager.registry["LabMagics"]
    let_go, held = FakeLab(tmp_path), FakeLab(tmp_path)
    magics._use(let_go)
    monkeypatch.setattr(lab_module, "lookup",
                        lambda name: lab_module.LabLookup(name, lab_module.LabState.RUNNING))
    monkeypatch.setattr(lab_module.Lab, "attach", classmethod(lambda cls, name: held))
    assert magics.select("unit") is held and magics.lab is held
    undo_points = magics.history = SimpleNamespace(lab=held, points=[])
    assert magics.select("unit") is held and magics.history is undo_points


# ---------------------------------------------------------------- %%zone (recorded vmadm list)

def test_zone_runs_the_cell_through_zlogin_by_alias(lab, loaded):
    run(loaded, "%%zone redis0\necho in-zone")           # no zlogin on this host: only the command counts
    command, _via = lab.shell.calls[-1]
    assert command == "zlogin 384de5e9-c9d9-4382-9dd3-949ab410be45 'echo in-zone'"


def test_an_unknown_zone_lists_the_zones_there_are(lab, loaded):
    err = run(loaded, "%%zone nosuch\nls")
    assert isinstance(err, UsageError)
    assert "no zone 'nosuch'" in str(err) and "redis0 (384de5e9-c9d9-4382-9dd3-949ab410be45)" in str(err)


# ---------------------------------------------------------------- %%dtrace (recorded real output)

def test_dtrace_shows_each_aggregation_as_a_table_and_a_plot(lab, loaded, monkeypatch):
    shown = []
    monkeypatch.setattr("smartos_lab.notebook.dtrace_cell.display", shown.append)
    lab.dtrace_runner.replies["dtrace"] = (fixture("dtrace/smartos_faq_quantize_tar.txt"), 0)
    program = "io:::start\n{\n  @size[execname] = quantize(args[0]->b_bcount);\n}"
    assert run(loaded, f"%%dtrace --for 2s --out d\n{program}") is None
    table, image = shown
    assert table.rows[0][0] == "tar" and image.data.startswith(b"\x89PNG")
    result = loaded.user_ns["d"]
    assert result.aggregation().histograms[0].total > 0
    assert any("tick-2s" in c or "tick-2000ms" in c for c in lab.dtrace_runner.commands)


def test_dtrace_bar_chart_for_counts(lab, loaded, monkeypatch):
    shown = []
    monkeypatch.setattr("smartos_lab.notebook.dtrace_cell.display", shown.append)
    lab.dtrace_runner.replies["dtrace"] = (fixture("dtrace/guide_count_writesbycmd.txt"), 0)
    assert run(loaded, "%%dtrace --plot bar\nsyscall::write:entry { @counts[execname] = count(); }") is None
    table, image = shown
    assert ["find", "15"] in table.rows and image.data.startswith(b"\x89PNG")


def test_a_d_compile_error_is_dtraces_own_message_not_a_traceback(lab, loaded, capsys):
    lab.dtrace_runner.replies["dtrace"] = (fixture("dtrace/guide_compile_error_printf.txt"), 1)
    err = run(loaded, "%%dtrace\nsyscall::write:entry\n{\n  printf(\"%s\", arg0);\n}")
    assert isinstance(err, CellError) and err.title == "DTrace could not compile the cell"
    shown = capsys.readouterr().out
    assert "failed to compile script trussrw.d: line 4" in shown
    assert "argument #2 is incompatible with conversion #1 prototype" in shown
    assert "Traceback" not in shown


# ---------------------------------------------------------------- checkpoints and undo

def test_checkpoint_restore_and_list(lab, loaded, capsys):
    assert run(loaded, "%checkpoint before-zfs") is None
    assert "saved checkpoint 'before-zfs' in 0.2 s" in capsys.readouterr().out
    assert run(loaded, "%restore before-zfs") is None
    assert "restored checkpoint 'before-zfs'" in capsys.readouterr().out
    listing = loaded.run_cell("%checkpoints").result
    assert listing.rows[0][0] == "before-zfs"


def test_autocheckpoint_saves_an_undo_point_before_each_cell_and_keeps_two(lab, loaded, capsys):
    run(loaded, "%autocheckpoint on")
    assert "autocheckpoint is on" in capsys.readouterr().out
    for i in range(3):
        assert run(loaded, f"%%sh\ntouch f{i}") is None
    err = capsys.readouterr().err
    assert "[undo point undo-1: 0.2 s, 3.0 MiB state, disk files +" in err
    assert sorted(lab.saved) == ["undo-2", "undo-3"]
    assert ("delete", "undo-1") in lab.calls


def test_undo_restores_the_newest_undo_point_and_then_the_one_before(lab, loaded, capsys):
    run(loaded, "%autocheckpoint on")
    run(loaded, "%%sh\ntouch one")
    run(loaded, "%%sh\ntouch two")
    capsys.readouterr()
    assert run(loaded, "%undo") is None
    assert "undone: back to before 'touch two'" in capsys.readouterr().out
    assert run(loaded, "%undo") is None
    assert [c for c in lab.calls if c[0] == "restore"] == [("restore", "undo-2"), ("restore", "undo-1")]
    err = run(loaded, "%undo")
    assert isinstance(err, CellError) and err.title == "nothing to undo"


def test_an_undo_point_is_refused_when_disk_space_is_short_and_the_cell_does_not_run(lab, loaded, capsys):
    lab.config.memory_mib = 1 << 40             # more RAM state than any disk here holds
    run(loaded, "%autocheckpoint on")
    err = run(loaded, "%%sh\ntouch never")
    assert isinstance(err, CellError) and "not enough disk space" in err.title
    assert any("%autocheckpoint off" in line for line in err.lines)
    assert lab.shell.calls == [] and lab.saved == {}
    run(loaded, "%autocheckpoint off")
    assert run(loaded, "%%sh\ntrue") is None


def test_undo_adopts_undo_points_already_in_the_lab(lab, loaded):
    lab.checkpoint("undo-7")
    run(loaded, "%autocheckpoint on")
    run(loaded, "%%sh\ntrue")
    assert "undo-8" in lab.saved


def test_magic_lines_expand_python_variables_as_the_notebooks_use_them(lab, loaded):
    loaded.user_ns["uuid"] = "384de5e9-c9d9-4382-9dd3-949ab410be45"
    run(loaded, "%%zone {uuid}\nps -e | wc -l")
    assert lab.shell.calls[-1][0] == "zlogin 384de5e9-c9d9-4382-9dd3-949ab410be45 'ps -e | wc -l'"
    loaded.user_ns["NAME"] = "before-zfs"
    assert run(loaded, "%checkpoint $NAME") is None
    assert ("checkpoint", "before-zfs") in lab.calls


def test_a_long_lab_error_is_cut_to_a_few_lines_and_kept_whole(lab, loaded, capsys):
    from smartos_lab.errors import CommandTimeout

    def times_out(command, timeout=60.0, *, via=None, on_output=None):
        raise CommandTimeout(f"command did not finish within {timeout:g} s and was interrupted: {command}",
                             tail="\n".join(f"console line {i}" for i in range(40)), log_path="/x/serial.log")
    lab.sh = times_out
    err = run(loaded, "%%sh --timeout 2\nsleep 10")
    assert isinstance(err, CellError)
    assert err.title == "CommandTimeout: command did not finish within 2 s and was interrupted: sleep 10"
    assert len(err.lines) == 16 and "more lines (all in sys.last_value.error)" in err.lines[-1]
    assert "console line 39" in str(err.error)
    import sys
    assert sys.last_value is err
