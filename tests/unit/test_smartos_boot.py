"""Machine specs for booting SmartOS: direct platform boot and USB image boot (no QEMU run)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.machine.accel import AccelChoice
from smartos_lab.machine.argv import build_argv
from smartos_lab.machine.rundir import RunDir
from smartos_lab.machine.spec import DiskBoot, KernelBoot
from smartos_lab.smartos.boot import (
    GIB,
    BootTimeouts,
    direct_boot_spec,
    kernel_cmdline,
    loader_conf_local,
    prepare_usb_image,
    usb_boot_spec,
    zones_disk_size,
)

TCG = AccelChoice("tcg", "TCG: test")
KVM = AccelChoice("kvm", "KVM: test")
RD = RunDir(Path("/run/sl/lab1"))


def argv(spec, accel=TCG):
    return build_argv(spec, qemu_binary="qemu-system-x86_64", accel=accel, run_dir=RD,
                      host_ports={"ssh": 2222})


def values(args, flag):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


@pytest.fixture
def platform(tmp_path):
    root = tmp_path / "pi" / "platform"
    unix = root / "i86pc/kernel/amd64/unix"
    archive = root / "i86pc/amd64/boot_archive"
    for f in (unix, archive):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    answers = tmp_path / "answers.json"
    answers.write_text("{}")
    return unix, archive, answers


def test_kernel_command_line_sets_smartos_and_the_serial_console():
    assert kernel_cmdline() == '-B smartos=true,console=ttya,ttya-mode="115200,8,n,1,-"'
    assert kernel_cmdline("ttyb", {"noimport": "true"}) == \
        '-B smartos=true,console=ttyb,ttyb-mode="115200,8,n,1,-",noimport=true'
    with pytest.raises(ConfigError):
        kernel_cmdline("text")
    with pytest.raises(ConfigError):
        kernel_cmdline(properties={"a": "b,c"})


def test_direct_boot_passes_unix_boot_archive_and_answers_as_multiboot_modules(platform, tmp_path):
    unix, archive, answers = platform
    spec = direct_boot_spec("lab1", unix=unix, boot_archive=archive, answers_file=answers,
                            zones_disks=[tmp_path / "zones.qcow2"], accel="tcg")
    assert isinstance(spec.boot, KernelBoot)
    args = argv(spec)
    assert values(args, "-kernel") == [str(unix)]
    assert values(args, "-append") == ['-B smartos=true,console=ttya,ttya-mode="115200,8,n,1,-"']
    assert values(args, "-initrd") == [
        f"{archive} type=rootfs name=ramdisk,{answers} type=file name=answers.json"]
    assert "-no-reboot" in args


def test_direct_boot_includes_the_boot_archive_hash_when_present(platform, tmp_path):
    unix, archive, _ = platform
    archive.with_name("boot_archive.hash").write_text("abc")
    spec = direct_boot_spec("lab1", unix=unix, boot_archive=archive,
                            zones_disks=[tmp_path / "z.qcow2"], accel="kvm")
    assert spec.boot.modules == (f"{archive} type=rootfs name=ramdisk",
                                 f"{archive}.hash type=hash name=ramdisk")


def test_kernel_outside_a_platform_tree_is_refused(tmp_path):
    unix = tmp_path / "platform-20250724T001011Z/i86pc/kernel/amd64/unix"
    unix.parent.mkdir(parents=True)
    unix.write_bytes(b"x")
    with pytest.raises(ConfigError, match="platform/i86pc/kernel/amd64/unix"):
        direct_boot_spec("lab1", unix=unix, boot_archive=unix, zones_disks=[tmp_path / "z"],
                         accel="tcg")


@pytest.mark.parametrize("bad", ["with,comma", "with space"])
def test_module_paths_qemu_cannot_pass_are_refused(tmp_path, bad):
    root = tmp_path / bad / "platform"
    unix = root / "i86pc/kernel/amd64/unix"
    unix.parent.mkdir(parents=True)
    unix.write_bytes(b"x")
    with pytest.raises(ConfigError, match="comma or a space"):
        direct_boot_spec("lab1", unix=unix, boot_archive=unix, zones_disks=[tmp_path / "z"],
                         accel="tcg")


def test_tcg_gets_haswell_and_e1000_kvm_gets_host_cpu_and_virtio(platform, tmp_path):
    unix, archive, _ = platform
    common = dict(unix=unix, boot_archive=archive, zones_disks=[tmp_path / "z.qcow2"])
    tcg = argv(direct_boot_spec("lab1", accel="tcg", **common), TCG)
    kvm = argv(direct_boot_spec("lab1", accel="kvm", **common), KVM)
    assert values(tcg, "-cpu") == ["Haswell"] and values(kvm, "-cpu") == ["host"]
    assert values(tcg, "-machine") == ["q35"]
    assert any(v.startswith("e1000,") for v in values(tcg, "-device"))
    assert any(v.startswith("virtio-net-pci,") for v in values(kvm, "-device"))


def test_ssh_is_forwarded_from_localhost_and_the_zones_disk_is_virtio(platform, tmp_path):
    unix, archive, _ = platform
    spec = direct_boot_spec("lab1", unix=unix, boot_archive=archive,
                            zones_disks=[tmp_path / "z.qcow2"], accel="tcg")
    args = argv(spec)
    assert values(args, "-netdev") == ["user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22"]
    assert any(v.startswith("virtio-blk-pci,drive=zones0") for v in values(args, "-device"))


def test_less_than_2_gib_of_ram_is_refused(platform, tmp_path):
    unix, archive, _ = platform
    with pytest.raises(ConfigError, match="2048"):
        direct_boot_spec("lab1", unix=unix, boot_archive=archive, memory_mib=1024,
                         zones_disks=[tmp_path / "z"], accel="tcg")


def test_zones_disk_holds_swap_dump_and_room_to_work():
    assert zones_disk_size(2048) == 20 * GIB
    assert zones_disk_size(4096) == 22 * GIB                # 3 x 4 + 10
    assert zones_disk_size(16384) == 58 * GIB
    assert zones_disk_size(4096) > 4 * GIB + 2 * 4 * GIB    # swap (= RAM) + dump (<= 2 x RAM)


def test_timeouts_scale_with_the_accelerator():
    kvm, tcg = BootTimeouts.for_accel("kvm"), BootTimeouts.for_accel("tcg")
    assert tcg.idle == 5 * kvm.idle and tcg.first_boot == 5 * kvm.first_boot
    assert kvm.idle < kvm.boot < kvm.first_boot
    with pytest.raises(ConfigError):
        BootTimeouts.for_accel("hvf")


def test_loader_conf_local_moves_the_kernel_console_to_ttya():
    assert loader_conf_local() == 'os_console="ttya"\nautoboot_delay="2"\n'
    with pytest.raises(ConfigError):
        loader_conf_local(autoboot_delay=-1)


def test_usb_boot_boots_the_image_first_and_keeps_it_raw(tmp_path):
    spec = usb_boot_spec("lab1", usb_image=tmp_path / "usb.img", zones_disks=[tmp_path / "z.qcow2"],
                         accel="tcg")
    assert isinstance(spec.boot, DiskBoot)
    args = argv(spec)
    blockdevs = values(args, "-blockdev")
    assert blockdevs[0].startswith("driver=raw,node-name=usbkey,")
    assert "bootindex=0" in [d for d in values(args, "-device") if "drive=usbkey" in d][0]
    assert "-kernel" not in args


# --- USB image preparation (needs mtools and mkfs.vfat to build a small GPT image) ---------
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("mcopy", "mkfs.vfat", "sgdisk")),
                                 reason="needs mtools, dosfstools and gdisk")


def _tiny_usb_image(path: Path) -> None:
    """A 40 MiB GPT image shaped like SmartOS's: partition 'root' holds a FAT labelled SMARTOSBOOT."""
    with open(path, "wb") as f:
        f.truncate(40 << 20)
    subprocess.run(["sgdisk", "-n", "1:2048:+4M", "-c", "1:loader", "-n", "2:0:+1M", "-c", "2:boot",
                    "-n", "3:0:0", "-c", "3:root", str(path)], check=True, capture_output=True)
    from smartos_lab.images.gpt import find_partition
    part = find_partition(path, "root")
    fat = path.with_suffix(".fat")
    with open(fat, "wb") as f:
        f.truncate(part.size_bytes)
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "SMARTOSBOOT", str(fat)], check=True,
                   capture_output=True)
    with open(fat, "rb") as src, open(path, "r+b") as dst:
        dst.seek(part.offset_bytes)
        shutil.copyfileobj(src, dst)
    fat.unlink()


