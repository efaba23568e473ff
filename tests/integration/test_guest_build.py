"""The Linux test guest (a test substrate, not SmartOS): cached builds and real TCG boots."""
from __future__ import annotations

import json
import multiprocessing
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pexpect
import pytest

from tests.guest import build
from tests.guest.build import READY_LINE, TestGuest, ensure_test_guest
from tests.guest.errors import GuestBuildError
from tests.guest.qemu import free_tcp_port, qemu_argv

pytestmark = pytest.mark.guest

BOOT_TIMEOUT = 120       # seconds to the login prompt under TCG (measured: a few seconds)


class ConsoleGuest:
    """A test guest under QEMU/TCG, driven over its serial console with pexpect."""

    def __init__(self, guest: TestGuest, *, disks: tuple[Path, ...] = (),
                 cmdline: str | None = None):
        self.guest = guest
        self.ssh_port = free_tcp_port()
        argv = qemu_argv(guest, ssh_port=self.ssh_port, disks=disks, cmdline=cmdline)
        self.started = time.monotonic()
        self.console = pexpect.spawn(argv[0], argv[1:], timeout=BOOT_TIMEOUT,
                                     encoding="utf-8", codec_errors="replace")

    def wait_for_login_prompt(self) -> float:
        self.console.expect_exact(READY_LINE)
        self.console.expect_exact(build.LOGIN_PROMPT)
        return time.monotonic() - self.started

    def login(self) -> None:
        self.console.sendline("root")
        self.console.expect_exact("Password: ", timeout=30)
        self.console.sendline(self.guest.root_password)
        self.console.expect_exact(build.SHELL_PROMPT, timeout=30)

    def run(self, command: str, timeout: float = 60) -> tuple[int, str]:
        """Run a shell command; the markers are split so the echoed line cannot match."""
        self.console.sendline(f"echo __BEGIN''__; {command}; echo __RC''=$?")
        self.console.expect(r"__BEGIN__\r*\n", timeout=timeout)
        self.console.expect(r"__RC=(\d+)\r*\n", timeout=timeout)
        return int(self.console.match.group(1)), self.console.before.replace("\r", "")

    def check(self, command: str, timeout: float = 60) -> str:
        rc, out = self.run(command, timeout)
        assert rc == 0, f"{command!r} exited {rc}:\n{out}"
        return out

    def close(self) -> None:
        self.console.close(force=True)


@contextmanager
def logged_in_guest(guest: TestGuest, **kw) -> Iterator[ConsoleGuest]:
    """Boot ``guest`` to its login prompt and log in as root; always stop QEMU."""
    vm = ConsoleGuest(guest, **kw)
    try:
        vm.wait_for_login_prompt()
        vm.login()
        yield vm
    finally:
        vm.close()


@pytest.fixture(scope="module")
def base_guest() -> TestGuest:
    return ensure_test_guest("base")


@pytest.fixture(scope="module")
def logged_in(base_guest):
    with logged_in_guest(base_guest) as vm:
        yield vm


# --- building and the cache -----------------------------------------------------
@pytest.mark.timeout(600)
def test_second_build_call_reuses_the_cache(base_guest):
    started = time.monotonic()
    again = ensure_test_guest("base")
    assert time.monotonic() - started < 5
    assert again == base_guest
    assert base_guest.kernel.stat().st_size > 1_000_000
    assert base_guest.kernel_version in base_guest.kernel.parent.joinpath("guest.json").read_text()
    assert base_guest.kernel.parent.name.startswith("base-")


def test_changing_the_init_script_changes_the_cache_key(tmp_path, monkeypatch):
    rootfs = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", str(build.ROOTFS_DIR), str(rootfs)], check=True)
    before = build._cache_key(build._resolve_inputs("base"))
    monkeypatch.setattr(build, "ROOTFS_DIR", rootfs)
    assert build._cache_key(build._resolve_inputs("base")) == before
    with open(rootfs / "init", "a") as f:
        f.write("# edited\n")
    assert build._cache_key(build._resolve_inputs("base")) != before


