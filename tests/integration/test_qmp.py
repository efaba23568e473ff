"""QMP against a real QEMU with no guest OS (cheap: SeaBIOS finds nothing to boot).

Also fake QMP servers for the failure cases: a socket that never greets and a
server that never answers.
"""
from __future__ import annotations

import asyncio
import os
import socket
import statistics
import struct
import subprocess
import threading
import time

import pytest

from smartos_lab.errors import QemuExited, QMPError, QMPTimeout
from smartos_lab.machine.disks import create_blank
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.qmp import PNG_MAGIC, QMP
from smartos_lab.machine.spec import Disk
from tests.guest.machines import bare_spec
from tests.threads import run_in_threads

NAME = f"qmp-{os.getpid()}"


@pytest.fixture(scope="module")
def machine():
    m = QemuMachine.launch(bare_spec(NAME))
    try:
        yield m
    finally:
        m.shutdown()


def test_query_status_round_trip_is_fast(machine):
    machine.qmp.status()
    samples = []
    for _ in range(200):
        start = time.perf_counter()
        machine.qmp.status()
        samples.append(time.perf_counter() - start)
    p50 = statistics.median(samples) * 1000
    p90 = sorted(samples)[int(len(samples) * 0.9)] * 1000
    print(f"\nQMP query-status round trip: p50 {p50:.2f} ms, p90 {p90:.2f} ms")
    assert p50 < 20


def test_many_threads_share_one_connection_and_each_gets_its_own_answer(machine):
    key_of = {"query-status": "status", "query-kvm": "enabled", "query-version": "qemu"}
    commands = list(key_of)

    def caller(i: int) -> None:
        for n in range(50):
            cmd = commands[(i + n) % len(commands)]
            reply = machine.qmp.execute(cmd, timeout=30)
            assert key_of[cmd] in reply, (cmd, reply)

    assert run_in_threads(caller, 8, timeout=60) == []


def test_status_pause_resume_and_their_events(machine):
    assert machine.qmp.status() == "running"
    machine.qmp.event_mark()
    machine.qmp.pause()
    assert machine.qmp.status() == "paused"
    assert machine.qmp.wait_event("STOP", 5)["event"] == "STOP"
    machine.qmp.resume()
    assert machine.qmp.status() == "running"
    assert machine.qmp.wait_event("RESUME", 5)["event"] == "RESUME"
    assert [e["event"] for e in machine.qmp.events][-2:] == ["STOP", "RESUME"]


def test_an_event_already_returned_is_not_returned_again(machine):
    machine.qmp.event_mark()
    machine.qmp.pause()
    machine.qmp.resume()
    machine.qmp.wait_event("STOP", 5)
    with pytest.raises(QMPTimeout, match="no QMP event STOP within 0.3 s"):
        machine.qmp.wait_event("STOP", 0.3)


def test_screendump_works_from_inside_a_running_asyncio_loop(machine, tmp_path):
    async def in_a_notebook_cell():
        assert asyncio.get_running_loop().is_running()
        return machine.qmp.screendump(tmp_path / "screen.png")

    path = asyncio.run(in_a_notebook_cell())
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])          # IHDR
    assert width >= 320 and height >= 200 and len(data) > 200


def test_hmp_info_version_matches_the_binary(machine):
    out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    version = out.split("version ")[1].split()[0]
    assert machine.qmp.hmp("info version").startswith(version)


def test_an_unknown_command_is_a_qmp_error(machine):
    with pytest.raises(QMPError, match="CommandNotFound"):
        machine.qmp.execute("no-such-command")


def test_send_keys_accepts_chords_and_text(machine):
    machine.qmp.send_keys(["ctrl", "alt", "f1"])
    machine.qmp.send_keys("ls -l /tmp\n")
    with pytest.raises(QMPError, match="cannot type"):
        machine.qmp.send_keys("é")


def test_hotplugged_disk_appears_in_query_block_and_on_a_root_port(machine, tmp_path):
    disk = create_blank(tmp_path / "hot.qcow2", "16M")
    assert machine.qmp.add_disk(disk, node_id="hot0") == "dev-hot0"
    inserted = {b["inserted"]["node-name"]: b for b in machine.qmp.execute("query-block")
                if b.get("inserted")}
    assert inserted["hot0"]["inserted"]["file"] == str(disk)
    assert inserted["hot0"]["qdev"].startswith("/machine/peripheral/dev-hot0")
    ports = {d["qdev_id"]: d["pci_bridge"]["devices"] for bus in machine.qmp.execute("query-pci")
             for d in bus["devices"] if d.get("pci_bridge")}
    assert [d["qdev_id"] for d in ports["hp0"]] == ["dev-hot0"]


