"""Kernel panic parser, tested on real console text from illumos documentation and from
illumos/SmartOS bug reports (tests/fixtures/panic)."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers.panic import DumpInfo, Frame, parse_kernel_panic

from ._parser_fixtures import fixture_files, fixture_path

HEADER = ("# source: ", "# command: ", "# note: ")


def fixture(name: str, folder: str = "panic") -> str:
    lines = fixture_path(f"{folder}/{name}").read_text().split("\n")
    while lines and lines[0].startswith(HEADER):
        lines.pop(0)
    return "\n".join(lines)


@pytest.mark.parametrize("path", fixture_files("panic"), ids=lambda p: p.name)
def test_every_fixture_names_its_source_and_command(path):
    first, second = path.read_text().split("\n")[:2]
    assert first.startswith("# source: ") and second.startswith("# command: ")


def test_x86_panic_gives_cpu_thread_string_stack_and_dump():
    report = parse_kernel_panic(fixture("sysadv1_x86_halt_d.txt"))
    assert (report.cpu, report.thread) == (0, 0xFFFFFFFF83246EC0)
    assert report.panic_string == "forced crash dump initiated at user request"
    assert report.stack[0] == Frame(0xFFFFFE80006BBD60, "genunix", "kadmin", 0x4C1, ())
    assert report.functions == ["genunix:kadmin", "genunix:uadmin", "unix:sys_syscall32"]
    assert report.stack[2].symbol == "unix:sys_syscall32+101"
    assert report.dump == DumpInfo("/dev/dsk/c1t0d0s1", 107675648, "kernel", 38438, 4.29, True)
    assert report.synced and report.debugger


def test_sparc_frames_carry_arguments_and_register_lines_are_skipped():
    report = parse_kernel_panic(fixture("sysadv1_sparc_halt_d.txt"))
    assert [f.symbol for f in report.stack] == ["genunix:kadmin+438", "genunix:uadmin+110"]
    assert report.stack[0].args == (0xB4, 0, 0, 0, 5, 0)
    assert report.dump.pages == 5339 and report.dump.succeeded


def test_wrapped_panic_string_argument_list_and_dump_line_are_joined():
    report = parse_kernel_panic(fixture("dtrace_guide_panic_action_sparc.txt"))
    assert report.panic_string == "dtrace: panic action at probe syscall::mmap:entry (ecb 300000acfc8)"
    assert report.stack[0].args == (0xFFFE, 0, 0x1830F88, 0x1830F88, 0x30002FB8040, 0x300000ACFC8)
    assert report.stack[1].function == "dtrace_systrace_syscall32"
    assert report.dump == DumpInfo("/dev/dsk/c0t0d0s1", 214827008, "kernel", 11837, 4.66, True)
    assert report.rebooting


def test_panic_string_on_the_line_after_the_panic_line_with_trap_details():
    report = parse_kernel_panic(fixture("openzfs_pr489_bad_trap_x86.txt"))
    assert report.cpu == 2
    assert report.panic_string.startswith("BAD TRAP: type=e (#pf Page fault) rp=fffffe003d7615e0 addr=0")
    assert report.panic_string.endswith('occurred in module "zfs" due to a NULL pointer dereference')
    assert "Bad kernel fault at addr=0x0" in report.trap_info
    assert report.stack == [] and report.dump is None


def test_panic_into_the_debugger_without_a_stack():
    report = parse_kernel_panic(fixture("wdd_deadman_debugger.txt"))
    assert report.panic_string == "deadman: timed out after 9 seconds of clock inactivity"
    assert report.stack == [] and report.debugger and report.dump is None


def test_panic_without_a_dump_and_with_wrapped_arguments():
    report = parse_kernel_panic(fixture("releasenotes_sparc_vfs_mountroot.txt"))
    assert report.panic_string == "vfs_mountroot: cannot remount root"
    assert [len(f.args) for f in report.stack] == [6, 6]
    assert report.stack[1].args[-1] == 0x1814000
    assert report.dump is None and not report.synced


def test_thirty_two_bit_frame_pointers():
    report = parse_kernel_panic(fixture("svm_sparc_md_state_database.txt"))
    assert len(report.stack) == 8
    assert report.stack[0].address == 0x403238A8
    assert report.stack[-1].symbol == "genunix:ioctl+1dc"


def test_frame_without_a_symbol_keeps_the_bare_address():
    # The complete lines of the SmartOS kvm report (its last, cut-off line left out).
    text = fixture("illumos_kvm_issue8_truncated.txt").rstrip("\n").rsplit("\n", 1)[0]
    report = parse_kernel_panic(text)
    assert report.panic_string == "assertion failed: res != NULL, file: kvm_mmu.c, line: 3054"
    assert report.stack[0] == Frame(0xFFFFFF001AC21E80, None, "fffffffffba868b8", None, ())
    assert report.stack[-1].symbol == "genunix:cdev_ioctl+39"
    assert len(report.stack) == 17


def test_truncated_stack_raises_with_the_cut_line():
    with pytest.raises(ParseError) as caught:
        parse_kernel_panic(fixture("illumos_kvm_issue8_truncated.txt"))
    assert caught.value.line == "ffffff001ac22d50"
    assert caught.value.lineno == 22
    assert caught.value.command == "console (kernel panic)"


def test_argument_list_cut_off_at_the_end_raises():
    text = fixture("releasenotes_sparc_vfs_mountroot.txt").split("\n180e000, 1814000)")[0]
    with pytest.raises(ParseError, match="not closed") as caught:
        parse_kernel_panic(text, command="serial log")
    assert caught.value.line.startswith("000000000180ba10 genunix:main+98 (")
    assert caught.value.command == "serial log"


def test_text_without_a_panic_raises():
    with pytest.raises(ParseError, match="no 'panic"):
        parse_kernel_panic(fixture("smartos_docs_memstat_node1.txt", folder="mdb"))