def test_an_interrupted_build_leaves_no_cache_entry(tmp_path, monkeypatch):
    def half_build(inputs, out):
        (out / "vmlinuz").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "_build", half_build)
    with pytest.raises(KeyboardInterrupt):
        ensure_test_guest("base", cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [".base.lock"]


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(GuestBuildError, match="unknown test guest variant"):
        ensure_test_guest("illumos", cache_dir=tmp_path)


def _build_in(cache_dir: str) -> str:
    return str(ensure_test_guest("base", cache_dir=Path(cache_dir)).initrd)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_concurrent_builds_make_one_complete_entry(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        initrds = pool.map(_build_in, [str(tmp_path)] * 2)
    assert initrds[0] == initrds[1]
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert entries == [".base.lock", Path(initrds[0]).parent.name]
    manifest = json.loads((Path(initrds[0]).parent / "guest.json").read_text())
    assert manifest["initramfs_bytes"] == Path(initrds[0]).stat().st_size


# --- booting the base guest -----------------------------------------------------------
@pytest.mark.timeout(300)
def test_base_guest_boots_to_the_login_prompt_under_tcg(base_guest):
    vm = ConsoleGuest(base_guest)
    try:
        seconds = vm.wait_for_login_prompt()
    finally:
        vm.close()
    print(f"test guest: login prompt after {seconds:.1f}s under TCG")
    assert seconds < BOOT_TIMEOUT


@pytest.mark.timeout(300)
def test_root_logs_in_and_runs_the_guest_kernel(logged_in, base_guest):
    assert logged_in.check("uname -r").strip() == base_guest.kernel_version
    assert logged_in.check("hostname").strip() == "testguest"


@pytest.mark.timeout(300)
def test_guest_has_static_user_mode_networking(logged_in):
    assert "inet 10.0.2.15/24" in logged_in.check("ip -4 addr show dev eth0")
    assert "default via 10.0.2.2" in logged_in.check("ip route")


@pytest.mark.timeout(300)
def test_ssh_with_a_key_pushed_over_the_console_moves_files(logged_in):
    key = paramiko.ECDSAKey.generate()
    line = f"{key.get_name()} {key.get_base64()}"
    logged_in.check(f"printf '%s\\n' {shlex.quote(line)} > /root/.ssh/authorized_keys")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=logged_in.ssh_port, username="root", pkey=key,
                   allow_agent=False, look_for_keys=False, timeout=30, banner_timeout=60,
                   auth_timeout=60)
    try:
        payload = bytes(range(256)) * 64
        stdin, stdout, _ = client.exec_command("cat > /tmp/payload", timeout=60)
        stdin.write(payload)
        stdin.channel.shutdown_write()
        assert stdout.channel.recv_exit_status() == 0
        _, stdout, _ = client.exec_command("cat /tmp/payload", timeout=60)
        assert stdout.read() == payload
    finally:
        client.close()


@pytest.mark.timeout(300)
def test_poweroff_ends_qemu(base_guest):
    with logged_in_guest(base_guest) as vm:
        vm.console.sendline("poweroff -f")
        vm.console.expect(pexpect.EOF, timeout=60)


@pytest.mark.timeout(300)
def test_sysrq_crash_panics_and_the_guest_stays_halted(base_guest):
    with logged_in_guest(base_guest) as vm:
        vm.console.sendline("echo c > /proc/sysrq-trigger")
        vm.console.expect(r"Kernel panic - not syncing: sysrq triggered crash", timeout=60)
        vm.console.expect(r"end Kernel panic", timeout=60)
        time.sleep(2)
        assert vm.console.isalive(), "panic=0 should keep the guest halted, not exit QEMU"


# --- the zfs variant ----------------------------------------------------------------
ZFS_BUILD_TIMEOUT = 3600


@pytest.fixture(scope="module")
def zfs_guest() -> TestGuest:
    return ensure_test_guest("zfs")


@pytest.mark.zfs
@pytest.mark.slow
@pytest.mark.timeout(ZFS_BUILD_TIMEOUT)
def test_zfs_guest_reports_zpool_version(zfs_guest):
    with logged_in_guest(zfs_guest) as vm:
        out = vm.check("zpool version")
    assert re.search(r"^zfs-\d+\.\d+\.\d+", out, re.MULTILINE), out
    assert re.search(r"^zfs-kmod-\d+\.\d+\.\d+", out, re.MULTILINE), out


@pytest.mark.zfs
@pytest.mark.slow
@pytest.mark.timeout(ZFS_BUILD_TIMEOUT)
def test_zfs_guest_builds_and_scrubs_a_mirror_on_partitioned_disks(zfs_guest, tmp_path):
    disks = []
    for name in ("d0.img", "d1.img"):
        disk = tmp_path / name
        with open(disk, "wb") as f:
            f.truncate(256 * 1024 * 1024)
        disks.append(disk)
    with logged_in_guest(zfs_guest, disks=tuple(disks)) as vm:
        for dev in ("/dev/vda", "/dev/vdb"):
            vm.check(f"echo 'label: gpt' | sfdisk -q {dev} && echo ',,' | sfdisk -q --append {dev}")
        vm.check("ls /dev/vda1 /dev/vdb1")
        vm.check("zpool create -f tank mirror /dev/vda1 /dev/vdb1", timeout=120)
        vm.check("dd if=/dev/urandom of=/tank/data bs=1M count=8 && sync", timeout=120)
        vm.check("zpool scrub -w tank", timeout=300)
        status = vm.check("zpool status tank")
        assert re.search(r"state:\s+ONLINE", status), status
        assert "mirror-0" in status and "vda1" in status and "vdb1" in status, status
        assert re.search(r"scan: scrub repaired 0B .* with 0 errors", status), status
        assert "errors: No known data errors" in status, status
