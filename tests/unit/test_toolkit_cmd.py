"""Command building and quoting helpers shared by the toolkits."""
from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.machine.shell import MAX_LINE, Frame, check_typable
from smartos_lab.toolkits import _cmd

from ._runners import RecordingRunner

# the guest shells: bash on SmartOS, busybox ash on the Linux test guest
SHELLS = [pytest.param([s], id=s) for s in ("sh", "bash") if shutil.which(s)] + \
    ([pytest.param(["busybox", "sh"], id="busybox")] if shutil.which("busybox") else [])
HOSTILE = ["a b", "it's", 'say "hi"', "x; rm -rf /", "$(reboot)", "`id`", "a|b", "*", "-rf"]


@pytest.mark.parametrize("value", HOSTILE)
def test_cmd_keeps_every_hostile_argument_one_word(value):
    assert shlex.split(_cmd.cmd("echo", value, "end")) == ["echo", value, "end"]


def test_cmd_skips_none_arguments():
    assert _cmd.cmd("zfs", None, "list") == "zfs list"


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "nul\x00", "", "esc\x1b[0m"])
def test_no_control_rejects_newlines_control_characters_and_empty(value):
    with pytest.raises(ConfigError):
        _cmd.no_control(value, "name")


@pytest.mark.parametrize("name", ["tank", "zones", "my pool", "a-b_c.d:e"])
def test_pool_names_that_zpool_accepts_pass(name):
    assert _cmd.pool_name(name) == name


@pytest.mark.parametrize("name", ["1tank", "mirror", "raidz", "c0t0d0", "c1", "ta;nk", "t$(x)",
                                  "t'k", "a/b", "tank\n", ""])
def test_pool_names_that_zpool_refuses_are_rejected(name):
    with pytest.raises(ConfigError):
        _cmd.pool_name(name)


@pytest.mark.parametrize("name", ["tank/a", "tank/a b/c", "tank/%recv", "zones/cores"])
def test_dataset_names_pass(name):
    assert _cmd.dataset_name(name) == name


@pytest.mark.parametrize("name", ["tank/", "/tank", "tank//a", "tank/a;b", "tank/$(id)",
                                  'tank/"q"', "tank/a\nb", "tank@s", "tank/a@b@c"])
def test_bad_dataset_names_are_rejected(name):
    with pytest.raises(ConfigError):
        _cmd.dataset_name(name)


def test_snapshot_names_need_an_at_when_asked():
    assert _cmd.dataset_name("tank/a@s1", snapshot=True) == "tank/a@s1"
    assert _cmd.dataset_name("tank/a", snapshot=None) == "tank/a"
    with pytest.raises(ConfigError):
        _cmd.dataset_name("tank/a", snapshot=True)
    with pytest.raises(ConfigError):
        _cmd.dataset_name("tank/a@", snapshot=True)


def test_uuid_accepts_vmadm_uuids_only():
    assert _cmd.uuid("54f1cc77-68f1-42ab-acac-5c4f64f5d6e0")
    for bad in ("54F1CC77-68F1-42AB-ACAC-5C4F64F5D6E0", "zone1", "54f1cc77; reboot", ""):
        with pytest.raises(ConfigError):
            _cmd.uuid(bad)


def test_key_values_refuse_equals_in_keys_and_newlines_in_values():
    assert list(_cmd.key_values({"quota": 10, "autoboot": False}, "p")) == ["quota=10",
                                                                           "autoboot=false"]
    with pytest.raises(ConfigError):
        list(_cmd.key_values({"a=b": 1}, "p"))
    with pytest.raises(ConfigError):
        list(_cmd.key_values({"alias": "x\ny"}, "p"))


@pytest.mark.parametrize("content", [
    "",
    "one line",
    "line\n",
    "a\nb\n\nc",
    '{"alias": "it\'s; $(reboot) `id` \\\\ %s %d"}',
    "x" * 3000 + "\n" + "y" * 10 + "\n",
    "\n\n",
    "-n\n-e\n%s\n",
    "'" * 700 + "\n" + "it's é ü" * 200,
    "ctl\x15touch pwned #\r\n\x03\x7f",
], ids=["empty", "one-line", "newline", "blank-lines", "json-hostile", "long-lines", "only-newlines",
        "printf-lookalikes", "many-quotes", "control-characters"])
@pytest.mark.parametrize("shell", SHELLS)
def test_write_file_commands_reproduce_content_exactly_in_a_real_shell(tmp_path, content, shell):
    target = tmp_path / "out file"
    commands = _cmd.write_file_commands(str(target), content, budget=700)
    assert all("\n" not in c for c in commands)          # nothing typed spans lines
    for command in commands:
        subprocess.run([*shell, "-c", command], check=True)
    assert target.read_bytes().decode("utf-8") == content


@pytest.mark.parametrize("content", ["'" * 5000, "'\n" * 3000, "x" * 9000, "é'" * 3000])
def test_write_file_commands_fit_a_console_line_once_framed(content):
    """The console types each command as one quoted eval word (Frame.command_line)."""
    frame = Frame("0123abcd_99999")
    commands = _cmd.write_file_commands("/tmp/it's a file", content)
    for command in commands:
        check_typable(command, frame.command_line(command))     # raises when too long
        assert len(frame.command_line(command).encode()) <= MAX_LINE - 2


def test_write_file_makes_a_private_file_first_then_writes():
    runner = RecordingRunner()
    _cmd.write_file(runner, "/tmp/p.json", "{}")
    assert runner.commands[0] == "(umask 077 && : > /tmp/p.json)"
    assert shlex.split(runner.commands[1]) == ["printf", "%s", "{}", ">", "/tmp/p.json"]


def test_temp_paths_are_fresh_and_under_tmp():
    a, b = _cmd.temp_path("x", ".d"), _cmd.temp_path("x", ".d")
    assert a != b and a.startswith("/tmp/x-") and a.endswith(".d")
