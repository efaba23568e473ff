"""Kernel-debugging glue without a VM: gdb option of a lab, module symbol files, the stub
socket check, 'stopped in gdb', the A/B side-by-side view."""
from __future__ import annotations

import os
import shutil
import socket
import types

import pytest

from smartos_lab.debug import (
    Comparison,
    Side,
    apply_gdb,
    compare,
    default_modules_root,
    kernel_symbols,
    module_symbols,
    not_enabled,
    set_gdb,
    side_by_side,
)
from smartos_lab.errors import GdbError, UnknownSymbol
from smartos_lab.lab import LabConfig
from smartos_lab.machine.gdb import GdbSession, check_stub_socket, stopped_in_gdb
from smartos_lab.machine.result import CommandResult
from smartos_lab.machine.spec import DiskBoot, KernelBoot, MachineSpec
from smartos_lab.parsers.crash import parse_modinfo
from tests.multiboot_probe.build import TICK_SYMBOL, ensure_probe
from tests.unit._parser_fixtures import fixture
from tests.unit._runners import RecordingRunner


def test_gdb_sticks_to_the_lab_until_turned_off():
    config = LabConfig(name="lab1")
    spec = MachineSpec(name="lab1")
    assert apply_gdb(spec, config).gdb is False
    set_gdb(config, True)
    assert apply_gdb(spec, config).gdb is True
    set_gdb(config, None)                        # not given: unchanged
    assert apply_gdb(spec, config).gdb is True
    set_gdb(config, False)
    assert apply_gdb(spec, config).gdb is False


def test_the_restart_hint_is_one_line_with_both_ways():
    message = str(not_enabled("mykernel"))
    assert "\n" not in message
    assert "Lab.up('mykernel', gdb=True)" in message and "smartos-lab up mykernel --gdb" in message


def test_only_an_elf_kernel_gives_symbols(tmp_path):
    bz = tmp_path / "vmlinuz"
    bz.write_bytes(b"MZ\x00\x00not an elf")
    assert kernel_symbols(MachineSpec(name="a", boot=KernelBoot(kernel=bz))) is None
    probe = ensure_probe()
    assert kernel_symbols(MachineSpec(name="a", boot=KernelBoot(kernel=probe))) == probe
    assert kernel_symbols(MachineSpec(name="a", boot=DiskBoot())) is None


def test_modules_are_found_in_a_proto_area_at_their_text_address(tmp_path):
    modules = parse_modinfo(fixture("modinfo/modinfo_solaris_sparc_pbis_issue139.txt"))
    for rel in ("kernel/amd64/genunix", "kernel/fs/amd64/specfs", "kernel/fs/amd64/zfs",
                "kernel/drv/amd64/zfs"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"\x7fELF")
    found = {m.path.relative_to(tmp_path).as_posix(): m.text for m in module_symbols(modules, tmp_path)}
    assert found == {"kernel/amd64/genunix": 0x1012c550, "kernel/fs/amd64/specfs": 0x1081a000,
                     "kernel/drv/amd64/zfs": 0x10847338}     # unix is the kernel itself; no file: left out


