"""build_argv: a MachineSpec becomes the QEMU command line (pure, no QEMU needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.machine.accel import AccelChoice
from smartos_lab.machine.argv import build_argv, forward_key
from smartos_lab.machine.rundir import RunDir, lab_name_from_cmdline
from smartos_lab.machine.spec import Disk, KernelBoot, MachineSpec, Nic, PortForward

TCG = AccelChoice("tcg", "TCG: test")
KVM = AccelChoice("kvm", "KVM: test", nested=True)
RD = RunDir(Path("/run/sl/lab1"))


def argv(spec: MachineSpec, *, accel: AccelChoice = TCG, ports: dict[str, int] | None = None,
         **kw) -> list[str]:
    return build_argv(spec, qemu_binary="/usr/bin/qemu-system-x86_64", accel=accel, run_dir=RD,
                      host_ports=ports or {}, **kw)


def values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def test_machine_starts_paused_with_qmp_serial_socket_pidfile_and_vga():
    args = argv(MachineSpec(name="lab1", memory_mib=1024, cpus=2))
    assert args[0] == "/usr/bin/qemu-system-x86_64"
    assert "-S" in args
    assert values(args, "-qmp") == ["unix:/run/sl/lab1/qmp.sock,server=on,wait=off",
                                    "unix:/run/sl/lab1/qmp2.sock,server=on,wait=off",
                                    "unix:/run/sl/lab1/ctl.sock,server=on,wait=off"]
    assert values(args, "-chardev") == [
        "socket,id=serial0,path=/run/sl/lab1/console.sock,server=on,wait=off,"
        "logfile=/run/sl/lab1/serial.log,logappend=on"]
    assert values(args, "-serial") == ["chardev:serial0"]
    assert values(args, "-display") == ["none"]
    assert values(args, "-vga") == ["std"]
    assert values(args, "-pidfile") == ["/run/sl/lab1/qemu.pid"]
    assert values(args, "-m") == ["1024"] and values(args, "-smp") == ["2"]
    assert values(args, "-machine") == ["q35"]
    assert "-no-reboot" in args


def test_serial_log_can_live_outside_the_run_dir():
    args = argv(MachineSpec(name="lab1"), serial_log=Path("/home/u/labs/lab1/serial.log"))
    assert "logfile=/home/u/labs/lab1/serial.log" in values(args, "-chardev")[0]


def test_name_is_parseable_back_from_the_command_line():
    args = argv(MachineSpec(name="lab1"))
    assert values(args, "-name")[0].startswith("smartos-lab:lab1,")
    assert lab_name_from_cmdline(args) == "lab1"


def test_no_reboot_can_be_turned_off():
    assert "-no-reboot" not in argv(MachineSpec(name="lab1", no_reboot=False))


def test_tcg_uses_cpu_max_and_kvm_uses_cpu_host():
    assert values(argv(MachineSpec(name="a")), "-accel") == ["tcg"]
    assert values(argv(MachineSpec(name="a")), "-cpu") == ["max"]
    assert values(argv(MachineSpec(name="a"), accel=KVM), "-accel") == ["kvm"]
    assert values(argv(MachineSpec(name="a"), accel=KVM), "-cpu") == ["host"]


def test_an_explicit_cpu_model_wins():
    assert values(argv(MachineSpec(name="a", cpu_model="Skylake-Server"), accel=KVM),
                  "-cpu") == ["Skylake-Server"]


def test_disk_boot_gives_each_disk_a_boot_index_in_order():
    spec = MachineSpec(name="a", disks=(Disk(Path("/d/boot.qcow2")), Disk(Path("/d/data.qcow2"))))
    args = argv(spec)
    assert values(args, "-blockdev") == [
        "driver=qcow2,node-name=disk0,file.driver=file,file.filename=/d/boot.qcow2",
        "driver=qcow2,node-name=disk1,file.driver=file,file.filename=/d/data.qcow2",
    ]
    devices = [d for d in values(args, "-device") if "drive=" in d]
    assert devices == ["virtio-blk-pci,drive=disk0,id=dev-disk0,bootindex=0",
                       "virtio-blk-pci,drive=disk1,id=dev-disk1,bootindex=1"]
    assert "-kernel" not in args


def test_kernel_boot_passes_kernel_append_and_comma_joined_modules():
    boot = KernelBoot(kernel=Path("/p/unix"), cmdline="-B console=ttya -v",
                      modules=("/p/boot_archive type=rootfs name=ramdisk", "/p/hash"))
    spec = MachineSpec(name="a", boot=boot, disks=(Disk(Path("/d/zones.qcow2")),))
    args = argv(spec)
    assert values(args, "-kernel") == ["/p/unix"]
    assert values(args, "-append") == ["-B console=ttya -v"]
    assert values(args, "-initrd") == ["/p/boot_archive type=rootfs name=ramdisk,/p/hash"]
    assert not any("bootindex" in d for d in values(args, "-device"))


def test_kernel_boot_without_cmdline_or_modules_omits_them():
    args = argv(MachineSpec(name="a", boot=KernelBoot(kernel=Path("/k"))))
    assert "-append" not in args and "-initrd" not in args


def test_a_kernel_module_with_a_comma_is_rejected():
    boot = KernelBoot(kernel=Path("/p/unix"), modules=("/p/a,b/boot_archive",))
    with pytest.raises(ConfigError, match="comma"):
        argv(MachineSpec(name="a", boot=boot))


def test_every_disk_interface_maps_to_its_qemu_device():
    spec = MachineSpec(name="a", boot=KernelBoot(kernel=Path("/k")), disks=(
        Disk(Path("/d/v.qcow2"), interface="virtio", serial="V1"),
        Disk(Path("/d/a.qcow2"), interface="ahci"),
        Disk(Path("/d/cd.iso"), interface="ide", media="cdrom", format="raw"),
        Disk(Path("/d/n.qcow2"), interface="nvme", serial="NV1"),
        Disk(Path("/d/n2.qcow2"), interface="nvme"),
        Disk(Path("/d/u.img"), interface="usb", format="raw", readonly=True),
    ))
    devices = values(argv(spec), "-device")
    assert "virtio-blk-pci,drive=disk0,id=dev-disk0,serial=V1" in devices
    assert "ide-hd,drive=disk1,id=dev-disk1,bus=ide.0" in devices
    assert "ide-cd,drive=disk2,id=dev-disk2,bus=ide.1" in devices
    assert "nvme,drive=disk3,id=dev-disk3,serial=NV1" in devices
    assert "nvme,drive=disk4,id=dev-disk4,serial=disk4" in devices   # nvme needs a serial
    assert devices.count("qemu-xhci,id=xhci") == 1
    assert devices.index("qemu-xhci,id=xhci") < devices.index(
        "usb-storage,drive=disk5,id=dev-disk5,bus=xhci.0")


def test_read_only_disks_and_cdroms_are_opened_read_only():
    spec = MachineSpec(name="a", disks=(
        Disk(Path("/d/cd.iso"), interface="ahci", media="cdrom", format="raw"),
        Disk(Path("/d/ro.qcow2"), readonly=True),
        Disk(Path("/d/rw.qcow2")),
    ))
    blockdevs = values(argv(spec), "-blockdev")
    assert blockdevs[0].endswith(",read-only=on")
    assert blockdevs[1].endswith(",read-only=on")
    assert "read-only" not in blockdevs[2]


def test_custom_disk_ids_are_used_and_must_be_unique():
    spec = MachineSpec(name="a", disks=(Disk(Path("/d/x.qcow2"), id="zones"),))
    assert "node-name=zones" in values(argv(spec), "-blockdev")[0]
    dup = MachineSpec(name="a", disks=(Disk(Path("/d/x"), id="z"), Disk(Path("/d/y"), id="z")))
    with pytest.raises(ConfigError, match="share"):
        argv(dup)


def test_paths_with_commas_are_escaped_for_qemu():
    spec = MachineSpec(name="a", disks=(Disk(Path("/d/a,b.qcow2")),))
    assert "file.filename=/d/a,,b.qcow2" in values(argv(spec), "-blockdev")[0]


@pytest.mark.parametrize("disk, message", [
    (Disk(Path("/d/x.iso"), interface="virtio", media="cdrom"), "cdrom"),
    (Disk(Path("/d/x.qcow2"), interface="ahci", readonly=True), "read-only"),
    (Disk(Path("/d/x.qcow2"), interface="scsi"), "unknown disk interface"),  # type: ignore[arg-type]
])
def test_impossible_disks_are_config_errors(disk, message):
    with pytest.raises(ConfigError, match=message):
        argv(MachineSpec(name="a", disks=(disk,)))


def test_more_than_six_ahci_disks_is_an_error():
    disks = tuple(Disk(Path(f"/d/{i}.qcow2"), interface="ahci") for i in range(7))
    with pytest.raises(ConfigError, match="AHCI"):
        argv(MachineSpec(name="a", disks=disks))


def test_nics_get_user_netdevs_with_forwards_and_models():
    spec = MachineSpec(name="a", nics=(
        Nic(model="virtio", mac="52:54:00:00:00:01",
            forwards=(PortForward(22, name="ssh"), PortForward(80, host_port=8080))),
        Nic(model="e1000"),
    ))
    args = argv(spec, ports={"ssh": 40022})
    assert values(args, "-netdev") == [
        "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:8080-:80",
        "user,id=net1",
    ]
    devices = values(args, "-device")
    assert "virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:00:00:01" in devices
    assert "e1000,netdev=net1,id=nic1" in devices


def test_forward_keys_default_to_the_guest_port():
    assert forward_key(PortForward(22, name="ssh")) == "ssh"
    assert forward_key(PortForward(80)) == "tcp/80"


def test_a_forward_without_a_chosen_host_port_is_an_error():
    spec = MachineSpec(name="a", nics=(Nic(forwards=(PortForward(22, name="ssh"),)),))
    with pytest.raises(ConfigError, match="no host port"):
        argv(spec)


def test_two_forwards_with_the_same_name_are_an_error():
    spec = MachineSpec(name="a", nics=(Nic(forwards=(PortForward(22, 1, name="x"),
                                                     PortForward(23, 2, name="x"))),))
    with pytest.raises(ConfigError, match="both named"):
        argv(spec)


def test_no_nics_means_no_network_at_all():
    args = argv(MachineSpec(name="a"))
    assert "-nodefaults" in args and "-netdev" not in args


def test_q35_gets_empty_root_ports_for_hotplug():
    devices = values(argv(MachineSpec(name="a", hotplug_slots=2)), "-device")
    assert [d for d in devices if d.startswith("pcie-root-port")] == [
        "pcie-root-port,id=hp0,bus=pcie.0,chassis=1", "pcie-root-port,id=hp1,bus=pcie.0,chassis=2"]
    assert not any("pcie-root-port" in d
                   for d in values(argv(MachineSpec(name="a", machine_type="pc")), "-device"))


def test_extra_args_come_last_verbatim():
    args = argv(MachineSpec(name="a", extra_args=("-rtc", "base=localtime")))
    assert args[-2:] == ["-rtc", "base=localtime"]


def test_build_argv_is_pure(tmp_path):
    spec = MachineSpec(name="a", disks=(Disk(tmp_path / "nope.qcow2"),))
    build_argv(spec, qemu_binary="q", accel=TCG, run_dir=RunDir(tmp_path / "rd"), host_ports={})
    assert list(tmp_path.iterdir()) == []


def test_the_gdb_stub_is_a_unix_socket_in_the_run_dir_never_a_tcp_port():
    args = argv(MachineSpec(name="lab1", gdb=True))
    assert "socket,id=gdb,path=/run/sl/lab1/gdb.sock,server=on,wait=off" in values(args, "-chardev")
    assert values(args, "-gdb") == ["chardev:gdb"]
    assert "-s" not in args and not any("tcp:" in a for a in values(args, "-gdb"))


def test_no_gdb_stub_unless_asked():
    args = argv(MachineSpec(name="lab1"))
    assert "-gdb" not in args and not any("gdb.sock" in a for a in args)
