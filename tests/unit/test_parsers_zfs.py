"""zfs list / zfs get parsers, on real output from SmartOS, illumos and OpenZFS docs."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers import ZFS_GET_DEFAULT_FIELDS, parse_zfs_get, parse_zfs_list
from smartos_lab.parsers._table import size

from ._parser_fixtures import fixture

K, M, G = 1 << 10, 1 << 20, 1 << 30


# ----------------------------------------------------------------------------- list
def test_zfs_list_converts_human_sizes_to_bytes():
    datasets = parse_zfs_list(fixture("zfs/list_r_zones_smartos_nfs.txt"))
    zones = datasets[0]
    assert zones.name == "zones"
    assert zones.used == int(4.32 * G)
    assert zones.available == int(11.3 * G)
    assert zones.referenced == 654 * K
    assert zones.mountpoint == "/zones"
    assert zones.raw["used"] == "4.32G"


def test_zfs_list_volumes_have_no_mountpoint_and_legacy_stays_a_word():
    by_name = {d.name: d for d in parse_zfs_list(fixture("zfs/list_r_zones_smartos_nfs.txt"))}
    assert by_name["zones/dump"].mountpoint is None
    assert by_name["zones/config"].mountpoint == "legacy"
    assert len(by_name) == 9


def test_zfs_list_reads_kvm_zvols_and_zone_datasets():
    datasets = parse_zfs_list(fixture("zfs/list_kvm_zvols_smartos.txt"))
    disk0 = next(d for d in datasets if d.name.endswith("708c73e3-48f2-4da5-a0a6-e161215a4215-disk0"))
    assert (disk0.used, disk0.mountpoint) == (int(22.7 * G), None)
    assert datasets[-1].name == "zones/var" and datasets[-1].used == int(3.05 * M)


def test_zfs_list_snapshots_have_no_available_space():
    snaps = parse_zfs_list(fixture("zfs/list_snapshots_omnios.txt"))
    assert all(s.is_snapshot and s.available is None and s.used == 0 for s in snaps)
    assert snaps[2].referenced == 734 * M


def test_zfs_list_maps_space_column_headers_to_property_names():
    (disk,) = parse_zfs_list(fixture("zfs/list_o_space_smartos_tips.txt"))
    assert disk.props["usedbysnapshots"] == 285 * M
    assert disk.props["usedbydataset"] == int(1.33 * G)
    assert disk.available == 485 * G


def test_zfs_list_H_p_with_caller_fields_gives_exact_bytes():
    fields = "name,used,usedbydataset,usedbyrefreservation,usedbysnapshots,usedbychildren,lrefer"
    vms, share = parse_zfs_list(fixture("zfs/list_Hp_freebsd_openzfs_issue.txt"), fields)
    assert vms.name == "z/data/VMs"
    assert vms.props == {"name": "z/data/VMs", "used": 3166535424, "usedbydataset": 2785411008,
                         "usedbyrefreservation": 0, "usedbysnapshots": 381124416,
                         "usedbychildren": 0, "logicalreferenced": 4080961536}
    assert share.props["usedbydataset"] is None


def test_zfs_list_H_name_mountpoint_from_illumos():
    datasets = parse_zfs_list(fixture("zfs/list_H_name_mountpoint_omnios_issue.txt"),
                              ["name", "mountpoint"])
    assert len(datasets) == 32
    by_name = {d.name: d.mountpoint for d in datasets}
    assert by_name["rpool/dump"] is None
    assert by_name["rpool/vmdata"] == "none"
    assert by_name["rpool/vmdata/ares/httpd"] == "/vol/httpd"


def test_zfs_list_H_splits_on_tabs_so_values_may_contain_spaces():
    # Constructed input, not captured output: the tab layout of zfs list -H
    # (zfs(8)) with a mountpoint containing a space, to show why tabs matter.
    (dataset,) = parse_zfs_list("rpool/export\t/export/my files\n", ["name", "mountpoint"])
    assert dataset.mountpoint == "/export/my files"


def test_zfs_list_no_datasets_available_is_empty():
    assert parse_zfs_list("no datasets available\n") == []


def test_zfs_list_rejects_a_truncated_row():
    text = fixture("zfs/list_r_zones_smartos_nfs.txt").replace(
        "zones/opt                                    957K  11.3G   957K  legacy",
        "zones/opt                                    957K")
    with pytest.raises(ParseError, match="expected 5 columns") as err:
        parse_zfs_list(text)
    assert err.value.command == "zfs list" and err.value.lineno == 7


def test_zfs_list_rejects_a_garbage_size():
    text = fixture("zfs/list_snapshots_omnios.txt").replace("879M", "8x9M")
    with pytest.raises(ParseError, match="bad referenced value '8x9M'"):
        parse_zfs_list(text)


def test_zfs_list_rejects_output_without_a_header():
    with pytest.raises(ParseError, match="header line starting with 'NAME'"):
        parse_zfs_list("zones  4.32G  11.3G  654K  /zones\n")


def test_zfs_list_H_rejects_a_line_with_the_wrong_number_of_fields():
    with pytest.raises(ParseError, match="expected 3 tab-separated fields, found 2") as err:
        parse_zfs_list("zones\t4638564679\t12133282611\nzones/var\t76860620\n", "name,used,avail")
    assert err.value.lineno == 2


def test_zfs_list_rejects_empty_output_where_a_header_is_required():
    with pytest.raises(ParseError, match="empty output"):
        parse_zfs_list("")


@pytest.mark.parametrize("printed, value", [("0", 0), ("0B", 0), ("518K", 518 * K),
                                            ("1.23G", int(1.23 * G)), ("-", None),
                                            ("none", None), ("182983742", 182983742)])
def test_sizes_are_bytes_and_placeholders_are_none(printed, value):
    assert size(printed) == value


# ----------------------------------------------------------------------------- get
def test_zfs_get_types_a_compression_ratio():
    (prop,) = parse_zfs_get(fixture("zfs/get_compressratio_smartos_tips.txt"))
    assert (prop.dataset, prop.property, prop.value, prop.raw, prop.source) == (
        "zones", "compressratio", 1.46, "1.46x", None)


def test_zfs_get_types_a_volume_size_and_keeps_the_source():
    (prop,) = parse_zfs_get(fixture("zfs/get_volsize_smartos.txt"))
    assert (prop.property, prop.value, prop.source) == ("volsize", 60 * G, "local")


def test_zfs_get_all_keeps_values_with_spaces_and_types_known_properties():
    props = {p.property: p for p in parse_zfs_get(fixture("zfs/get_all_illumos_zfsadmin.txt"))}
    assert props["creation"].value == "Wed Jan 23  9:57 2008"
    assert props["used"].value == 120 * K
    assert props["mounted"].value is True
    assert props["compressratio"].value == 1.0
    assert (props["quota"].value, props["quota"].raw, props["quota"].source) == (
        None, "none", "default")
    assert props["copies"].value == 1
    assert props["type"].source is None
    assert len(props) == 36


def test_zfs_get_all_from_the_openzfs_man_page():
    props = {p.property: p for p in parse_zfs_get(fixture("zfs/get_all_openzfs_man.txt"))}
    assert props["quota"].value == 20 * G and props["quota"].source == "local"
    assert props["usedbydataset"].value == 21 * K
    assert props["creation"].value == "Tue Jul 21 15:53 2009"


def test_zfs_get_recursive_reads_a_row_whose_name_overflows_its_column():
    rows = parse_zfs_get(fixture("zfs/get_r_compression_illumos_zfsadmin.txt"))
    assert [(r.dataset, r.value, r.source) for r in rows] == [
        ("tank", "off", "default"), ("tank/home", "off", "default"),
        ("tank/home/bonwick", "on", "local")]


def test_zfs_get_H_o_value_returns_the_bare_value():
    (row,) = parse_zfs_get(fixture("zfs/get_H_value_p_illumos_zfsadmin.txt"), ["value"])
    assert (row.dataset, row.property, row.value) == (None, None, "182983742")


def test_zfs_get_H_o_name_value_reads_each_dataset():
    rows = parse_zfs_get(fixture("zfs/get_H_name_value_illumos_zfsadmin.txt"), "name,value")
    assert [(r.dataset, r.raw) for r in rows] == [("export/home", "5.57G"),
                                                  ("export/home/marks", "1.43G"),
                                                  ("export/home/maybee", "2.15G")]


def test_zfs_get_H_with_all_four_fields_types_the_value():
    # Constructed input, not captured output (no real 4-field "zfs get -H -p"
    # example was found): the tab layout of zfs(8) carrying the values of the
    # SmartOS "zfs get volsize" fixture, the size in bytes as -p prints it.
    (row,) = parse_zfs_get("zones/708c73e3-48f2-4da5-a0a6-e161215a4215-disk0\tvolsize\t"
                           "64424509440\tlocal\n", ZFS_GET_DEFAULT_FIELDS)
    assert (row.property, row.value, row.source) == ("volsize", 60 * G, "local")


def test_zfs_get_rejects_a_row_without_value_and_source():
    text = fixture("zfs/get_volsize_smartos.txt").replace("volsize   60G      local", "volsize")
    with pytest.raises(ParseError, match="NAME PROPERTY VALUE") as err:
        parse_zfs_get(text)
    assert err.value.command == "zfs get"


def test_zfs_get_rejects_a_bad_ratio():
    text = fixture("zfs/get_compressratio_smartos_tips.txt").replace("1.46x", "1.46y")
    with pytest.raises(ParseError, match=r"bad compressratio value '1\.46y'"):
        parse_zfs_get(text)


def test_zfs_get_rejects_the_wrong_header():
    with pytest.raises(ParseError, match="NAME PROPERTY VALUE"):
        parse_zfs_get(fixture("zfs/list_snapshots_omnios.txt"))


def test_zfs_get_rejects_unknown_H_fields():
    with pytest.raises(ParseError, match="unknown field"):
        parse_zfs_get("x\n", ["name", "colour"])


def test_zfs_list_H_p_names_the_line_of_a_bad_value():
    text = fixture("zfs/list_Hp_freebsd_openzfs_issue.txt").replace("2785411008", "27854l1008")
    fields = "name,used,usedbydataset,usedbyrefreservation,usedbysnapshots,usedbychildren,lrefer"
    with pytest.raises(ParseError, match="bad usedbydataset value '27854l1008'") as err:
        parse_zfs_list(text, fields)
    assert err.value.lineno == 1 and err.value.line.startswith("z/data/VMs")
