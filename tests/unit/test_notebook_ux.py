"""smartos_lab.notebook: exercises, progress, tables, image choice and widget builders.

Exercise checks run real commands in a local /bin/sh (a command runner like the
lab's, not SmartOS).
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from smartos_lab.errors import ImageError
from smartos_lab.notebook import (
    CheckpointActions,
    Exercise,
    Step,
    StepDisplay,
    StepLog,
    checkpoint_buttons,
    console_text,
    console_widget,
    figure_image,
    find_image,
    in_notebook,
    published_example,
    require_image,
    step_display,
    table,
)
from smartos_lab.steps import StepEvent, Steps

from ._runners import LocalShell


@pytest.fixture
def sh(tmp_path):
    return LocalShell(tmp_path)


# ---------------------------------------------------------------- Step checks

def test_a_check_that_exits_0_passes_with_the_success_message(sh):
    step = Step("make a file", "Create `a.txt`.", check="true", success="Nice.")
    outcome = step.run_check(sh)
    assert outcome.passed and outcome.message == "Nice."
    assert outcome.result.exit_status == 0


def test_a_passing_check_without_a_success_message_names_the_step(sh):
    assert Step("make a file", "", check="true").run_check(sh).message == "Done: make a file"


def test_a_failing_check_says_not_yet_with_the_status_the_output_and_the_hint(sh):
    step = Step("make a file", "Create `a.txt`.", check="test -f a.txt || { echo missing a.txt; exit 3; }",
                hint="touch a.txt")
    outcome = step.run_check(sh)
    assert not outcome.passed
    assert "exited with status 3" in outcome.message
    assert "missing a.txt" in outcome.message
    assert outcome.hint == "touch a.txt"
    assert str(outcome).endswith("Hint: touch a.txt")
    assert "Hint" in outcome._repr_html_()


def test_a_custom_failure_message_replaces_the_default(sh):
    outcome = Step("x", "", check="exit 1", failure="The pool does not exist yet.").run_check(sh)
    assert outcome.message == "The pool does not exist yet."


def test_a_check_that_times_out_fails_instead_of_raising(sh):
    outcome = Step("slow", "", check="sleep 5", timeout=0.3, hint="be patient").run_check(sh)
    assert not outcome.passed
    assert outcome.message == "Not yet: the check did not finish within 0.3 s (sleep 5)"
    assert outcome.hint == "be patient"


def test_a_step_needs_a_check_command():
    with pytest.raises(ValueError):
        Step("x", "", check="  ")


def test_a_single_solution_string_is_one_command():
    step = Step("x", "", check="true", solution="touch a.txt")
    assert step.solution == ("touch a.txt",)
    assert step.solution_text() == "touch a.txt"


# ---------------------------------------------------------------- solving

def test_solve_runs_the_solution_commands_in_order_then_the_check(sh, tmp_path):
    step = Step("log", "", check="test \"$(cat log)\" = 'one two'",
                solution=["printf one > log", "printf ' two' >> log"])
    report = step.solve(sh)
    assert [r.command for r in report.results] == ["printf one > log", "printf ' two' >> log"]
    assert report.outcome.passed
    assert (tmp_path / "log").read_text() == "one two"
    assert sh.commands[-1] == step.check


def test_solve_stops_at_the_first_failing_solution_command(sh, tmp_path):
    step = Step("x", "", check="test -f c", solution=["touch a", "false", "touch c"])
    report = step.solve(sh)
    assert [r.command for r in report.results] == ["touch a", "false"]
    assert not report.outcome.passed
    assert "`false` failed with exit status 1" in report.outcome.message
    assert not (tmp_path / "c").exists()


def _three_steps() -> list[Step]:
    return [
        Step("pool", "", check="test -d pool", solution="mkdir pool"),
        Step("dataset", "", check="test -d pool/ds", solution="mkdir pool/ds && echo ds >> order"),
        Step("file", "", check="test -f pool/ds/f", solution="touch pool/ds/f && echo f >> order"),
    ]


def test_exercise_solve_fast_forwards_every_unsolved_step_up_to_the_one_asked(sh, tmp_path):
    (tmp_path / "pool").mkdir()                   # step 0 already done by the learner
    exercise = Exercise("zfs", _three_steps(), sh)
    reports = exercise.solve(2)
    assert [r.outcome.passed for r in reports] == [True, True]
    assert (tmp_path / "order").read_text().split() == ["ds", "f"]
    assert "mkdir pool" not in sh.commands        # a passing step is not solved again
    assert exercise.passed == {0, 1, 2}
    assert exercise.progress() == "3/3 steps done"


def test_exercise_solve_does_nothing_when_the_step_already_passes(sh, tmp_path):
    (tmp_path / "pool" / "ds").mkdir(parents=True)
    (tmp_path / "pool" / "ds" / "f").touch()
    exercise = Exercise("zfs", _three_steps(), sh)
    assert exercise.solve(2) == []
    assert sh.commands == ["test -f pool/ds/f"]


def test_exercise_solve_skips_steps_recorded_as_passed_even_if_undone_since(sh, tmp_path):
    steps = [Step("stop", "", check="test -f stopped", solution="touch stopped"),
             Step("start", "", check="test -f started", solution="touch started")]
    exercise = Exercise("zone", steps, sh)
    (tmp_path / "stopped").touch()
    assert exercise.check(0).passed
    (tmp_path / "stopped").unlink()               # starting again undoes "stopped"
    reports = exercise.solve(1)
    assert [r.results[0].command for r in reports] == ["touch started"]
    assert exercise.passed == {0, 1}


def test_exercise_solve_stops_at_a_step_whose_solution_fails(sh):
    steps = _three_steps()
    steps[1] = Step("dataset", "", check="test -d pool/ds", solution="exit 7")
    exercise = Exercise("zfs", steps, sh)
    reports = exercise.solve(2)
    assert len(reports) == 2 and not reports[-1].outcome.passed
    assert exercise.passed == {0}
    assert not any(c.startswith("touch pool/ds/f") for c in sh.commands)   # step 2 not solved


def test_exercise_check_records_and_forgets_passes(sh, tmp_path):
    exercise = Exercise("zfs", _three_steps(), sh)
    assert not exercise.check(0).passed and exercise.passed == set()
    (tmp_path / "pool").mkdir()
    assert exercise.check(0).passed and exercise.passed == {0}
    (tmp_path / "pool").rmdir()
    assert not exercise.check(0).passed and exercise.passed == set()
    assert "[ ] 0. pool" in str(exercise)


def test_exercise_step_numbers_are_checked(sh):
    exercise = Exercise("zfs", _three_steps(), sh)
    with pytest.raises(IndexError):
        exercise.check(3)
    with pytest.raises(ValueError):
        Exercise("empty", [], sh)


def test_exercise_show_outside_jupyter_prints_the_steps(sh, capsys):
    Exercise("zfs", _three_steps(), sh).show()
    out = capsys.readouterr().out
    assert "zfs (0/3 steps done)" in out and ".solve(i)" in out


# ---------------------------------------------------------------- progress

def _events(*calls) -> list[StepEvent]:
    """Run ``calls`` (method name, args) on a Steps reporter with a fake clock; return its events."""
    clock = Clock()
    events: list[StepEvent] = []
    steps = Steps("up workshop", [events.append], clock=clock)
    for call in calls:
        if isinstance(call, (int, float)):
            clock.now += call
        else:
            getattr(steps, call[0])(*call[1:])
    return events


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _log(events) -> StepLog:
    log = StepLog()
    for event in events:
        log(event)
    return log


def test_step_log_times_each_step_and_highlights_the_current():
    log = _log(_events(("step", "starting QEMU"), 2.0, ("step", "kernel started"),
                       ("info", "SunOS Release 5.11"), 5.0))
    assert log.current.name == "kernel started" and log.state == "working"
    lines = log.lines()
    assert lines[0] == "  [    0.0s] starting QEMU  (2.0 s)"
    assert lines[1] == "> [    2.0s] kernel started"
    assert lines[2].strip() == "SunOS Release 5.11"
    page = log.html()
    assert "working, 2.0 s" in page and "&#9654; kernel started" in page


def test_the_finished_event_ends_the_log_whatever_its_message_says():
    log = _log(_events(("step", "login"), 1.5, ("finish", "all good"), 60))
    assert log.finished and log.state == "done" and log.current is None
    assert log.steps[0].duration == 1.5
    assert "done, 1.5 s: all good" in log.html()


def test_a_message_that_reads_like_the_end_does_not_end_the_log():
    log = _log(_events(("step", "lab smartos is ready"), 1.0, ("info", "lab smartos is ready")))
    assert not log.finished and log.current.name == "lab smartos is ready"


def test_the_failed_event_marks_the_step_it_failed_in():
    log = _log(_events(("step", "boot"), 3.0, ("fail", RuntimeError("guest panicked"))))
    assert log.state == "failed" and log.outcome == "guest panicked"
    assert log.steps[0].failed and log.steps[0].duration == 3.0
    assert log.lines()[0].startswith("x [")
    assert "&#10008; boot" in log.html() and "failed, 3.0 s: guest panicked" in log.html()


def test_an_info_line_before_any_step_is_a_note():
    log = _log(_events(("info", "lab x is already open in this process"), ("finish",)))
    assert log.steps[0].note and log.state == "done"


def test_outside_jupyter_step_display_prints_lines(capsys):
    assert not in_notebook()
    show = step_display()
    assert not isinstance(show, StepDisplay)
    for event in _events(("step", "starting QEMU"), 2.0, ("fail", "QEMU exited")):
        show(event)
    assert capsys.readouterr().err.splitlines() == ["[    0.0s] starting QEMU",
                                                    "[    2.0s] FAILED: QEMU exited"]


def test_step_display_widget_shows_the_steps_as_events_arrive():
    display = StepDisplay(show=False)
    for event in _events(("step", "starting QEMU"), 1.0, ("finish", "lab x is up")):
        display(event)
    assert "starting QEMU" in display.widget.value and "done, 1.0 s: lab x is up" in display.widget.value


# ---------------------------------------------------------------- tables

@dataclass
class Row:
    name: str
    size: int | None
    ratio: float
    raw: str = "hidden"


def test_table_of_dataclasses_uses_their_fields_without_raw():
    t = table([Row("zones", 100, 1.5), Row("tank", None, 2.0)])
    assert t.columns == ["name", "size", "ratio"]
    assert str(t).splitlines() == ["name   size  ratio", "zones  100   1.5", "tank   -     2"]
    assert "<th style='text-align:left'>name</th>" in t._repr_html_()


def test_table_of_dicts_tuples_and_chosen_columns():
    assert table([{"a": 1, "b": ("x", "y")}]).rows == [["1", "x, y"]]
    assert table([("sched", 12)], ["execname", "count"]).rows == [["sched", "12"]]
    assert table([Row("z", 1, 1.0)], ["size"], limit=1).rows == [["1"]]
    with pytest.raises(TypeError):
        table([("no", "columns")])


def test_table_escapes_html():
    assert "&lt;b&gt;" in table([{"x": "<b>"}])._repr_html_()


# ---------------------------------------------------------------- which image

def _platform_dir(root: Path) -> Path:
    pdir = root / "platform-20250101T000000Z"
    (pdir / "i86pc/kernel/amd64").mkdir(parents=True)
    (pdir / "i86pc/amd64").mkdir(parents=True)
    (pdir / "i86pc/kernel/amd64/unix").write_bytes(b"\0")
    (pdir / "i86pc/amd64/boot_archive").write_bytes(b"\0")
    return pdir


class EmptyCache:
    def list(self):
        return []


def test_smartos_lab_image_names_the_image(tmp_path):
    pdir = _platform_dir(tmp_path)
    image = find_image({"SMARTOS_LAB_IMAGE": str(pdir)}, EmptyCache())
    assert image.path == pdir and image.kind == "platform-dir"
    assert image.release == "20250101T000000Z" and image.source == "SMARTOS_LAB_IMAGE"


def test_a_smartos_lab_image_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        find_image({"SMARTOS_LAB_IMAGE": str(tmp_path / "nope.img")}, EmptyCache())


def test_no_image_anywhere_explains_what_to_do(tmp_path):
    assert find_image({}, EmptyCache()) is None
    with pytest.raises(ImageError, match="SMARTOS_LAB_IMAGE") as err:
        require_image({}, EmptyCache())
    assert "smartos-lab images add" in str(err.value)


def test_an_iso_named_by_smartos_lab_image_is_used(tmp_path):
    iso = tmp_path / "smartos-20250724T001011Z.iso"
    iso.write_bytes(b"\0" * 0x8001 + b"CD001" + b"\0" * 64)
    image = find_image({"SMARTOS_LAB_IMAGE": str(iso)}, EmptyCache())
    assert (image.path, image.kind, image.release) == (iso, "iso", "20250724T001011Z")


class ListedCache:
    def __init__(self, images):
        self.images = images

    def list(self):
        return self.images


def test_the_newest_cached_image_whose_file_exists_is_chosen(tmp_path):
    from smartos_lab.images.cache import CachedImage
    files = {}
    for name in ("gone.img", "new.iso", "old.tgz"):
        files[name] = tmp_path / name
        files[name].write_bytes(b"x")
    files["gone.img"].unlink()
    cached = [CachedImage("usb", "20250203T000000Z", files["gone.img"], 1, None, False, "x"),
              CachedImage("iso", "20250202T000000Z", files["new.iso"], 1, None, False, "x"),
              CachedImage("platform", "20250101T000000Z", files["old.tgz"], 1, None, False, "x")]
    image = find_image({}, ListedCache(cached))
    assert (image.path, image.kind, image.source) == (files["new.iso"], "iso", "cache")


def test_an_empty_real_cache_has_no_image(tmp_path):
    from smartos_lab.images.cache import ImageCache
    assert find_image({}, ImageCache(tmp_path / "images")) is None


# ---------------------------------------------------------------- console and checkpoints

@pytest.fixture
def console_lab(tmp_path):
    from smartos_lab.machine.console import Console
    ours, guest = socket.socketpair()
    console = Console.from_socket(ours, name="test-console")
    guest.sendall(b"\x1b[1mSunOS\x1b[0m login: ")
    deadline = time.monotonic() + 5
    while "login:" not in console.tail() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield SimpleNamespace(console=console, serial_log=tmp_path / "serial.log"), guest
    console.close()
    guest.close()


def test_console_text_is_the_stripped_console_tail(console_lab):
    lab, _guest = console_lab
    assert console_text(lab) == "SunOS login: "


def test_console_text_falls_back_to_the_serial_log(tmp_path):
    log = tmp_path / "serial.log"
    log.write_bytes(b"\x1b[1mpanic[cpu0]\x1b[0m\r\n")
    assert "panic[cpu0]" in console_text(SimpleNamespace(console=_Gone(), serial_log=log))


class _Gone:
    def tail(self, chars):
        from smartos_lab.errors import ConsoleClosed
        raise ConsoleClosed("closed")


def test_console_widget_shows_the_tail_and_follows_new_output(console_lab):
    lab, guest = console_lab
    box = console_widget(lab, follow_interval=0.0)
    _refresh, follow = box.children[0].children
    view = box.children[1]
    assert "SunOS login:" in view.value
    follow.value = True
    guest.sendall(b"root\r\n")
    deadline = time.monotonic() + 5
    while "root" not in view.value and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "root" in view.value
    follow.value = False


class RecordingLab:
    """Checkpoint calls recorded (the QEMU side is tested in tests/integration)."""

    def __init__(self):
        self.calls = []

    def checkpoint(self, name):
        self.calls.append(("checkpoint", name))
        return 0.25

    def restore(self, name):
        self.calls.append(("restore", name))
        return 0.05

    def checkpoints(self):
        return []


def test_checkpoint_actions_report_what_they_did():
    lab = RecordingLab()
    actions = CheckpointActions(lab)
    assert actions.save("known-good") == "saved checkpoint 'known-good' in 0.2 s"
    assert actions.restore("known-good") == "restored checkpoint 'known-good' in 0.1 s"
    assert actions.listing() == "no checkpoints yet"
    assert lab.calls == [("checkpoint", "known-good"), ("restore", "known-good")]


def test_checkpoint_buttons_save_the_named_checkpoint_on_click():
    lab = RecordingLab()
    box = checkpoint_buttons(lab, name="before-zfs")
    text, save, restore, _listing = box.children[0].children
    save.click()
    text.value = "other"
    restore.click()
    assert lab.calls == [("checkpoint", "before-zfs"), ("restore", "other")]


def test_exercise_widget_has_check_show_and_solve_buttons_that_work(sh, tmp_path):
    exercise = Exercise("zfs", _three_steps(), sh)
    box = exercise.widget()
    assert len(box.children) == 1 + 3
    step0 = box.children[1]
    check, show, solve = step0.children[2].children
    assert [b.description for b in (check, show, solve)] == ["Check", "Show solution", "Solve"]
    check.click()
    assert exercise.passed == set()
    solve.click()
    assert (tmp_path / "pool").is_dir() and exercise.passed == {0}
    assert "1/3 steps done" in box.children[0].value


# ---------------------------------------------------------------- published examples and figures

def test_published_example_is_the_fixture_output_with_its_source():
    example = published_example("panic/sysadv1_x86_halt_d.txt")
    assert example.source.startswith("github:illumos/illumos-docbooks")
    assert example.command == "halt -d"
    assert example.text.startswith("4ay 30 15:35:15") and "# source" not in example.text
    assert str(example).startswith("$ halt -d\n")


def test_a_missing_published_example_names_those_the_package_ships():
    with pytest.raises(FileNotFoundError, match="panic/sysadv1_x86_halt_d.txt"):
        published_example("nope/none.txt")
    with pytest.raises(FileNotFoundError):
        published_example("../notebook/__init__.py")


def test_figure_image_is_a_png():
    from matplotlib.figure import Figure
    fig = Figure()
    fig.add_subplot().plot([1, 2])
    assert figure_image(fig).data.startswith(b"\x89PNG")
