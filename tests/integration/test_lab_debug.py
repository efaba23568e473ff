"""Kernel debugging through the Lab facade: Lab.up(gdb=True), lab.gdb(), smartos-lab gdb/ps,
lab.sh refusing while gdb holds the CPUs, lab.compare.

Two test substrates, neither is SmartOS: the Multiboot probe kernel booted as a lab
(tests/multiboot_probe/strategy.py: a kernel with symbols, no shell) and the Linux
test guest (tests/guest/strategy.py: a shell over console and SSH, a bzImage kernel
without symbols).  QEMU, its gdb stub, Debian's gdb and the lab code are real.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from smartos_lab.errors import GdbError, GdbNotEnabled, StoppedInGdb, TransportError, UnknownSymbol
from smartos_lab.lab import Lab, register_strategy
from smartos_lab.machine.registry import running_labs
from tests.guest.strategy import TestGuestStrategy
from tests.multiboot_probe.build import PROBE_SIGNATURE, SIGNATURE_SYMBOL, TICK_SYMBOL
from tests.multiboot_probe.strategy import ProbeStrategy

pytestmark = pytest.mark.guest

ROOT = Path(__file__).resolve().parents[2]
PROBE_LAB = f"kprobe-{os.getpid()}"
GUEST_LAB = f"kguest-{os.getpid()}"


def state_of(name: str) -> str:
    return next(s.state for s in running_labs() if s.name == name)


@pytest.fixture(scope="module")
def probe_lab(tmp_path_factory):
    register_strategy(ProbeStrategy.name, ProbeStrategy)
    lab = Lab.up(PROBE_LAB, strategy=ProbeStrategy(), gdb=True, progress=False,
                 labs_root=tmp_path_factory.mktemp("labs"))
    yield lab
    lab.down()


@pytest.fixture(scope="module")
def guest_lab(tmp_path_factory):
    register_strategy("test-guest", TestGuestStrategy)
    root = tmp_path_factory.mktemp("labs")
    lab = Lab.up(GUEST_LAB, strategy=TestGuestStrategy(), progress=False, labs_root=root)
    yield lab, root
    if lab.machine.alive():
        lab.down()


# --- the probe: a kernel with symbols -------------------------------------------------------------
def test_lab_gdb_stops_at_a_symbol_reads_a_register_and_a_word_then_the_lab_runs_on(probe_lab):
    gdb = probe_lab.gdb()
    try:
        assert gdb.symbols is not None and gdb.symbols.name.startswith("probe")  # the booted kernel
        bp = gdb.break_at(TICK_SYMBOL)
        gdb.cont()
        assert gdb.wait_stop(timeout=30).function == TICK_SYMBOL
        assert gdb.registers(["rip"])["rip"] == bp.address
        word = gdb.read_memory(gdb.symbol_address(SIGNATURE_SYMBOL), 4)
        assert int.from_bytes(word, "little") == PROBE_SIGNATURE
        assert state_of(PROBE_LAB) == "gdb"                       # ps shows it stopped in gdb
        started = time.monotonic()
        with pytest.raises(StoppedInGdb, match=f"^lab {PROBE_LAB} is stopped in gdb"):
            probe_lab.sh("uname -v")
        assert time.monotonic() - started < 2.0                   # at once, not after a timeout
        with pytest.raises(UnknownSymbol, match="^no symbol 'zfs_read' in "):
            gdb.break_at("zfs_read")
        with pytest.raises(GdbError, match="in use by another gdb"):
            probe_lab.gdb()                                       # the stub serves one gdb
    finally:
        gdb.detach()
    assert probe_lab.machine.alive() and state_of(PROBE_LAB) == "running"
    with pytest.raises(TransportError, match="no shell"):          # the probe's own answer again
        probe_lab.sh("uname -v")


def test_smartos_lab_gdb_on_a_pty_reaches_the_prompt_with_the_kernel_symbols(probe_lab):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="dumb")     # no colour codes
    child = pexpect.spawn(sys.executable, ["-m", "smartos_lab.cli", "gdb", PROBE_LAB], env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 160))
    try:
        child.expect_exact("(gdb) ")
        child.sendline(f"info address {TICK_SYMBOL}")
        child.expect(rf'Symbol "{TICK_SYMBOL}" is at 0x[0-9a-f]+ in a file compiled without debugging')
        child.expect_exact("(gdb) ")
        child.sendline(f"x/wx &{SIGNATURE_SYMBOL}")
        child.expect(rf"<{SIGNATURE_SYMBOL}>:\s+0x{PROBE_SIGNATURE:08x}")
        child.expect_exact("(gdb) ")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    time.sleep(0.5)
    assert probe_lab.machine.alive() and state_of(PROBE_LAB) == "running"


# --- the test guest: a lab with a shell ----------------------------------------------------------
def test_gdb_on_a_lab_started_without_it_says_how_to_restart_it(guest_lab):
    lab, root = guest_lab
    with pytest.raises(GdbNotEnabled) as err:
        lab.gdb()
    message = str(err.value)
    assert "\n" not in message and f"Lab.up({GUEST_LAB!r}, gdb=True)" in message
    assert f"smartos-lab up {GUEST_LAB} --gdb" in message
    with pytest.raises(GdbNotEnabled):
        Lab.up(GUEST_LAB, strategy=TestGuestStrategy(), gdb=True, progress=False, labs_root=root)


def test_restarted_with_gdb_the_shell_refuses_while_stopped_and_works_after_detach(guest_lab):
    lab, root = guest_lab
    lab.down()
    lab = Lab.up(GUEST_LAB, strategy=TestGuestStrategy(), gdb=True, progress=False, labs_root=root)
    try:
        gdb = lab.gdb()
        assert gdb.symbols is None                                # a bzImage carries no symbols
        assert gdb.registers(["rip"])["rip"] != 0
        with pytest.raises(StoppedInGdb):
            lab.sh("true")
        gdb.detach()
        assert lab.sh("echo back").stdout == "back\n"
    finally:
        lab.down()


def test_compare_runs_the_command_on_both_labs_side_by_side(probe_lab, tmp_path):
    register_strategy("test-guest", TestGuestStrategy)
    other = f"kcmp-{os.getpid()}"
    a = Lab.up(other + "a", strategy=TestGuestStrategy(ssh=False), progress=False, labs_root=tmp_path)
    try:
        comparison = a.compare(a, "echo $((6*7))")
        assert comparison.a.result.stdout == comparison.b.result.stdout == "42\n"
        assert comparison.a.uname_v.startswith("#")              # Linux: "#1 SMP ..."
        text = str(comparison)
        assert text.splitlines()[0] == "$ echo $((6*7))" and " | " in text.splitlines()[1]
        with pytest.raises(TransportError, match="no shell"):
            a.compare(probe_lab, "uname -v")
    finally:
        a.down()
