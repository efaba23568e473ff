"""zpool status / zpool list parsers, on real output from illumos, SmartOS and OpenZFS docs."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers import ZPOOL_LIST_DEFAULT_FIELDS, parse_zpool_list, parse_zpool_status
from smartos_lab.parsers._table import count

from ._parser_fixtures import fixture, fixtures_in

GiB = 1 << 30


def status(name: str):
    return parse_zpool_status(fixture(f"zpool/{name}"))


# ----------------------------------------------------------------------------- status
@pytest.mark.parametrize("path", [p for p in fixtures_in("zpool") if "/status_" in p])
def test_every_real_zpool_status_fixture_parses_with_the_pool_as_first_config_row(path):
    for pool in parse_zpool_status(fixture(path)):
        assert pool.name and pool.state
        assert pool.root is not None and pool.root.name == pool.name


def test_zpool_status_reads_pool_state_and_mirror_tree():
    (pool,) = status("status_mirror_resilvered_smartos.txt")
    assert (pool.name, pool.state) == ("zones", "ONLINE")
    mirror = pool.root.children[0]
    assert (mirror.name, mirror.kind) == ("mirror-0", "mirror")
    assert [d.name for d in mirror.children] == ["c1t0d0", "c1t1d0"]
    assert [d.name for d in pool.root.leaves()] == ["c1t0d0", "c1t1d0"]


def test_zpool_status_reports_a_finished_resilver_with_bytes_and_errors():
    (pool,) = status("status_mirror_resilvered_smartos.txt")
    scan = pool.scan
    assert (scan.function, scan.state) == ("resilver", "finished")
    assert scan.repaired_bytes == int(1.36 * GiB)
    assert scan.errors == 0
    assert scan.duration == "0h0m"
    assert scan.ended == "Sat Mar  2 16:16:15 2013"


def test_zpool_status_without_an_errors_line_leaves_data_errors_unknown():
    (pool,) = status("status_mirror_resilvered_smartos.txt")
    assert pool.errors is None and pool.data_errors is None


def test_zpool_status_reports_scrub_repaired_zero_in_duration_with_no_errors():
    (pool,) = status("status_scrub_repaired_omnios.txt")
    assert pool.scan.text == "scrub repaired 0 in 1h39m with 0 errors on Sat May 12 15:28:36 2018"
    assert (pool.scan.function, pool.scan.state) == ("scrub", "finished")
    assert (pool.scan.repaired_bytes, pool.scan.errors) == (0, 0)
    assert pool.scan.duration == "1h39m"
    assert pool.data_errors == 0 and pool.errors == "No known data errors"


def test_zpool_status_reports_resilver_progress_from_scanned_out_of_lines():
    (pool,) = status("status_resilver_in_progress_omnios.txt")
    scan = pool.scan
    assert (scan.function, scan.state) == ("resilver", "in_progress")
    assert scan.started == "Mon Apr 13 14:24:45 2020"
    assert scan.scanned_bytes == int(18.1 * (1 << 20))
    assert scan.total_bytes == int(1.60 * GiB)
    assert scan.time_to_go == "0h22m"
    assert scan.repaired_bytes == int(16.1 * (1 << 20))
    assert scan.percent_done == 1.10
    assert pool.status.startswith("One or more devices is currently being resilvered.")
    assert pool.action == "Wait for the resilver to complete."


def test_zpool_status_reports_scrub_progress_with_scanned_issued_and_total():
    (pool,) = status("status_scrub_in_progress_openzfs_issue.txt")
    scan = pool.scan
    assert (scan.function, scan.state) == ("scrub", "in_progress")
    assert scan.scanned_bytes == int(1.18 * GiB)
    assert scan.issued_bytes == int(1.19 * GiB)
    assert scan.total_bytes == int(1.18 * GiB)
    assert (scan.repaired_bytes, scan.percent_done) == (0, 100.33)
    assert scan.time_to_go == "167416 days 14:45:42"


def test_zpool_status_scrub_without_estimate_has_no_time_to_go():
    (pool,) = status("status_scrub_no_estimate_openzfs_issue.txt")
    assert pool.scan.percent_done == 118068.85
    assert pool.scan.time_to_go is None
    assert pool.scan.issued_bytes == 245 << 40


def test_zpool_status_reports_a_canceled_scrub():
    (pool,) = status("status_scrub_canceled_openzfs_issue.txt")
    assert (pool.scan.function, pool.scan.state) == ("scrub", "canceled")
    assert pool.scan.ended == "Mon Jul 16 16:30:35 2018"


def test_zpool_status_reads_old_style_scrub_line():
    (pool,) = status("status_old_scrub_completed_illumos_zfsadmin.txt")
    assert (pool.scan.function, pool.scan.state, pool.scan.errors) == ("scrub", "finished", 0)
    assert pool.scan.ended == "Wed Aug 30 14:02:24 2006"


def test_zpool_status_none_requested_means_no_scan():
    (pool,) = status("status_mirror_cache_illumos_zfsadmin.txt")
    assert (pool.scan.function, pool.scan.state) == (None, "none")


def test_zpool_status_reports_cksum_errors_per_vdev():
    (pool,) = status("status_cksum_errors_persistent_illumos_zfsadmin.txt")
    counts = {v.name: (v.read_errors, v.write_errors, v.checksum_errors) for v in pool.vdevs()}
    assert counts == {"tank": (0, 0, 1), "mirror": (0, 0, 1), "c1t0d0": (0, 0, 2),
                      "c1t1d0": (0, 0, 0)}
    assert pool.vdev("c1t1d0").state == "UNAVAIL"
    assert pool.vdev("c1t1d0").note == "corrupted data"
    assert pool.scan.errors == 1


def test_zpool_status_keeps_persistent_error_rows_after_the_errors_line():
    (pool,) = status("status_cksum_errors_persistent_illumos_zfsadmin.txt")
    assert pool.errors == "The following persistent errors have been detected:"
    assert pool.data_errors is None
    assert pool.error_details == ["DATASET  OBJECT  RANGE", "5        0       lvl=4294967295 blkid=0"]


def test_zpool_status_lists_files_with_permanent_errors():
    (pool,) = status("status_permanent_error_files_illumos_zfsadmin.txt")
    assert pool.error_details == ["/monkey/a.txt", "/monkey/bananas/b.txt", "/monkey/sub/dir/d.txt",
                                  "/monkey/ghost/e.txt", "/monkey/ghost/boo/f.txt"]
    assert [v.name for v in pool.root.children] == ["c1t1d0s6", "c1t1d0s7"]


def test_zpool_status_places_cache_devices_in_their_own_section():
    (pool,) = status("status_mirror_cache_illumos_zfsadmin.txt")
    cache = pool.section("cache")
    assert cache.state is None and cache.checksum_errors is None
    assert [d.name for d in cache.children] == ["c0t0d0"]
    assert [d.name for d in pool.root.leaves()] == ["c0t2d0", "c0t4d0"]


def test_zpool_status_nests_mirrored_logs_under_the_logs_section():
    (pool,) = status("status_mirrors_logs_illumos_man.txt")
    logs = pool.section("logs")
    assert [(v.name, v.kind) for v in logs.children] == [("mirror-2", "mirror")]
    assert [d.name for d in logs.children[0].children] == ["c4t0d0", "c4t1d0"]
    assert [v.name for v in pool.root.children] == ["mirror-0", "mirror-1"]


def test_zpool_status_old_logs_section_carries_state_and_counts():
    (pool,) = status("status_mirrors_logs_illumos_zfsadmin.txt")
    logs = pool.section("log")
    assert (logs.state, logs.read_errors) == ("ONLINE", 0)
    assert len(pool.root.children) == 2 and all(v.kind == "mirror" for v in pool.root.children)


def test_zpool_status_reads_spares_and_an_active_spare_vdev():
    (pool,) = status("status_spare_in_use_degraded_illumos_zfsadmin.txt")
    spare = pool.vdev("spare")
    assert (spare.kind, spare.state) == ("spare", "DEGRADED")
    assert [(d.name, d.state, d.note) for d in spare.children] == [
        ("c2t1d0", "UNAVAIL", "cannot open"), ("c2t3d0", "ONLINE", None)]
    spares = pool.section("spares")
    assert [(d.name, d.state, d.note, d.read_errors) for d in spares.children] == [
        ("c1t3d0", "AVAIL", None, None), ("c2t3d0", "INUSE", "currently in use", None)]


def test_zpool_status_joins_multiline_status_text():
    (pool,) = status("status_spare_in_use_degraded_illumos_zfsadmin.txt")
    assert pool.status == ("One or more devices could not be opened. Sufficient replicas exist "
                           "for the pool to continue functioning in a degraded state.")
    assert pool.see == "http://illumos.org/msg/ZFS-8000-D3"


def test_zpool_status_returns_one_entry_per_pool():
    pools = status("status_two_pools_omnios.txt")
    assert [(p.name, p.root.children[0].name) for p in pools] == [("tank1", "c1t3d0"),
                                                                   ("tank2", "c1t4d0")]


def test_zpool_status_x_all_pools_healthy_is_an_empty_list():
    assert status("status_all_healthy_illumos_zfsadmin.txt") == []


@pytest.mark.parametrize("printed, value", [("0", 0), ("542", 542), ("1.88K", 1925),
                                            ("13.4M", 14050918)])
def test_error_counters_with_suffixes_become_ints(printed, value):
    # "1.88K" and "13.4M" are counters seen in zpool status output quoted in
    # openzfs/zfs issues #12090 and #15932.
    assert count(printed) == value


def test_zpool_status_rejects_empty_output():
    with pytest.raises(ParseError, match="zpool status: empty output"):
        parse_zpool_status("\n\n")


def test_zpool_status_rejects_text_before_the_first_pool():
    with pytest.raises(ParseError) as err:
        parse_zpool_status("cannot open 'tank': no such pool\n")
    assert err.value.command == "zpool status"
    assert err.value.line == "cannot open 'tank': no such pool"


def test_zpool_status_rejects_a_vdev_row_with_missing_counters():
    text = fixture("zpool/status_two_pools_omnios.txt").replace(
        "c1t3d0    ONLINE       0     0     0", "c1t3d0    ONLINE       0     0")
    with pytest.raises(ParseError, match="READ, WRITE and CKSUM") as err:
        parse_zpool_status(text)
    assert err.value.lineno == 8


@pytest.mark.parametrize("cut", ["c1t3d0    ONL", "c1t3d0    ONLINE", "c1t3d0", "c1t3d0    ONLINE  "])
def test_zpool_status_cut_short_mid_row_is_a_parse_error_not_data(cut):
    """Output cut mid-line (a timeout) must not look like a vdev with no counters: zpool
    prints every config row with state and READ/WRITE/CKSUM (zpool_main.c
    print_status_config); only hot spares have no counters, only headings no state."""
    text = fixture("zpool/status_two_pools_omnios.txt")
    cut_at = text.index("c1t3d0    ONLINE       0     0     0")
    with pytest.raises(ParseError, match="cut short") as err:
        parse_zpool_status(text[:cut_at] + cut + "\n")
    assert err.value.lineno == 8


def test_hot_spares_have_a_state_and_no_counters():
    status = parse_zpool_status(fixture("zpool/status_spare_in_use_degraded_illumos_zfsadmin.txt"))[0]
    spares = status.section("spares").children
    assert [(v.name, v.state, v.checksum_errors) for v in spares] == [
        ("c1t3d0", "AVAIL", None), ("c2t3d0", "INUSE", None)]


def test_zpool_status_rejects_garbage_in_the_state_column():
    text = fixture("zpool/status_two_pools_omnios.txt").replace("c1t4d0    ONLINE",
                                                                "c1t4d0    online?")
    with pytest.raises(ParseError, match="bad vdev state"):
        parse_zpool_status(text)


def test_zpool_status_rejects_an_unknown_scan_line():
    text = fixture("zpool/status_two_pools_omnios.txt").replace("scan: none requested",
                                                                "scan: defrag in progress", 1)
    with pytest.raises(ParseError, match="unrecognised scan line") as err:
        parse_zpool_status(text)
    assert err.value.line == "defrag in progress"


def test_zpool_status_rejects_a_config_table_without_its_header():
    text = fixture("zpool/status_two_pools_omnios.txt").replace(
        "        NAME        STATE     READ WRITE CKSUM\n", "", 1)
    with pytest.raises(ParseError, match="NAME STATE READ WRITE CKSUM"):
        parse_zpool_status(text)


def test_zpool_status_rejects_a_truncated_scan_progress_line():
    text = fixture("zpool/status_resilver_in_progress_omnios.txt").replace(
        "    16.1M resilvered, 1.10% done", "    16.1M resil")
    with pytest.raises(ParseError, match="scan progress"):
        parse_zpool_status(text)


# ----------------------------------------------------------------------------- list
def test_zpool_list_converts_sizes_capacity_and_dedup():
    (zones,) = parse_zpool_list(fixture("zpool/list_smartos_tips.txt"))
    assert zones.name == "zones"
    assert zones.size == 832 * GiB
    assert zones.allocated == int(67.9 * GiB)
    assert zones.free == 764 * GiB
    assert zones.expandsize is None
    assert (zones.capacity, zones.dedupratio) == (8.0, 1.0)
    assert (zones.health, zones.altroot) == ("ONLINE", None)
    assert zones.raw["cap"] == "8%"


def test_zpool_list_reads_every_pool_row():
    pools = parse_zpool_list(fixture("zpool/list_three_pools_smartos.txt"))
    assert [(p.name, p.capacity) for p in pools] == [("backup", 8.0), ("pool1", 48.0),
                                                     ("zones", 0.0)]
    assert pools[0].size == int(1.36 * (1 << 40))


def test_zpool_list_faulted_pool_has_no_sizes():
    pools = parse_zpool_list(fixture("zpool/list_faulted_pool_illumos_man.txt"))
    zion = pools[-1]
    assert (zion.name, zion.health) == ("zion", "FAULTED")
    assert (zion.size, zion.allocated, zion.fragmentation, zion.dedupratio) == (None,) * 4
    assert pools[0].fragmentation == 33.0


def test_zpool_list_verbose_rows_carry_their_depth():
    rows = parse_zpool_list(fixture("zpool/list_verbose_raidz_illumos_man.txt"))
    assert [(r.name, r.depth) for r in rows] == [("data", 0), ("raidz1", 1), ("c1t1d0", 2),
                                                 ("c1t2d0", 2), ("c1t3d0", 2)]
    assert rows[3].expandsize == 10 * GiB
    assert rows[1].capacity is None


def test_zpool_list_H_p_gives_exact_bytes_and_vdev_rows():
    rows = parse_zpool_list(fixture("zpool/list_Hp_verbose_openzfs_issue.txt"),
                            ZPOOL_LIST_DEFAULT_FIELDS)
    pool, mirror, sdb, _ = rows
    assert (pool.name, pool.size, pool.allocated, pool.free) == (
        "pool_0", 1992864825344, 779701190656, 1213163634688)
    assert (pool.fragmentation, pool.capacity, pool.dedupratio) == (0.0, 39.0, 1.0)
    assert (mirror.name, mirror.depth, mirror.dedupratio, mirror.health) == (
        "mirror-0", 1, None, "ONLINE")
    assert (sdb.name, sdb.size) == ("/dev/sdb1", None)


def test_zpool_list_no_pools_available_is_empty():
    assert parse_zpool_list("no pools available\n") == []


def test_zpool_list_rejects_a_row_with_a_missing_column():
    text = fixture("zpool/list_three_pools_smartos.txt").replace("1.00x  ONLINE  -\nzones",
                                                                 "1.00x  ONLINE\nzones")
    with pytest.raises(ParseError, match="expected 9 columns, found 8") as err:
        parse_zpool_list(text)
    assert err.value.line.startswith("pool1")


def test_zpool_list_rejects_a_non_numeric_size():
    text = fixture("zpool/list_smartos_tips.txt").replace("832G", "huge")
    with pytest.raises(ParseError, match="bad size value 'huge'"):
        parse_zpool_list(text)


def test_zpool_list_rejects_an_unknown_header():
    with pytest.raises(ParseError, match="unknown column"):
        parse_zpool_list("NAME  SIZE  COLOUR\nzones  1G  blue\n")


def test_zpool_list_H_rejects_wrong_field_count():
    with pytest.raises(ParseError, match="expected 11 tab-separated fields"):
        parse_zpool_list("zones\t1\t2\n", ZPOOL_LIST_DEFAULT_FIELDS)