def test_the_stub_socket_must_be_private(tmp_path):
    path = tmp_path / "gdb.sock"
    with pytest.raises(GdbError, match="no gdb stub socket"):
        check_stub_socket(path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        os.chmod(path, 0o666)
        with pytest.raises(GdbError, match="not private .mode 0666"):
            check_stub_socket(path)
        os.chmod(path, 0o600)
        check_stub_socket(path)
    finally:
        server.close()


class FakeQMP:
    def __init__(self, status, gdb_filename="disconnected:unix:/r/gdb.sock,server=on"):
        self._status = status
        self._chardevs = [{"label": "serial0", "filename": "unix:/r/console.sock"},
                          {"label": "gdb", "filename": gdb_filename}]

    def status(self):
        return self._status

    def execute(self, command):
        assert command == "query-chardev"
        return self._chardevs


def test_stopped_in_gdb_means_debug_or_paused_with_gdb_connected():
    assert stopped_in_gdb(FakeQMP("debug"))
    assert stopped_in_gdb(FakeQMP("paused", "unix:/r/gdb.sock,server=on"))
    assert not stopped_in_gdb(FakeQMP("paused"))               # paused by someone else (QMP stop)
    assert not stopped_in_gdb(FakeQMP("running", "unix:/r/gdb.sock,server=on"))


@pytest.mark.skipif(shutil.which("gdb") is None, reason="needs Debian's gdb")
def test_an_unknown_symbol_is_one_line_even_before_any_target(tmp_path):
    from pygdbmi.gdbcontroller import GdbController

    controller = GdbController(command=["gdb", "--nx", "--quiet", "--interpreter=mi3"])
    session = GdbSession(controller, socket=tmp_path / "none.sock", symbols=ensure_probe(), timeout=10)
    try:
        session._command(f"-file-symbol-file {ensure_probe()}")
        assert session.symbol_address(TICK_SYMBOL) > 0x100000
        with pytest.raises(UnknownSymbol) as err:
            session.break_at("no_such_function")
        assert str(err.value) == f"no symbol 'no_such_function' in {ensure_probe()}"
    finally:
        session._kill()


def test_compare_asks_each_lab_for_uname_v_then_runs_the_command():
    a = RecordingRunner({"uname -v": "joyent_20250724T001011Z\n", "echo": "a\n"})
    b = RecordingRunner({"uname -v": "joyent_20260301T000000Z\n", "echo": "b\n"})
    result = compare(("stock", a), ("mine", b), "echo hi")
    assert a.commands == b.commands == ["uname -v", "echo hi"]
    assert (result.a.uname_v, result.b.uname_v) == ("joyent_20250724T001011Z", "joyent_20260301T000000Z")
    assert not result.same_output


def test_side_by_side_heads_each_column_with_lab_and_uname():
    comparison = Comparison("ls", Side("stock", "joyent_A", CommandResult("ls", 0, "x\ny\n")),
                            Side("mine", "joyent_B", CommandResult("ls", 1, "", "ls: oops\n")))
    lines = side_by_side(comparison, width=61).splitlines()
    assert lines[0] == "$ ls"
    assert lines[1].startswith("stock: joyent_A") and lines[1].split(" | ")[1] == "mine: joyent_B"
    assert lines[2].split(" | ")[0].rstrip() == "exit 0" and lines[2].endswith("exit 1")
    assert lines[4].split(" | ") == ["x".ljust(29), "ls: oops"]
    assert lines[5].rstrip() == "y".ljust(29) + " |"


def test_a_lab_status_shape_for_the_panel():
    # Lab.status() reports "gdb" as the state while gdb holds the CPUs (used by panels and ps)
    from smartos_lab.lab import Lab

    fake = types.SimpleNamespace(
        name="lab1", shell=types.SimpleNamespace(transport="console"), serial_log="/x/serial.log",
        machine=types.SimpleNamespace(pid=1, spec=MachineSpec(name="lab1", gdb=True), ports={},
                                      accel=types.SimpleNamespace(accel="tcg"), qmp=FakeQMP("debug")))
    assert Lab.status(fake)["state"] == "gdb"


def test_the_proto_area_of_a_smartos_live_build_is_found_next_to_its_output(tmp_path):
    live = tmp_path / "smartos-live"
    (live / "proto" / "kernel").mkdir(parents=True)
    platform = live / "output" / "platform-20260101T000000Z"
    platform.mkdir(parents=True)
    assert default_modules_root(platform) == live / "proto"
    assert default_modules_root(live / "output" / "platform-20260101T000000Z.tgz") == live / "proto"
    assert default_modules_root(tmp_path / "smartos-20250724T001011Z-USB.img.gz") is None
    assert default_modules_root("") is None
