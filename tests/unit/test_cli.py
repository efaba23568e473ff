"""The smartos-lab command line (no VM: ps on an empty run root, down errors, doctor)."""
from __future__ import annotations

import json

import pytest

from smartos_lab import cli


def test_no_command_prints_help_and_returns_2(capsys):
    assert cli.main([]) == 2
    assert "ps" in capsys.readouterr().out


def test_every_registered_command_has_help(capsys):
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([command.name, "--help"])
        assert exc.value.code == 0
        assert command.help in capsys.readouterr().out


def test_ps_with_no_labs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    assert cli.main(["ps"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[1:] if not line.startswith("note:")]
    assert "no labs running" in out or all(row[1] == "orphan" for row in rows)  # other sessions'


def test_ps_json_is_a_list(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    assert cli.main(["ps", "--json"]) == 0
    labs = json.loads(capsys.readouterr().out)
    assert isinstance(labs, list)
    assert all(lab["state"] == "orphan" for lab in labs)    # only orphans of other sessions


def test_ps_all_lists_stopped_labs_whose_disks_are_kept(capsys, tmp_path, monkeypatch):
    from smartos_lab.lab import LabConfig, LabDir
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    monkeypatch.setenv("SMARTOS_LAB_HOME", str(tmp_path / "home"))
    LabDir("parked").save(LabConfig(name="parked"))
    assert cli.main(["ps"]) == 0
    assert "parked" not in capsys.readouterr().out
    assert cli.main(["ps", "--all"]) == 0
    assert any(line.split()[:2] == ["parked", "stopped"]
               for line in capsys.readouterr().out.splitlines())


def test_down_an_unknown_lab_is_an_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    assert cli.main(["down", "ghost"]) == 1
    assert "no lab named 'ghost'" in capsys.readouterr().err


def test_down_needs_a_name_or_all(capsys):
    assert cli.main(["down"]) == 2
    assert cli.main(["down", "x", "--all"]) == 2


def test_down_rejects_an_invalid_name(capsys):
    assert cli.main(["down", "../etc"]) == 1
    assert "invalid lab name" in capsys.readouterr().err


def test_doctor_json_exit_code_follows_required_checks(capsys):
    rc = cli.main(["doctor", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == (0 if data["ok"] else 1)


def test_log_prints_the_end_of_a_labs_serial_log_without_terminal_codes(capsys, tmp_path, monkeypatch):
    from smartos_lab.lab import LabConfig, LabDir
    monkeypatch.setenv("SMARTOS_LAB_HOME", str(tmp_path / "home"))
    lab_dir = LabDir("l1")
    lab_dir.save(LabConfig(name="l1"))
    lines = b"".join(b"line %d\r\n" % i for i in range(100))
    lab_dir.serial_log.write_bytes(lines + b"\x1b[1mbold\x1b[0m\r\n")
    assert cli.main(["log", "l1", "-n", "3"]) == 0
    assert capsys.readouterr().out == "line 98\nline 99\nbold\n"


@pytest.fixture
def one_stopped_lab(tmp_path, monkeypatch):
    """A home with one stopped lab, ``parked``, and an empty run root."""
    from smartos_lab.lab import LabConfig, LabDir
    monkeypatch.setenv("SMARTOS_LAB_RUNDIR", str(tmp_path / "run"))
    monkeypatch.setenv("SMARTOS_LAB_HOME", str(tmp_path / "home"))
    LabDir("parked").save(LabConfig(name="parked"))
    return LabDir("parked")


@pytest.mark.parametrize("command", [["ssh", "ghost"], ["ssh", "ghost", "uname", "-a"],
                                     ["log", "ghost"], ["down", "ghost"], ["console", "ghost"],
                                     ["destroy", "ghost", "--yes"], ["checkpoint", "ghost"],
                                     ["restore", "ghost"], ["checkpoints", "ghost"]])
def test_every_command_says_the_same_thing_about_a_lab_that_does_not_exist(
        command, capsys, one_stopped_lab):
    assert cli.main(command) == 1
    err = capsys.readouterr().err
    assert err == (f"smartos-lab {command[0]}: error: no lab named 'ghost' "
                   "(labs here: parked)\n")


@pytest.mark.parametrize("command", [["ssh", "parked"], ["console", "parked"],
                                     ["checkpoint", "parked"]])
def test_commands_that_need_a_running_lab_say_a_stopped_one_is_stopped(
        command, capsys, one_stopped_lab):
    assert cli.main(command) == 1
    assert f"smartos-lab {command[0]}: error: lab 'parked' is stopped; start it with " \
           "'smartos-lab up parked'" in capsys.readouterr().err


def test_down_of_a_stopped_lab_says_so_and_succeeds(capsys, one_stopped_lab):
    assert cli.main(["down", "parked"]) == 0
    assert "parked is not running (stopped; its disks are kept)" in capsys.readouterr().out


def test_destroy_without_a_terminal_requires_yes_and_keeps_the_lab(capsys, one_stopped_lab,
                                                                  monkeypatch):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(""))          # no tty, nothing to read
    assert cli.main(["destroy", "parked"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'smartos-lab destroy parked --yes'" in err
    assert one_stopped_lab.exists()
    assert cli.main(["destroy", "parked", "--yes"]) == 0
    assert "destroyed lab parked" in capsys.readouterr().out
    assert not one_stopped_lab.path.exists()


def test_up_of_a_boot_that_stopped_in_kmdb_says_how_to_go_on(capsys, monkeypatch):
    from types import SimpleNamespace

    from smartos_lab.kmdb_stop import KmdbStop
    from smartos_lab.lab import Lab

    detached = []
    stopped = SimpleNamespace(
        stopped_at_boot=KmdbStop("debugger", "guest entered its kernel debugger: [0]>"),
        status=lambda: {"state": "kmdb", "ports": {"ssh": 2222}, "accel": "tcg",
                        "serial_log": "/labs/k/serial.log"},
        detach=lambda: detached.append(True))
    monkeypatch.setattr(Lab, "up", classmethod(lambda cls, name, **kw: stopped))
    assert cli.main(["up", "k", "--platform", "/p", "--kernel-args=-kd"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("lab k stopped in kmdb at boot (QEMU runs); "
                                   "serial log: /labs/k/serial.log")
    assert "smartos-lab console k" in out and "ssh" not in out and detached == [True]
