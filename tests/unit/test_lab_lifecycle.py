"""The lab's life cycle without a VM: lookup's answers, a failed first `up` leaves nothing,
old lab.json files still load, progress arrives as events."""
from __future__ import annotations

import json

import pytest

from smartos_lab.errors import ImageError, LabNotFound
from smartos_lab.lab import Lab, LabConfig, LabDir, LabState, lookup
from smartos_lab.smartos.bringup import SmartOSState, state_of
from smartos_lab.steps import StepKind


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    monkeypatch.setenv("SMARTOS_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_lookup_tells_absent_from_stopped(roots):
    assert lookup("nothing").state is LabState.ABSENT
    LabDir("parked").save(LabConfig(name="parked"))
    found = lookup("parked")
    assert (found.state, found.pid, found.run_dir) == (LabState.STOPPED, None, None)
    assert found.lab_dir is not None and found.config().name == "parked"


def test_a_stopped_or_absent_lab_is_refused_where_a_running_one_is_needed(roots):
    LabDir("parked").save(LabConfig(name="parked"))
    with pytest.raises(LabNotFound, match=r"lab 'parked' is stopped; start it with"):
        lookup("parked").require_running()
    with pytest.raises(LabNotFound, match=r"^no lab named 'ghost' \(labs here: parked\)$"):
        lookup("ghost").require_running()
    with pytest.raises(LabNotFound, match="is stopped"):
        Lab.attach("parked")


@pytest.mark.parametrize("image", ["missing.img", "not-an-image.img"])
def test_a_new_lab_that_fails_before_booting_leaves_no_lab_directory(roots, image):
    (roots / "not-an-image.img").write_bytes(b"hello" * 1000)
    events = []
    with pytest.raises(ImageError):
        Lab.up("fresh", image=roots / image, progress=events.append)
    assert not (roots / "home" / "labs" / "fresh").exists()
    assert lookup("fresh").state is LabState.ABSENT
    assert events[-1].kind is StepKind.FAILED and events[-1].final


def test_a_failed_up_of_an_existing_lab_keeps_its_files(roots):
    lab_dir = LabDir("kept")
    lab_dir.save(LabConfig(name="kept"))
    lab_dir.file("root.password").write_text("secret\n")
    with pytest.raises(ImageError):
        Lab.up("kept", image=roots / "missing.img", progress=False)
    assert lab_dir.file("root.password").read_text() == "secret\n"
    assert lookup("kept").state is LabState.STOPPED


def test_a_lab_json_written_with_extra_still_loads_as_the_smartos_state(roots):
    lab_dir = LabDir("old")
    lab_dir.create()
    lab_dir.config_file.write_text(json.dumps({
        "name": "old", "boot": "auto", "set_up": True,
        "extra": {"boot_path": "direct", "unix": "/l/pi/unix", "boot_archive": "/l/pi/ba",
                  "platform_source": "/src/platform.tgz",
                  "platform_version": "joyent_20250724T001011Z"}}))
    config = lab_dir.load()
    state = state_of(config)
    assert state == SmartOSState(boot_path="direct", unix="/l/pi/unix", boot_archive="/l/pi/ba",
                                 platform_source="/src/platform.tgz",
                                 platform_version="joyent_20250724T001011Z")
    lab_dir.save(config)
    saved = json.loads(lab_dir.config_file.read_text())
    assert "extra" not in saved and saved["strategy_state"]["boot_path"] == "direct"
    assert state_of(lab_dir.load()) == state


def test_a_lab_being_started_elsewhere_is_starting_and_up_refuses_it_without_touching_it(roots):
    from smartos_lab.errors import LabInUse
    from smartos_lab.machine.rundir import RunDir

    launch = RunDir.create("busy")          # a launch holding the name, no QEMU pid yet
    try:
        assert lookup("busy").state is LabState.STARTING
        with pytest.raises(LabInUse, match="being started by another process"):
            Lab.up("busy", image=roots / "any.img", progress=False)
        with pytest.raises(LabInUse):
            Lab.attach("busy")
        assert launch.path.is_dir() and not (roots / "home" / "labs" / "busy").exists()
    finally:
        launch.remove()
    assert lookup("busy").state is LabState.ABSENT