@needs_tools
def test_usb_copy_gets_loader_conf_local_and_answers_and_the_original_is_untouched(tmp_path):
    from smartos_lab.images.fat import fat_read
    from smartos_lab.images.gpt import find_partition
    original = tmp_path / "smartos.img"
    _tiny_usb_image(original)
    before = original.read_bytes()
    copy = prepare_usb_image(original, tmp_path / "lab" / "usb.img", answers_json='{"a": 1}\n')
    assert original.read_bytes() == before
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    off = find_partition(copy, "root").offset_bytes
    assert fat_read(copy, off, "/boot/loader.conf.local") == b'os_console="ttya"\nautoboot_delay="2"\n'
    assert fat_read(copy, off, "/private/answers.json") == b'{"a": 1}\n'


@needs_tools
def test_usb_preparation_refuses_to_edit_the_original(tmp_path):
    original = tmp_path / "smartos.img"
    _tiny_usb_image(original)
    with pytest.raises(ConfigError, match="original"):
        prepare_usb_image(original, original, answers_json="{}")


def test_timeouts_can_be_scaled_for_slow_hosts():
    assert BootTimeouts.for_accel("tcg", 2).idle == 2 * BootTimeouts.for_accel("tcg").idle
    with pytest.raises(ConfigError):
        BootTimeouts.for_accel("kvm", 0)
