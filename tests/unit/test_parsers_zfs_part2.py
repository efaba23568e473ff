"""Parsers of zfs diff, zpool iostat, mdata and vmadm's reports on real published output."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers.mdata import mdata_value, parse_mdata_json, parse_mdata_list
from smartos_lab.parsers.vmadm_messages import parse_vmadm_report
from smartos_lab.parsers.zfs_diff import parse_zfs_diff
from smartos_lab.parsers.zpool_iostat import parse_zpool_iostat

from ._parser_fixtures import fixture

# ============================================================================ zfs diff


def test_zfs_diff_F_every_change_type():
    entries = parse_zfs_diff(fixture("zfs/diff_F_openzfs_man.txt"))
    assert [(e.change, e.file_type, e.path) for e in entries] == [
        ("M", "/", "/tank/test/"), ("M", "F", "/tank/test/linked"),
        ("R", "F", "/tank/test/oldname"), ("-", "F", "/tank/test/deleted"),
        ("+", "F", "/tank/test/created"), ("M", "F", "/tank/test/modified")]
    assert entries[1].link_delta == 1 and entries[2].new_path == "/tank/test/newname"
    assert [e.kind for e in entries[2:5]] == ["renamed", "removed", "created"]


def test_zfs_diff_H_tab_separated_form_parses_the_same():
    # The man page shows the tab-separated output with its tabs expanded; -H is the
    # same fields joined by tabs without the arrow.
    text = fixture("zfs/diff_F_openzfs_man.txt")
    tabbed = "\n".join("\t".join(line.replace(" -> ", " ").split())
                       for line in text.splitlines()) + "\n"
    assert parse_zfs_diff(tabbed) == parse_zfs_diff(text)


def test_zfs_diff_unescapes_octal_escaped_spaces():
    # zfs diff prints a space in a path as \0040 (zfs-diff(8), -h): one line of the
    # man page's example with its created path holding a space.
    (entry,) = parse_zfs_diff("+       F       /tank/test/new\\0040file\n")
    assert entry.path == "/tank/test/new file"


def test_zfs_diff_no_change_is_an_empty_list():
    assert parse_zfs_diff("") == []


def test_zfs_diff_rejects_a_rename_cut_after_the_arrow():
    text = fixture("zfs/diff_F_openzfs_man.txt").replace(" /tank/test/newname", "")
    with pytest.raises(ParseError, match="old and the new path") as err:
        parse_zfs_diff(text)
    assert err.value.lineno == 3


def test_zfs_diff_rejects_unknown_change_and_file_types():
    text = fixture("zfs/diff_F_openzfs_man.txt")
    with pytest.raises(ParseError, match="change type"):
        parse_zfs_diff(text.replace("+       F", "X       F"))
    with pytest.raises(ParseError, match="unknown file type 'Q'"):
        parse_zfs_diff(text.replace("-       F", "-       Q"))


def test_zfs_diff_rejects_a_line_cut_before_the_path():
    text = fixture("zfs/diff_F_openzfs_man.txt")
    with pytest.raises(ParseError):
        parse_zfs_diff(text + "M       F\n")


# ============================================================================ zpool iostat


def test_zpool_iostat_pool_table_in_bytes_and_ops():
    tank, dozer = parse_zpool_iostat(fixture("zpool/iostat_pools_illumos_zfsadmin.txt"))
    assert (tank.name, tank.alloc, tank.free) == ("tank", 100 << 30, int(20.0 * (1 << 30)))
    assert (tank.read_ops, tank.write_ops, tank.read_bytes, tank.write_bytes) == (
        round(1.2 * (1 << 20)), 102 << 10, int(1.2 * (1 << 20)), int(3.45 * (1 << 10)))
    assert dozer.sample == tank.sample == 0


def test_zpool_iostat_interval_reports_are_numbered():
    rows = parse_zpool_iostat(fixture("zpool/iostat_interval_illumos_zfsadmin.txt"))
    assert [(r.sample, r.read_ops, r.write_ops) for r in rows][1:] == [(1, 134, 0), (2, 94, 342)]


def test_zpool_iostat_v_vdev_tree_depths_and_dashes():
    rows = parse_zpool_iostat(fixture("zpool/iostat_v_illumos_zfsadmin.txt"))
    assert [(r.name, r.depth) for r in rows] == [("mirror", 0), ("c1t0d0", 1), ("c1t1d0", 1),
                                                 ("total", 0)]
    assert rows[1].alloc is None and rows[1].write_ops == 295


def test_zpool_iostat_extra_c_columns_are_kept():
    pool, leaf = parse_zpool_iostat(fixture("zpool/iostat_vc_size_openzfs_man.txt"))
    assert pool.extra == {} and leaf.extra == {"size": "70G"} and leaf.depth == 1


def test_zpool_iostat_scripted_Hp_rows_and_samples():
    # Constructed input, not captured output: -H -p prints the same seven fields
    # tab-separated as exact integers (zpool-iostat(8)); the values are the ZFS
    # Administration Guide's pool-wide table written that way.  Real -Hp output is
    # parsed in tests/integration/test_zfs_part2_openzfs.py.
    text = ("tank\t107374182400\t21474836480\t1258291\t104448\t1258291\t3532\n"
            "dozer\t13207024435\t72692321484\t135168\t15565\t32870\t1228\n"
            "tank\t107374182400\t21474836480\t134\t0\t1372\t0\n")
    rows = parse_zpool_iostat(text)
    assert [(r.name, r.sample, r.read_ops) for r in rows] == [
        ("tank", 0, 1258291), ("dozer", 0, 135168), ("tank", 1, 134)]


def test_zpool_iostat_rejects_a_cut_off_row_and_headers_only():
    text = fixture("zpool/iostat_pools_illumos_zfsadmin.txt")
    with pytest.raises(ParseError, match="expected 7 columns") as err:
        parse_zpool_iostat(text.rsplit("  ", 1)[0])
    assert err.value.lineno == 5
    headers = "\n".join(text.splitlines()[:3]) + "\n"
    with pytest.raises(ParseError, match="no rows"):
        parse_zpool_iostat(headers)
    with pytest.raises(ParseError, match="after the first header"):
        parse_zpool_iostat(text.splitlines()[0] + "\n")


def test_zpool_iostat_rejects_a_bad_header_a_bad_value_and_a_short_scripted_line():
    text = fixture("zpool/iostat_pools_illumos_zfsadmin.txt")
    with pytest.raises(ParseError, match="expected the header"):
        parse_zpool_iostat(text.replace("avail", "avial"))
    with pytest.raises(ParseError, match="bad read bandwidth"):
        parse_zpool_iostat(text.replace("32.1K", "32,1K"))
    with pytest.raises(ParseError, match="7 tab-separated fields"):
        parse_zpool_iostat("tank\t107374182400\t21474836480\t134\n")


# ============================================================================ mdata


def test_mdata_list_keys_from_the_docs_transcript():
    assert parse_mdata_list(fixture("mdata/list_two_keys_smartos_docs.txt")) == ["key1", "key2"]
    assert parse_mdata_list(fixture("mdata/list_three_keys_smartos_docs.txt"))[-1] == "key3"


def test_mdata_get_value_and_exit_statuses():
    assert mdata_value(fixture("mdata/get_key1_smartos_docs.txt"), 0, "key1") == "val1"
    assert mdata_value("", 1, "key9") is None
    with pytest.raises(ParseError, match=r"exit status 2 \(error\)"):
        mdata_value("", 2, "key1")


def test_mdata_list_rejects_a_line_that_is_not_a_key():
    with pytest.raises(ParseError, match="one metadata key per line"):
        parse_mdata_list("key1\nkey two\n")


def test_mdata_json_value_and_cut_off_json():
    text = fixture("mdata/vmadm_customer_metadata_smartos_docs.txt")
    assert parse_mdata_json(text, "customer_metadata") == {
        "key1": "val1", "key2": "val2", "key3": "val3"}
    with pytest.raises(ParseError, match="not JSON"):
        parse_mdata_json(text[: text.index('"key3"')], "customer_metadata")


# ============================================================================ vmadm reports


def test_vmadm_reports_of_create_update_and_create_snapshot():
    created = parse_vmadm_report(fixture("vmadm/create_message_smartos_docs.txt"), "created")
    assert created.uuid == "d6a0a022-3855-4762-a2e5-3f16969ca2fb"
    updated = parse_vmadm_report(fixture("vmadm/update_json_add_nic_smartos_docs.txt"), "updated")
    assert updated.uuid == "54f1cc77-68f1-42ab-acac-5c4f64f5d6e0"
    snap = parse_vmadm_report(fixture("vmadm/create_snapshot_smartos_dev_upgrade.txt"),
                              "snapshot created")
    assert (snap.snapshot, snap.uuid) == ("2024.4-upgrade", "79809c3b-6c21-4eee-ba85-b524bcecfdb8")


def test_vmadm_report_cut_off_inside_the_uuid_is_refused():
    text = fixture("vmadm/create_snapshot_smartos_dev_upgrade.txt")
    with pytest.raises(ParseError, match="no 'snapshot created' report"):
        parse_vmadm_report(text[:-8], "snapshot created")
    with pytest.raises(ParseError, match="no 'snapshot rolled back' report"):
        parse_vmadm_report(text, "snapshot rolled back")
