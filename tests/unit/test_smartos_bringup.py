"""SmartOSStrategy's host side: what a lab directory holds before the first boot (no QEMU run)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.lab import LabConfig, LabDir
from smartos_lab.machine.disks import image_info
from smartos_lab.machine.spec import DiskBoot, KernelBoot
from smartos_lab.smartos.bringup import SmartOSState, SmartOSStrategy, describe, hostname_for, state_of
from smartos_lab.smartos.milestones import Milestone
from smartos_lab.steps import Steps
from tests.images_support.disks import TEST_UNIX
from tests.images_support.isos import TS as ISO_TS
from tests.images_support.isos import make_smartos_test_iso

from .test_smartos_boot import _tiny_usb_image, needs_tools


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def build_folder(tmp_path):
    """A researcher's build output: output/platform-<TS>/ with unix and boot_archive."""
    pdir = tmp_path / "output" / "platform-20250724T001011Z"
    for rel in ("i86pc/kernel/amd64/unix", "i86pc/amd64/boot_archive"):
        (pdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (pdir / rel).write_bytes(b"x")
    return pdir


def test_a_build_folder_gets_a_direct_boot_with_answers_password_and_zones_disk(tmp_path, build_folder):
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(build_folder), boot="auto", memory_mib=2048)
    strategy = SmartOSStrategy()
    strategy.prepare(lab, config, steps=Steps("test"))
    assert state_of(config).boot_path == "direct"
    assert mode(lab.file("root.password")) == 0o600
    assert mode(lab.file("answers.json")) == 0o600
    answers = json.loads(lab.file("answers.json").read_text())
    assert answers["root_password"] == lab.file("root.password").read_text().strip()
    assert answers["hostname"] == "lab1"
    assert (lab.disks_dir / "zones0.qcow2").is_file()

    spec = strategy.spec(lab, config, "tcg")
    assert isinstance(spec.boot, KernelBoot)
    assert spec.boot.kernel.as_posix().endswith("/pi/platform/i86pc/kernel/amd64/unix")
    assert spec.boot.modules[-1] == f"{lab.file('answers.json')} type=file name=answers.json"
    assert [d.path for d in spec.disks] == [lab.disks_dir / "zones0.qcow2"]


def test_preparing_again_keeps_the_password(tmp_path, build_folder):
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(build_folder), memory_mib=2048)
    SmartOSStrategy().prepare(lab, config, steps=Steps("test"))
    first = lab.file("root.password").read_text()
    SmartOSStrategy().prepare(lab, config, steps=Steps("test"))
    assert lab.file("root.password").read_text() == first


def test_kernel_flags_go_to_a_direct_boot_and_are_refused_for_a_usb_boot(tmp_path, build_folder):
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(build_folder), memory_mib=2048, kernel_args="-kv")
    strategy = SmartOSStrategy()
    strategy.prepare(lab, config, steps=Steps("test"))
    assert strategy.spec(lab, config, "kvm").boot.cmdline.startswith("-kv -B smartos=true,")
    state_of(config).boot_path = "usb"
    with pytest.raises(ConfigError, match="direct boot"):
        strategy.spec(lab, config, "kvm")


@needs_tools
def test_a_usb_image_gets_a_private_configured_copy_and_a_disk_boot(tmp_path):
    image = tmp_path / "smartos.img"
    _tiny_usb_image(image)
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(image), boot="auto", memory_mib=2048)
    strategy = SmartOSStrategy()
    strategy.prepare(lab, config, steps=Steps("test"))
    assert state_of(config).boot_path == "usb"
    assert mode(lab.file("usb.img")) == 0o600
    spec = strategy.spec(lab, config, "tcg")
    assert isinstance(spec.boot, DiskBoot)
    usb = spec.disks[0]
    assert (usb.path, usb.format) == (lab.file("usb.qcow2"), "qcow2")   # checkpoints need qcow2
    assert image_info(usb.path).backing_file == lab.file("usb.img")


@needs_tools
def test_a_second_prepare_keeps_the_usb_overlay_the_guest_wrote_to(tmp_path):
    image = tmp_path / "smartos.img"
    _tiny_usb_image(image)
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(image), boot="auto", memory_mib=2048)
    SmartOSStrategy().prepare(lab, config, steps=Steps("test"))
    before = lab.file("usb.qcow2").stat().st_mtime_ns
    SmartOSStrategy().prepare(lab, config, steps=Steps("test"))
    assert lab.file("usb.qcow2").stat().st_mtime_ns == before


