"""Parsers of mdb/kmdb output and crash directories, on real published output (tests/fixtures)."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers.crash import (
    parse_crash_dir,
    parse_mdb_stack,
    parse_mdb_status,
    parse_modinfo,
    parse_msgbuf,
)
from tests.unit._parser_fixtures import fixture


# --- ::status ---------------------------------------------------------------------------------
def test_status_of_an_x86_crash_dump_gives_the_panic_the_os_and_the_image_uuid():
    status = parse_mdb_status(fixture("crash/status_omnios_issue632_x86.txt"))
    assert status.is_crash_dump and (status.file, status.bits, status.host) == ("vmcore.0", 64, "chrufs")
    assert (status.os_release, status.os_version, status.platform) == (
        "5.11", "omnios-r151030-521a1fc4d1", "i86pc")
    assert status.image_uuid == "cb6e4932-f2ce-684c-e233-b7c71943edaa"
    assert status.panic_message.startswith("BAD TRAP: type=e (#pf Page fault) rp=fffffe00b6e59b50")
    assert status.panic_message.endswith('in module "usba" due to a NULL pointer dereference')
    assert status.dump_content == "kernel pages and pages from PID -1"


def test_status_of_a_sparc_dump_with_and_without_a_dump_content_line():
    new = parse_mdb_status(fixture("crash/status_wdd_vmcore0_sparc.txt"))
    assert (new.panic_message, new.dump_content, new.platform) == ("zero", "kernel pages only", "sun4u")
    old = parse_mdb_status(fixture("crash/status_mdbguide_vmcore1_sparc.txt"))
    assert (old.file, old.bits) == ("vmcore.1", 32)
    assert old.panic_message == "forced crash dump initiated at user request"
    assert old.dump_content is None and old.image_uuid is None


def test_status_of_the_live_kernel_has_no_panic():
    status = parse_mdb_status(fixture("crash/status_wdd_live_kernel_sparc.txt"))
    assert (status.target, status.file, status.host) == ("live kernel", None, "testsystem")
    assert not status.is_crash_dump and status.panic_message is None


def test_status_stops_where_the_next_command_output_begins():
    text = fixture("crash/status_omnios_issue632_x86.txt") + fixture("crash/stack_omnios_issue632_x86.txt")
    assert set(parse_mdb_status(text).fields) == {
        "operating system", "image uuid", "panic message", "dump content"}


def test_status_without_its_first_line_is_refused():
    with pytest.raises(ParseError, match="no 'debugging crash dump"):
        parse_mdb_status("mdb: failed to read panicbuf and panic_reg -- current register set will "
                         "be unavailable\n")


# --- ::stack ------------------------------------------------------------------------------------
def test_stack_frames_give_functions_offsets_and_arguments():
    frames = parse_mdb_stack(fixture("crash/stack_omnios_issue632_x86.txt"))
    assert len(frames) == 12
    assert frames[0].function == "usb_console_input_enter" and frames[0].offset == 0x13
    assert frames[0].args == (0,) and frames[0].address == 0xfffffe00b6e59c60
    assert frames[6].symbol == "prom_exit_to_mon+9"          # mdb leaves 0x off small offsets
    assert frames[7].function == "0xfffffffffb84c873" and frames[7].offset is None
    assert frames[9].args == (2, 0, 0, 0xfffffe83b2120cf8)
    assert frames[-1].function == "sys_syscall32"


def test_a_damaged_stack_line_is_named():
    with pytest.raises(ParseError, match="line 2"):
        parse_mdb_stack("fffffe00b6e59c60 usb_console_input_enter+0x13(0)\nfffffe00b6e59c80 hid_po\n")


# --- ::msgbuf -----------------------------------------------------------------------------------
def test_msgbuf_gives_the_boot_banner_and_the_panic_with_its_stack():
    buf = parse_msgbuf(fixture("kmdb/msgbuf_smartos_gce_microfind.txt"))
    assert buf.banner == "SunOS Release 5.11 Version joyent_20171012T151912Z 64-bit"
    assert buf.lines[0] == buf.banner                       # the MESSAGE header is dropped
    assert buf.panic.panic_string == "microfind: could not calibrate delay loop"
    assert buf.panic.functions == ["unix:kdi_slave_entry_patch", "unix:startup_modules",
                                   "unix:startup", "genunix:main", "unix:_locore_start"]
    assert buf.panic.trap_info == ["Warning - stack not written to the dump buffer"]


def test_msgbuf_without_a_panic():
    text = "\n".join(fixture("kmdb/msgbuf_smartos_gce_microfind.txt").splitlines()[:4])
    assert parse_msgbuf(text).panic is None


# --- crash directory ----------------------------------------------------------------------------
def test_a_crash_directory_listing_pairs_unix_and_vmcore_by_number():
    dumps = parse_crash_dir(fixture("crash/ls_crashdir_mdbguide.txt"))
    assert [(d.number, d.expanded, d.vmdump) for d in dumps] == [(0, True, False), (1, True, False)]
    assert [d.number for d in parse_crash_dir(fixture("crash/ls_crashdir_wdd.txt"))] == [0]


def test_an_empty_crash_directory_has_no_dumps():
    assert parse_crash_dir("bounds\n") == [] and parse_crash_dir("") == []


# --- modinfo --------------------------------------------------------------------------------------
def test_modinfo_gives_each_module_its_text_address_once():
    modules = parse_modinfo(fixture("modinfo/modinfo_solaris_sparc_pbis_issue139.txt"))
    names = [m.name for m in modules]
    assert names[:3] == ["unix", "genunix", "platmod"] and names.count("zfs") == 1
    specfs = next(m for m in modules if m.name == "specfs")
    assert (specfs.id, specfs.loadaddr, specfs.size, specfs.info, specfs.rev) == (
        5, 0x1081a000, 0x5140, "1", 1)
    assert specfs.description == "filesystem for specfs"
    assert modules[0].description == "" and modules[0].info == "-"


def test_modinfo_of_one_module():
    (module,) = parse_modinfo(fixture("modinfo/modinfo_i_man_page.txt"))
    assert (module.id, module.loadaddr, module.name) == (3, 0xf5a7a000, "spedfs")


def test_modinfo_without_its_header_is_refused():
    with pytest.raises(ParseError, match="no 'Id Loadaddr"):
        parse_modinfo("  5 1081a000   5140   1   1  specfs (filesystem for specfs)\n")
