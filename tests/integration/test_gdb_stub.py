"""gdb on QEMU's gdb stub, driven through GdbSession (GDB/MI), on the Multiboot probe kernel.

The kernel is NOT SmartOS: it is the probe of ``tests/multiboot_probe/`` (a test
substrate with symbols).  After its report it idles in a 100 Hz clock loop whose
interrupt handler ``probe_tick`` counts ``probe_ticks``; ``probe_signature`` holds
a known word.  QEMU runs under TCG with ``MachineSpec(gdb=True)``; Debian's gdb
attaches to the stub's unix socket in the run dir.

What this proves: the stub is reachable only through a 0600 socket in the 0700
run dir; gdb stops at a symbol of the running kernel, reads its registers and
memory, continues (the kernel really runs on: the tick count grows) and detaches,
leaving the machine running.  Unknown symbols and misuse are one-line errors.
"""
from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator

import pytest

from smartos_lab.errors import GdbError, UnknownSymbol
from smartos_lab.machine.gdb import GdbSession
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.spec import KernelBoot, MachineSpec
from tests.multiboot_probe.build import (
    END_LINE,
    PROBE_SIGNATURE,
    SIGNATURE_SYMBOL,
    TICK_SYMBOL,
    TICKS_SYMBOL,
    ensure_probe,
)

pytestmark = pytest.mark.guest

BOOT_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def probe_machine() -> Iterator[QemuMachine]:
    spec = MachineSpec(name=f"gdbprobe-{os.getpid()}", memory_mib=64, accel="tcg",
                       boot=KernelBoot(kernel=ensure_probe()), gdb=True)
    machine = QemuMachine.launch(spec)
    try:
        machine.console.expect_exact(END_LINE, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_TIMEOUT)
        yield machine
    finally:
        machine.shutdown()


@pytest.fixture
def gdb(probe_machine) -> Iterator[GdbSession]:
    session = GdbSession.attach(probe_machine.run_dir.gdb_socket, symbols=ensure_probe())
    try:
        yield session
    finally:
        session.detach()


def test_the_stub_is_a_0600_socket_in_the_0700_run_dir(probe_machine):
    rd = probe_machine.run_dir
    sock = os.stat(rd.gdb_socket)
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(rd.path).st_mode) == 0o700
    assert not any(a.startswith("tcp") for a in probe_machine.argv)      # no TCP stub anywhere


def test_gdb_stops_at_a_probe_symbol_reads_a_register_and_a_known_word(gdb, probe_machine):
    bp = gdb.break_at(TICK_SYMBOL)
    assert bp.address == gdb.symbol_address(TICK_SYMBOL)
    gdb.cont()
    stop = gdb.wait_stop(timeout=30)
    assert (stop.reason, stop.function, stop.breakpoint) == ("breakpoint-hit", TICK_SYMBOL, bp.number)
    assert gdb.registers(["rip"]) == {"rip": bp.address}
    assert gdb.registers()["cs"] == 0x08                # the probe's own flat code segment
    word = gdb.read_memory(gdb.symbol_address(SIGNATURE_SYMBOL), 4)
    assert int.from_bytes(word, "little") == PROBE_SIGNATURE
    assert gdb.backtrace()[0].function == TICK_SYMBOL
    assert probe_machine.qmp.status() == "debug"        # QEMU: stopped by the debugger


def test_after_continue_the_kernel_runs_on(gdb):
    ticks = gdb.symbol_address(TICKS_SYMBOL)
    gdb.break_at(TICK_SYMBOL)
    gdb.cont()
    gdb.wait_stop(timeout=30)
    first = int.from_bytes(gdb.read_memory(ticks, 4), "little")
    gdb.cont()
    gdb.wait_stop(timeout=30)
    assert int.from_bytes(gdb.read_memory(ticks, 4), "little") == first + 1


def test_detach_leaves_the_machine_running(probe_machine):
    session = GdbSession.attach(probe_machine.run_dir.gdb_socket, symbols=ensure_probe())
    session.break_at(TICK_SYMBOL)
    session.cont()
    session.wait_stop(timeout=30)
    session.detach()
    deadline = time.monotonic() + 10
    while probe_machine.qmp.status() != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert probe_machine.qmp.status() == "running" and probe_machine.alive()
    assert session.closed


def test_an_unknown_symbol_is_a_one_line_error(gdb):
    with pytest.raises(UnknownSymbol, match=r"^no symbol 'no_such_function' in .*probe.*\.elf$"):
        gdb.break_at("no_such_function")


def test_reading_while_the_target_runs_says_what_to_do(gdb):
    gdb.cont()
    with pytest.raises(GdbError, match="wait_stop\\(\\) or interrupt\\(\\)"):
        gdb.registers()
    stop = gdb.interrupt(timeout=30)
    assert stop.address is not None and not gdb.running


def test_detach_after_the_machine_is_gone_just_ends_gdb():
    spec = MachineSpec(name=f"gdbgone-{os.getpid()}", memory_mib=64, accel="tcg",
                       boot=KernelBoot(kernel=ensure_probe()), gdb=True)
    machine = QemuMachine.launch(spec)
    try:
        machine.console.expect_exact(END_LINE, timeout=BOOT_TIMEOUT, idle_timeout=BOOT_TIMEOUT)
        session = GdbSession.attach(machine.run_dir.gdb_socket, symbols=ensure_probe())
    finally:
        machine.shutdown()
    session.detach()
    assert session.closed
