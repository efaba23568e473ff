"""QemuMachine with the Linux test guest (a test substrate, not SmartOS), plus bad input.

One guest boots for the whole module (the host has 2 cores).
"""
from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError, ImageError, PortInUse, QemuExited, QemuNotFound, RunDirError
from smartos_lab.machine.accel import detect_accel
from smartos_lab.machine.disks import create_blank, create_overlay, image_info
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.shell import ConsoleShell
from smartos_lab.machine.spec import Disk, KernelBoot, MachineSpec, Nic, PortForward
from smartos_lab.paths import run_root
from tests.guest.build import READY_LINE, ensure_test_guest
from tests.guest.machines import booted_guest, guest_spec

NAME = f"mach-{os.getpid()}"
MARKER = b"written-by-the-guest-into-the-overlay"


@pytest.fixture(scope="module")
def guest():
    return ensure_test_guest()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A raw 'pristine' image with recognisable content."""
    path = tmp_path_factory.mktemp("base") / "base.img"
    path.write_bytes(b"PRISTINE" * (4 << 17))                  # 4 MiB
    return path


@pytest.fixture(scope="module")
def overlay(base, tmp_path_factory):
    return create_overlay(base, tmp_path_factory.mktemp("lab") / "disk.qcow2")


@pytest.fixture(scope="module")
def machine(guest, overlay, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "serial.log"
    with booted_guest(NAME, guest=guest, ssh=True, disks=(Disk(overlay),), serial_log=log) as b:
        yield b.machine


@pytest.fixture(scope="module")
def shell(machine):
    return ConsoleShell(machine.console)


pytestmark = pytest.mark.guest


def test_launch_gives_a_running_machine_with_the_detected_accelerator(machine):
    assert machine.qmp.status() == "running"
    assert machine.alive() and machine.exit_error() is None
    assert machine.accel.accel == detect_accel().accel
    print(f"\nlaunch to running: {machine.startup_seconds:.3f} s ({machine.accel.reason})")
    assert machine.startup_seconds < 30


def test_run_dir_is_private_and_describes_the_machine(machine):
    rd = machine.run_dir
    assert stat.S_IMODE(rd.path.stat().st_mode) == 0o700
    assert int(rd.pidfile.read_text()) == machine.pid
    meta = rd.read_meta()
    assert meta["pid"] == machine.pid and meta["ports"] == machine.ports
    assert meta["accel"]["accel"] == machine.accel.accel
    assert meta["serial_log"] == str(machine.serial_log)
    assert meta["spec"]["name"] == NAME


def test_ssh_forward_got_a_free_host_port_that_reaches_dropbear(machine):
    port = machine.ports["ssh"]
    assert 1024 <= port < 65536
    deadline = time.monotonic() + 60
    banner = b""
    while time.monotonic() < deadline and not banner.startswith(b"SSH-"):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                banner = s.recv(64)
        except OSError:
            time.sleep(1)
    assert banner.startswith(b"SSH-2.0-")


def test_everything_the_guest_prints_is_in_the_serial_log(machine):
    assert READY_LINE in machine.serial_log.read_text(errors="replace")


def test_guest_writes_reach_the_overlay_and_never_the_base(machine, shell, base, overlay, tmp_path):
    before = (base.stat().st_mtime_ns, hashlib.sha256(base.read_bytes()).hexdigest())
    r = shell.run(f"printf %s {MARKER.decode()} | dd of=/dev/vda conv=fsync 2>&1; "
                  "dd if=/dev/vda bs=64 count=1 2>/dev/null")
    assert r.ok and MARKER.decode() in r.stdout
    copy = tmp_path / "overlay.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(overlay), str(copy)], check=True)
    data = copy.read_bytes()
    assert data.startswith(MARKER)
    assert data[len(MARKER):len(MARKER) + 16] == (b"PRISTINE" * 8)[len(MARKER) % 8:][:16]
    assert (base.stat().st_mtime_ns, hashlib.sha256(base.read_bytes()).hexdigest()) == before
    assert image_info(overlay).backing_file == base.resolve()


def test_pause_and_resume_stop_and_continue_the_guest(machine, shell):
    machine.qmp.event_mark()
    machine.qmp.pause()
    assert machine.qmp.wait_event("STOP", 5)
    assert machine.qmp.status() == "paused"
    machine.qmp.resume()
    assert machine.qmp.wait_event("RESUME", 5)
    assert shell.run("echo alive").stdout == "alive\n"


def test_screendump_of_the_guest_is_a_png(machine, tmp_path):
    path = machine.qmp.screendump(tmp_path / "guest.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_hotplugged_disk_is_seen_by_the_guest_and_unplugged_again(machine, shell, tmp_path):
    disk = create_blank(tmp_path / "hot.qcow2", "32M")
    machine.qmp.add_disk(disk, node_id="hot1")
    try:
        r = shell.run("for i in $(seq 50); do [ -b /dev/vdb ] && break; sleep 0.2; done; "
                      "cat /sys/block/vdb/size")
        assert r.ok and r.stdout.strip() == str((32 << 20) // 512)
    finally:
        machine.qmp.remove_disk("hot1", timeout=30)
    assert "hot1" not in {b["inserted"]["node-name"] for b in machine.qmp.execute("query-block")
                          if b.get("inserted")}
    assert shell.run("[ -b /dev/vdb ]").exit_status == 1


def test_another_handle_can_attach_while_the_owner_holds_qmp(machine):
    other = QemuMachine.attach(NAME)
    try:
        assert other.pid == machine.pid
        assert other.ports == machine.ports
        assert other.spec == machine.spec
        assert other.qmp.status() == "running"
        assert other.alive()
    finally:
        other.detach()
    assert machine.alive()


def test_a_second_launch_with_the_same_name_is_refused(machine, guest):
    with pytest.raises(RunDirError, match="already running"):
        QemuMachine.launch(guest_spec(NAME, guest))
    assert machine.alive()


# --- bad input: fails before (or right after) starting QEMU, leaves nothing behind -----------
def no_run_dir(name: str) -> bool:
    return not (run_root() / name).exists()


def test_a_missing_qemu_binary_is_qemu_not_found(guest):
    with pytest.raises(QemuNotFound, match="apt-get install qemu-system-x86"):
        QemuMachine.launch(guest_spec("nobin", guest), qemu_binary="/nonexistent")
    assert no_run_dir("nobin")


def test_a_missing_disk_image_is_an_image_error(guest, tmp_path):
    spec = guest_spec("noimg", guest, disks=(Disk(tmp_path / "missing.qcow2"),))
    with pytest.raises(ImageError, match="no such image: .*missing.qcow2"):
        QemuMachine.launch(spec)
    assert no_run_dir("noimg")


def test_a_text_file_as_disk_image_is_an_image_error(guest, tmp_path):
    text = tmp_path / "readme.txt"
    text.write_text("this is not a disk\n")
    spec = guest_spec("txtimg", guest, disks=(Disk(text, format="raw"),))
    with pytest.raises(ImageError, match="not a disk image"):
        QemuMachine.launch(spec)


def test_a_missing_kernel_is_an_image_error(tmp_path):
    spec = MachineSpec(name="nokernel", boot=KernelBoot(tmp_path / "vmlinuz"))
    with pytest.raises(ImageError, match="no such kernel"):
        QemuMachine.launch(spec)


def test_a_port_already_in_use_is_port_in_use_naming_the_port(guest):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        spec = guest_spec("busyport", guest,
                          nics=(Nic(forwards=(PortForward(22, host_port=port, name="ssh"),)),))
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}.*'ssh'.*in use"):
            QemuMachine.launch(spec)
    assert no_run_dir("busyport")


def test_qemu_dying_at_start_is_qemu_exited_with_its_stderr(guest):
    spec = guest_spec("badarg", guest, extra_args=("-device", "no-such-device-xyz"))
    with pytest.raises(QemuExited) as exc:
        QemuMachine.launch(spec)
    err = exc.value
    assert err.returncode == 1
    assert "no-such-device-xyz" in err.stderr and "no-such-device-xyz" in str(err)
    assert "-device" in err.argv
    assert no_run_dir("badarg")


def test_a_spec_with_a_bad_name_is_refused_before_anything_starts(guest):
    with pytest.raises(ConfigError, match="invalid lab name"):
        QemuMachine.launch(guest_spec("../escape", guest))
    assert not Path(run_root().parent / "escape").exists()
