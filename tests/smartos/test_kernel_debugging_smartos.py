"""The kernel-debugging loop on a real SmartOS (only when SMARTOS_LAB_IMAGE names an image).

Boot with ``-k`` and QEMU's gdb stub; gdb stops in ``mutex_enter`` of the real
``unix``; a DTrace ``panic()`` stops in kmdb; kmdb's ``::status``, ``::stack``
and ``::msgbuf`` are parsed; ``:c`` lets the kernel save its dump and reboot;
the next boot's savecore leaves ``vmdump.N``; ``lab.crash`` expands and
analyzes it.  Under TCG this takes hours.
"""
from __future__ import annotations

import os
import time

import pytest

from smartos_lab.errors import DumpNotFound, GuestPanic, StoppedInGdb
from smartos_lab.lab import Lab

pytestmark = [pytest.mark.smartos, pytest.mark.slow, pytest.mark.timeout(8 * 3600)]

NAME = "smartos-kernel"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("labs")
    lab = Lab.up(NAME, image=os.environ["SMARTOS_LAB_IMAGE"], boot="direct", kernel_args="-k",
                 gdb=True, progress=print, labs_root=root)
    yield lab
    lab.destroy()


def test_gdb_breaks_in_a_unix_function_and_the_lab_runs_on(lab):
    gdb = lab.gdb()
    try:
        assert gdb.symbols is not None and gdb.symbols.name == "unix"
        bp = gdb.break_at("mutex_enter")
        gdb.cont()
        stop = gdb.wait_stop(timeout=1800)
        assert stop.function == "mutex_enter"
        assert gdb.registers(["rip"])["rip"] == bp.address
        assert len(gdb.read_memory(gdb.registers(["rdi"])["rdi"], 8)) == 8
        with pytest.raises(StoppedInGdb):
            lab.sh("true")
    finally:
        gdb.detach()
    assert lab.check("uname -v").stdout.startswith("joyent_")


def test_panic_kmdb_dump_reboot_savecore_analyze(lab):
    with pytest.raises(DumpNotFound):
        lab.crash.analyze(99)
    with pytest.raises(GuestPanic) as err:
        lab.sh("dtrace -w -n 'BEGIN { panic(); }'", via="console", timeout=1800)
    assert "dtrace: panic action" in err.value.panic
    assert lab.kmdb.active()
    status = lab.kmdb.status()
    assert status.panic_message and "dtrace" in status.panic_message
    assert lab.kmdb.stack()
    assert lab.kmdb.msgbuf().panic is not None
    lab.kmdb.cont()                                   # "continue to save dump", then reboot
    deadline = time.monotonic() + 3600
    while lab.machine.alive() and time.monotonic() < deadline:
        time.sleep(5)
    assert not lab.machine.alive()

    again = Lab.up(NAME, progress=print, labs_root=lab.lab_dir.path.parent)
    try:
        dumps = []
        deadline = time.monotonic() + 3600
        while not dumps and time.monotonic() < deadline:
            dumps = again.crash.dumps()
            time.sleep(0 if dumps else 30)
        assert dumps and dumps[-1].expanded
        analysis = again.crash.analyze(dumps[-1].number)
        assert "dtrace" in (analysis.panic_message or "")
        assert analysis.stack and analysis.msgbuf.panic is not None
    finally:
        again.down()