def test_when_every_root_port_is_used_hotplug_says_so(machine, tmp_path):
    # hp0 holds hot0 from the test above (or gets one now); fill the rest
    used = {d["qdev_id"] for bus in machine.qmp.execute("query-pci") for d in bus["devices"]
            if d.get("pci_bridge") and d["pci_bridge"]["devices"]}
    for i in range(len(used), 2):
        machine.qmp.add_disk(create_blank(tmp_path / f"f{i}.qcow2", "1M"), node_id=f"fill{i}")
    with pytest.raises(QMPError, match="no free hotplug slot"):
        machine.qmp.add_disk(create_blank(tmp_path / "x.qcow2", "1M"), node_id="extra")
    names = {b["inserted"]["node-name"] for b in machine.qmp.execute("query-block")
             if b.get("inserted")}
    assert "extra" not in names                         # the blockdev was removed again


def test_usb_hotplug_needs_a_usb_controller(machine, tmp_path):
    with pytest.raises(QMPError, match="xhci"):
        machine.qmp.add_disk(create_blank(tmp_path / "u.qcow2", "1M"), node_id="u0",
                             interface="usb")


def test_usb_disks_hotplug_and_unplug_without_guest_help(tmp_path):
    base = create_blank(tmp_path / "boot.qcow2", "1M")
    spec = bare_spec(f"usb-{os.getpid()}", disks=(Disk(base, interface="usb"),))
    with QemuMachine.launch(spec) as m:
        disk = create_blank(tmp_path / "u.qcow2", "16M")
        m.qmp.add_disk(disk, node_id="u1", interface="usb")
        assert "u1" in {b["inserted"]["node-name"] for b in m.qmp.execute("query-block")
                        if b.get("inserted")}
        m.qmp.remove_disk("u1", timeout=10)
        assert "u1" not in {b["inserted"]["node-name"] for b in m.qmp.execute("query-block")
                            if b.get("inserted")}


def test_every_disk_interface_is_accepted_by_real_qemu(tmp_path):
    iso = tmp_path / "cd.iso"
    iso.write_bytes(bytes(2048 * 16))
    spec = bare_spec(f"ifaces-{os.getpid()}", disks=(
        Disk(create_blank(tmp_path / "v.qcow2", "8M"), interface="virtio", serial="VIRT1"),
        Disk(create_blank(tmp_path / "a.qcow2", "8M"), interface="ahci"),
        Disk(iso, interface="ide", media="cdrom", format="raw"),
        Disk(create_blank(tmp_path / "n.qcow2", "8M"), interface="nvme"),
        Disk(create_blank(tmp_path / "u.qcow2", "8M"), interface="usb", readonly=True),
    ))
    with QemuMachine.launch(spec) as m:
        blocks = {b["inserted"]["node-name"]: b for b in m.qmp.execute("query-block")
                  if b.get("inserted")}
        assert set(blocks) == {"disk0", "disk1", "disk2", "disk3", "disk4"}
        assert blocks["disk2"]["inserted"]["ro"] and blocks["disk4"]["inserted"]["ro"]
        assert not blocks["disk0"]["inserted"]["ro"]
        assert m.qmp.status() == "running"


def test_a_killed_qemu_gives_qmp_errors_not_hangs():
    m = QemuMachine.launch(bare_spec(f"dead-{os.getpid()}"))
    try:
        os.kill(m.pid, 9)
        m._proc.wait(10)
        start = time.monotonic()
        with pytest.raises(QMPError):
            m.qmp.status()
        with pytest.raises(QMPError):
            m.qmp.wait_event("STOP", 5)
        assert time.monotonic() - start < 3
        err = m.exit_error()
        assert isinstance(err, QemuExited) and err.returncode == -9
        assert "SIGKILL" in str(err)
    finally:
        m.shutdown()
    assert not m.run_dir.path.exists()


def test_a_socket_that_never_greets_times_out(tmp_path):
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        qmp = QMP(path)
        start = time.monotonic()
        with pytest.raises(QMPTimeout, match="connect to QMP socket"):
            qmp.connect(timeout=0.5)
        assert time.monotonic() - start < 3
        qmp.close()
    finally:
        server.close()


def test_a_server_that_never_answers_times_out_and_a_closed_one_errors(tmp_path):
    path = tmp_path / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    conns = []

    def serve():
        conn, _ = server.accept()
        conns.append(conn)
        conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, '
                     b'"package": ""}, "capabilities": []}}\r\n')
        conn.recv(4096)                                     # qmp_capabilities
        conn.sendall(b'{"return": {}}\r\n')

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    qmp = QMP(path, timeout=0.5)
    try:
        qmp.connect()
        t.join(5)
        with pytest.raises(QMPTimeout, match="QMP query-status: no answer within 0.5 s"):
            qmp.status()
        conns[0].close()
        time.sleep(0.2)
        with pytest.raises(QMPError):
            qmp.status()
    finally:
        qmp.close()
        server.close()


def test_connecting_to_a_missing_socket_is_a_qmp_error(tmp_path):
    qmp = QMP(tmp_path / "nope.sock")
    with pytest.raises(QMPError, match="nope.sock"):
        qmp.connect(timeout=1)
    qmp.close()
    qmp.close()                                             # idempotent