def test_a_new_build_folder_switches_a_usb_lab_to_a_direct_boot(tmp_path, build_folder):
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(build_folder), boot="auto", memory_mib=2048,
                       strategy_state=SmartOSState(boot_path="usb", usb_source="/old/smartos.img"))
    strategy = SmartOSStrategy()
    strategy.prepare(lab, config, steps=Steps("test"))
    assert isinstance(strategy.spec(lab, config, "tcg").boot, KernelBoot)


def test_an_iso_gets_a_direct_boot_of_the_unix_and_boot_archive_copied_out_of_it(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "smartos.iso")      # test files in the real layout
    lab = LabDir("lab1", tmp_path / "labs")
    config = LabConfig(name="lab1", image=str(iso), boot="auto", memory_mib=2048)
    strategy = SmartOSStrategy()
    strategy.prepare(lab, config, steps=Steps("test"))
    assert state_of(config).boot_path == "direct" and config.release == ISO_TS
    spec = strategy.spec(lab, config, "tcg")
    assert isinstance(spec.boot, KernelBoot)
    assert spec.boot.kernel == lab.file("pi") / "platform/i86pc/kernel/amd64/unix"
    assert spec.boot.kernel.read_bytes() == TEST_UNIX
    assert spec.boot.modules[0].startswith(f"{lab.file('pi')}/platform/i86pc/amd64/boot_archive ")
    assert not lab.file("usb.img").exists()


def test_usb_boot_of_an_iso_is_refused_because_its_loader_conf_cannot_be_edited(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "smartos.iso")
    config = LabConfig(name="lab1", image=str(iso), boot="usb")
    with pytest.raises(ConfigError, match=r"is an ISO: boot='usb' needs a USB image \(.*loader\.conf"
                                          r".*; boot='auto' or 'direct'"):
        SmartOSStrategy().prepare(LabDir("lab1", tmp_path / "labs"), config, steps=Steps("test"))


def test_usb_boot_of_a_platform_folder_is_refused(tmp_path, build_folder):
    config = LabConfig(name="lab1", image=str(build_folder), boot="usb")
    with pytest.raises(ConfigError, match="is a platform folder: boot='usb' needs a USB image"):
        SmartOSStrategy().prepare(LabDir("lab1", tmp_path / "labs"), config, steps=Steps("test"))


def test_lab_names_become_valid_hostnames():
    assert hostname_for("lab1") == "lab1"
    assert hostname_for("my_lab.2") == "my-lab-2"
    assert hostname_for("__") == "smartos"


def test_milestones_read_as_progress_lines():
    assert describe(Milestone("setup:Storage", 12.4)) == "setup: Storage  [12 s]"
    assert describe(Milestone("answered:admin_ip", 3, "dhcp")) == "typed answer for admin_ip: dhcp  [3 s]"
    assert describe(Milestone("var_dataset", 90)).startswith("setup: copying /var")


def test_the_kernel_milestone_shows_the_platform_version():
    m = Milestone("kernel", 40, "SunOS Release 5.11 Version joyent_20250724T001011Z 64-bit")
    assert describe(m) == "kernel started (joyent_20250724T001011Z)  [40 s]"


@pytest.fixture
def identify_calls(monkeypatch):
    """Every path identified, wherever the package calls images.local.identify from."""
    import smartos_lab.images.local as local
    import smartos_lab.images.platform as platform
    import smartos_lab.smartos.bringup as bringup

    calls, real = [], local.identify

    def counting(path):
        calls.append(path)
        return real(path)
    for module in (local, platform, bringup):
        monkeypatch.setattr(module, "identify", counting)
    return calls


def test_an_iso_is_identified_once_for_the_whole_prepare(tmp_path, identify_calls):
    iso = make_smartos_test_iso(tmp_path / "smartos.iso")
    config = LabConfig(name="lab1", image=str(iso), boot="auto", memory_mib=2048)
    SmartOSStrategy().prepare(LabDir("lab1", tmp_path / "labs"), config, Steps("test"))
    assert len(identify_calls) == 1


@needs_tools
def test_a_usb_image_is_identified_once_and_an_identified_one_not_again(tmp_path, identify_calls):
    from smartos_lab.images.local import identify
    image = tmp_path / "smartos.img"
    _tiny_usb_image(image)
    config = LabConfig(name="lab1", image=str(image), boot="auto", memory_mib=2048)
    SmartOSStrategy().prepare(LabDir("lab1", tmp_path / "labs"), config, Steps("test"))
    assert len(identify_calls) == 1
    known = identify(image)
    identify_calls.clear()
    config = LabConfig(name="lab2", image=str(image), boot="auto", memory_mib=2048)
    SmartOSStrategy(image=known).prepare(LabDir("lab2", tmp_path / "labs"), config, Steps("test"))
    assert identify_calls == []
