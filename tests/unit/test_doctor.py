"""smartos-lab doctor: host checks, report and JSON."""
from __future__ import annotations

import json

from smartos_lab import doctor
from smartos_lab.doctor import (
    Check,
    all_required_ok,
    check_qemu,
    check_run_root,
    format_report,
    parse_qemu_version,
    run_checks,
    to_json,
)


def test_parse_qemu_version():
    assert parse_qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)") == (7, 2, 22)
    assert parse_qemu_version("QEMU emulator version 6.2.0") == (6, 2, 0)
    assert parse_qemu_version("garbage") is None


def test_checks_cover_what_a_lab_needs():
    names = [c.name for c in run_checks()]
    for expected in ("qemu-system-x86_64", "qemu-img", "accelerator", "nested virtualization",
                     "mtools", "disk space (cache)", "disk space (home)", "run root",
                     "python: qemu.qmp", "python: pexpect", "python: paramiko"):
        assert expected in names


def test_this_host_has_what_is_required():
    checks = run_checks()
    assert all_required_ok(checks), format_report(checks)


def test_a_missing_qemu_is_a_required_failure_with_the_apt_fix():
    c = check_qemu("qemu-system-nonexistent")
    assert not c.ok and c.required and c.level == "FAIL"
    assert "apt-get install qemu-system-x86" in c.fix


def test_an_old_qemu_is_a_failure(tmp_path, monkeypatch):
    fake = tmp_path / "qemu-system-old"
    fake.write_text("#!/bin/sh\necho 'QEMU emulator version 5.2.0'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}")
    c = check_qemu("qemu-system-old")
    assert not c.ok and "need >= 6.2" in c.detail


def test_an_open_run_root_fails_with_a_chmod_fix(tmp_path):
    root = tmp_path / "run"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    c = check_run_root(root)
    assert not c.ok and "chmod 700" in c.fix


def test_warnings_do_not_make_the_host_unready():
    checks = [Check("a", True, "fine"), Check("accelerator", False, "TCG", required=False)]
    assert all_required_ok(checks)
    assert not all_required_ok(checks + [Check("qemu-img", False, "missing")])


def test_report_marks_levels_and_fixes():
    text = format_report([Check("qemu-img", False, "missing", "apt-get install qemu-utils"),
                          Check("accelerator", False, "TCG: why", "use KVM", required=False),
                          Check("mtools", True, "/usr/bin/mcopy")])
    assert "[FAIL] qemu-img" in text and "fix: apt-get install qemu-utils" in text
    assert "[warn] accelerator" in text and "[  ok] mtools" in text
    assert "NOT ready" in text


def test_json_output_is_parseable_and_carries_every_field():
    data = json.loads(to_json(run_checks()))
    assert isinstance(data["ok"], bool)
    first = data["checks"][0]
    assert set(first) == {"name", "ok", "detail", "fix", "required", "level"}


def test_disk_space_levels(tmp_path, monkeypatch):
    class Usage:
        free = 0
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: Usage)
    Usage.free = 512 << 20
    assert doctor.check_disk_space("cache", tmp_path).level == "FAIL"
    Usage.free = 2 << 30
    assert doctor.check_disk_space("cache", tmp_path).level == "warn"
    Usage.free = 50 << 30
    assert doctor.check_disk_space("cache", tmp_path / "not" / "yet").level == "ok"
