"""sysinfo, diskinfo, dladm and svcs parsers, on real output from SmartOS and illumos docs."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers import (
    parse_diskinfo,
    parse_dladm_show_phys,
    parse_dladm_show_vnic,
    parse_svcs,
    parse_svcs_x,
    parse_sysinfo,
)

from ._parser_fixtures import fixture

GiB = 1 << 30


# ----------------------------------------------------------------------------- sysinfo
def test_sysinfo_reads_identity_memory_and_cpu():
    info = parse_sysinfo(fixture("sysinfo/sysinfo_smartos_tips.txt"))
    assert (info.live_image, info.hostname, info.uuid) == (
        "20120726T184637Z", "smartos-node-1", "92bc54eb-a652-11e0-a095-001e671d5838")
    assert (info.memory_mib, info.cpu_total_cores, info.boot_time) == (47184, 24, 1344477862)
    assert (info.vm_capable, info.cpu_virtualization, info.bhyve_capable) == (True, "vmx", None)


def test_sysinfo_reads_pool_disks_and_boot_parameters():
    info = parse_sysinfo(fixture("sysinfo/sysinfo_smartos_tips.txt"))
    assert info.zpool == "zones"
    assert info.zpool_disks[-1] == "c2d0" and len(info.zpool_disks) == 7
    assert info.disks["c0t16d0"] == 600 and info.disks["c2d0"] == 120
    assert info.boot_parameters["smartos"] == "true"


def test_sysinfo_reads_network_interfaces_and_nic_tags():
    info = parse_sysinfo(fixture("sysinfo/sysinfo_smartos_tips.txt"))
    igb0, igb1 = info.network_interfaces["igb0"], info.network_interfaces["igb1"]
    assert (igb0.mac, igb0.ip4addr, igb0.link_status, igb0.nic_names) == (
        "00:1e:67:1d:58:38", "172.16.5.95", "up", ["admin"])
    assert (igb1.ip4addr, igb1.nic_names) == (None, [])
    assert info.virtual_network_interfaces == {}
    assert info.raw["Product"] == "S5520UR"


def test_sysinfo_rejects_non_json():
    with pytest.raises(ParseError, match="not JSON") as err:
        parse_sysinfo(fixture("sysinfo/sysinfo_smartos_tips.txt")[:400])
    assert err.value.command == "sysinfo"


def test_sysinfo_rejects_an_object_that_is_not_sysinfo():
    with pytest.raises(ParseError, match="not sysinfo output"):
        parse_sysinfo(fixture("vmadm/get_zone70_smartos.txt"))


def test_sysinfo_rejects_a_non_numeric_memory_size():
    text = fixture("sysinfo/sysinfo_smartos_tips.txt").replace('"47184"', '"lots"')
    with pytest.raises(ParseError, match="'MiB of Memory' is 'lots'"):
        parse_sysinfo(text)


# ----------------------------------------------------------------------------- diskinfo
def test_diskinfo_splits_vendor_and_product_that_contain_spaces():
    nvme, virtio, sata = parse_diskinfo(fixture("diskinfo/diskinfo_bhyve_omnios_pr.txt"))
    assert (nvme.type, nvme.name, nvme.vid, nvme.pid, nvme.ssd) == (
        "NVME", "c1t589CFC2045C20001d0", "NVMe", "bhyve-NVMe", True)
    assert (virtio.type, virtio.vid, virtio.pid) == (None, "Virtio", "Block Device")
    assert (sata.vid, sata.pid, sata.size_bytes) == ("BHYVE", "SATA DISK", 2 * GiB)


def test_diskinfo_reads_sizes_and_removable_flags():
    seagate, sandisk = parse_diskinfo(fixture("diskinfo/diskinfo_usb_smartos.txt"))
    assert (seagate.type, seagate.size, seagate.size_bytes, seagate.removable) == (
        "USB", "931.51 GiB", int(931.51 * GiB), False)
    assert (sandisk.pid, sandisk.removable, sandisk.ssd) == ("Cruzer Glide", True, False)


def test_diskinfo_Hp_rows_are_tab_separated_with_exact_bytes():
    # Constructed input, not captured output (no real "diskinfo -Hp" was found):
    # the "%s\t%s\t..." layout of illumos diskinfo.c with the fixture's disk.
    (disk,) = parse_diskinfo("SATA\tc5t0d0\tBHYVE\tSATA DISK\t2147483648\tno\tno\n")
    assert (disk.pid, disk.size_bytes, disk.removable) == ("SATA DISK", 2147483648, False)


def test_diskinfo_rejects_a_row_without_its_size():
    text = fixture("diskinfo/diskinfo_bhyve_omnios_pr.txt").replace("10.00 GiB", "")
    with pytest.raises(ParseError, match="TYPE DISK VID PID SIZE RMV SSD") as err:
        parse_diskinfo(text)
    assert err.value.command == "diskinfo" and err.value.lineno == 3


def test_diskinfo_rejects_rows_that_are_neither_table_nor_tabs():
    with pytest.raises(ParseError, match="header or tab-separated"):
        parse_diskinfo("c1t0d0 SanDisk 7.45GiB\n")


# ----------------------------------------------------------------------------- dladm
def test_show_phys_reads_state_speed_and_duplex():
    igb0, igb1 = parse_dladm_show_phys(fixture("dladm/show_phys_smartos_tips.txt"))
    assert (igb0.link, igb0.media, igb0.state, igb0.speed, igb0.duplex, igb0.device) == (
        "igb0", "Ethernet", "up", 1000, "full", "igb0")
    assert (igb1.state, igb1.speed, igb1.duplex) == ("unknown", 0, "half")


def test_show_phys_reads_other_column_widths():
    links = parse_dladm_show_phys(fixture("dladm/show_phys_helios_omicron_pr.txt"))
    assert [(link.link, link.state, link.duplex) for link in links] == [
        ("igb0", "up", "full"), ("tfpkt0", "down", "unknown"), ("cxgbe0", "down", "unknown"),
        ("cxgbe1", "down", "unknown")]
    (vioif0,) = parse_dladm_show_phys(fixture("dladm/show_phys_omnios_bhyve.txt"))
    assert vioif0.device == "vioif0"


def test_show_vnic_reads_zone_owners():
    vnics = parse_dladm_show_vnic(fixture("dladm/show_vnic_zones_smartos_tips.txt"))
    assert len(vnics) == 12
    assert (vnics[0].link, vnics[0].over, vnics[0].macaddress, vnics[0].macaddrtype) == (
        "net0", "igb0", "b2:f2:42:c0:5e:15", "fixed")
    assert vnics[0].zone == "3b45ecfa-7c74-459e-8534-00d1f79a07ea"
    assert vnics[10].zone == "fifo" and vnics[8].macaddress == "b2:43:c0:92:82:1"


def test_show_vnic_double_dash_zone_means_global():
    (vnic,) = parse_dladm_show_vnic(fixture("dladm/show_vnic_global_random_smartos_nfs.txt"))
    assert (vnic.link, vnic.speed, vnic.macaddrtype, vnic.vid, vnic.zone) == (
        "nfs0", 1000, "random", 0, None)
    assert vnic.fields["zone"] == "--"


def test_show_vnic_reads_several_vnics_of_one_zone():
    vnics = parse_dladm_show_vnic(fixture("dladm/show_vnic_two_nics_smartos_nfs.txt"))
    zone = "c9fd4db6-5da0-4b0d-8c7a-87c55b10caff"
    assert [(v.link, v.over) for v in vnics if v.zone == zone] == [("net0", "e1000g1"),
                                                                   ("net1", "e1000g2")]


def test_show_vnic_reads_rows_whose_values_overflow_their_columns():
    vnics = parse_dladm_show_vnic(fixture("dladm/show_vnic_overflow_helios_omicron_pr.txt"))
    assert [(v.link, v.over, v.speed) for v in vnics[:3]] == [
        ("fake_external0", "fake_external_stub0", 0), ("sc0_1", "igb0", 1000),
        ("bootstrap0", "bootstrap_stub0", 0)]
    assert all(v.zone is None and "zone" not in v.fields for v in vnics)


def test_show_vnic_skips_the_header_ofmt_repeats_every_24_rows():
    text = fixture("dladm/show_vnic_two_nics_smartos_nfs.txt")
    header, rows = text.split("\n", 1)
    assert len(parse_dladm_show_vnic(f"{header}\n{rows}{header}\n{rows}")) == 6


def test_show_vnic_parseable_unescapes_colons_in_mac_addresses():
    # Constructed input, not captured output (no real "dladm show-vnic -p" was
    # found): libofmt's -p layout (':' separators, ':' in values escaped as '\:')
    # applied to the first row of the "dladm show-vnic" fixture.
    text = r"net0:e1000g1:0:72\:53\:2c\:7d\:77\:17:fixed:0:e669fd30-7c81-463d-99bc-7989f9e8af78"
    (vnic,) = parse_dladm_show_vnic(text + "\n",
                                    fields="link,over,speed,macaddress,macaddrtype,vid,zone")
    assert (vnic.macaddress, vnic.vid, vnic.zone) == (
        "72:53:2c:7d:77:17", 0, "e669fd30-7c81-463d-99bc-7989f9e8af78")


def test_show_vnic_parseable_single_field_is_not_escaped():
    (vnic,) = parse_dladm_show_vnic("72:53:2c:7d:77:17\n", fields=["macaddress"])
    assert vnic.macaddress == "72:53:2c:7d:77:17"


def test_show_vnic_parseable_rejects_a_wrong_field_count():
    with pytest.raises(ParseError, match="expected 3 ':'-separated fields, found 2") as err:
        parse_dladm_show_vnic("net0:e1000g1\n", fields="link,over,zone")
    assert err.value.command == "dladm show-vnic"


def test_show_vnic_rejects_a_row_with_a_missing_column():
    text = fixture("dladm/show_vnic_two_nics_smartos_nfs.txt").replace(
        "fixed       0    c9fd", "fixed       c9fd", 1)
    with pytest.raises(ParseError, match="expected 7 columns") as err:
        parse_dladm_show_vnic(text)
    assert err.value.lineno == 3


def test_show_phys_rejects_another_subcommands_table():
    with pytest.raises(ParseError, match="header lacks MEDIA"):
        parse_dladm_show_phys(fixture("dladm/show_vnic_two_nics_smartos_nfs.txt"))


def test_show_phys_rejects_a_non_numeric_speed():
    text = fixture("dladm/show_phys_smartos_tips.txt").replace("1000", "fast")
    with pytest.raises(ParseError, match="bad SPEED value 'fast'"):
        parse_dladm_show_phys(text)


# ----------------------------------------------------------------------------- svcs
def test_svcs_reads_state_stime_and_fmri():
    rows = parse_svcs(fixture("svcs/svcs_pools_illumos_sysadrm.txt"))
    assert [(r.state, r.stime, r.fmri) for r in rows] == [
        ("online", "10:40:27", "svc:/system/pools:default"),
        ("online", "10:40:27", "svc:/system/pools/dynamic:default")]


def test_svcs_reads_legacy_run_services():
    rows = parse_svcs(fixture("svcs/svcs_default_elided_illumos_man.txt", drop_elisions=True))
    assert rows[0].state == "legacy_run" and rows[0].fmri == "lrc:/etc/rc3_d/S42myscript"
    assert len(rows) == 4


def test_svcs_reads_chosen_columns_by_name():
    rows = parse_svcs(fixture("svcs/svcs_o_state_nstate_illumos_man.txt"))
    assert [(r.state, r.fields["nstate"], r.stime) for r in rows] == [
        ("online", "-", None), ("disabled", "-", None)]
    (verbose,) = parse_svcs(fixture("svcs/svcs_v_illumos_man.txt"))
    assert (verbose.stime, verbose.fields["ctid"]) == ("Aug_09", "-")


def test_svcs_rejects_an_unknown_state():
    text = fixture("svcs/svcs_pools_illumos_sysadrm.txt").replace("online  ", "runnin  ", 1)
    with pytest.raises(ParseError, match="unknown service state 'runnin'") as err:
        parse_svcs(text)
    assert err.value.command == "svcs" and err.value.lineno == 2


def test_svcs_rejects_a_row_with_a_missing_column():
    text = fixture("svcs/svcs_pools_illumos_sysadrm.txt").replace(
        "10:40:27 svc:/system/pools:default", "10:40:27")
    with pytest.raises(ParseError, match="expected 3 columns"):
        parse_svcs(text)


def test_svcs_points_x_output_to_parse_svcs_x():
    with pytest.raises(ParseError, match="parse_svcs_x"):
        parse_svcs(fixture("svcs/svcs_x_disabled_illumos_man.txt"))


def test_svcs_x_explains_a_disabled_service():
    (entry,) = parse_svcs_x(fixture("svcs/svcs_x_disabled_illumos_man.txt"))
    assert (entry.fmri, entry.description, entry.state, entry.since) == (
        "svc:/application/print/server:default", "LP print server", "disabled",
        "Mon Feb 13 17:56:21 2006")
    assert entry.reason == "Disabled by an administrator."
    assert entry.see == ["http://sun.com/msg/SMF-8000-05", "lpsched(1M)"]
    assert entry.impact == "2 dependent services are not running. (Use -v for list.)"


def test_svcs_x_returns_one_explanation_per_service():
    pools, dynamic = parse_svcs_x(fixture("svcs/svcs_x_two_services_illumos_sysadrm.txt"))
    assert (pools.state, len(pools.see)) == ("disabled", 7)
    assert (dynamic.state, dynamic.reason) == ("offline",
                                               "Service svc:/system/pools:default is disabled.")
    assert dynamic.impact == "This service is not running."


def test_svcs_xv_joins_a_wrapped_reason_and_reads_the_dependency_path():
    (entry,) = parse_svcs_x(fixture("svcs/svcs_xv_path_illumos_man.txt"))
    assert entry.reason == ("Service svc:/network/nfs/status:default is not running because a "
                            "method failed repeatedly.")
    assert entry.path == ["svc:/network/nfs/client:default", "svc:/network/nfs/nlockmgr:default",
                          "svc:/network/nfs/status:default"]
    assert entry.see[-1] == "/var/svc/log/network-nfs-client:default.log"


def test_svcs_xv_lists_the_impacted_services():
    (entry,) = parse_svcs_x(fixture("svcs/svcs_xv_impacted_illumos_sysadv1.txt"))
    assert entry.impact == "2 services are not running:"
    assert entry.impacted == ["svc:/application/print/rfc1179:default",
                              "svc:/application/print/ipp-listener:default"]


def test_svcs_x_with_nothing_to_explain_is_empty():
    assert parse_svcs_x("") == []


def test_svcs_x_rejects_text_before_the_first_service():
    with pytest.raises(ParseError, match="expected a service FMRI line") as err:
        parse_svcs_x(fixture("svcs/svcs_pools_illumos_sysadrm.txt"))
    assert err.value.command == "svcs -x" and err.value.lineno == 1


def test_svcs_x_rejects_a_bad_state_line():
    text = fixture("svcs/svcs_x_disabled_illumos_man.txt").replace(
        " State: disabled since Mon Feb 13 17:56:21 2006", " State:")
    with pytest.raises(ParseError, match="bad State: line"):
        parse_svcs_x(text)
