"""Parsers of dtrace -l, kstat -p (and arcstats), zonememstat and prstat -Z on real output."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers.dtrace_list import parse_dtrace_list
from smartos_lab.parsers.kstat import ArcStats, hit_ratios, kstat_values, parse_arcstats, parse_kstat
from smartos_lab.parsers.zone_stats import parse_prstat_zones, parse_zonememstat

from ._parser_fixtures import fixture

# ============================================================================ dtrace -l


def test_dtrace_l_lists_probes_with_empty_module_and_function():
    probes = parse_dtrace_list(fixture("dtrace/list_all_guide.txt", drop_elisions=True))
    assert [p.description for p in probes[:4]] == [
        "dtrace:::BEGIN", "dtrace:::END", "dtrace:::ERROR",
        "lockstat:genunix:mutex_enter:adaptive-acquire"]
    assert probes[-1].id == 7 and probes[-1].function == "mutex_exit"


def test_dtrace_l_usdt_provider_wider_than_its_column():
    probes = parse_dtrace_list(fixture("dtrace/list_usdt_python_cpython_docs.txt"))
    assert len(probes) == 8
    assert {p.provider for p in probes} == {"python18035"}
    assert (probes[4].module, probes[4].function, probes[4].name) == ("python3.6", "collect",
                                                                       "gc-done")


def test_dtrace_l_header_only_means_no_probe_matched():
    header = fixture("dtrace/list_all_guide.txt").splitlines()[0] + "\n"
    assert parse_dtrace_list(header) == []


def test_dtrace_l_rejects_a_listing_wrapped_at_the_terminal_width():
    # Real capture: the SmartOS DTrace FAQ's listing wrapped "wait-done" over two lines.
    with pytest.raises(ParseError, match="cut off or wrapped") as err:
        parse_dtrace_list(fixture("dtrace/list_io_wrapped_smartos_faq.txt"))
    assert err.value.line == "-done"


def test_dtrace_l_rejects_a_row_cut_before_the_name_column():
    text = fixture("dtrace/list_all_guide.txt", drop_elisions=True)
    cut = text.replace("mutex_exit  adaptive-release", "")
    with pytest.raises(ParseError, match="before the NAME column"):
        parse_dtrace_list(cut)


def test_dtrace_l_rejects_output_without_the_header():
    text = fixture("dtrace/list_all_guide.txt", drop_elisions=True)
    with pytest.raises(ParseError, match="header"):
        parse_dtrace_list("\n".join(text.splitlines()[1:]))
    with pytest.raises(ParseError, match="empty output"):
        parse_dtrace_list("")


# ============================================================================ kstat -p


def test_kstat_p_with_tabs_expanded_to_spaces():
    (sample,) = parse_kstat(fixture("kstat/avenrun_illumos_man.txt"))
    assert sample.as_dict() == {"unix:0:system_misc:avenrun_15min": 3,
                                "unix:0:system_misc:avenrun_1min": 4,
                                "unix:0:system_misc:avenrun_5min": 2}


def test_kstat_p_instances_and_text_values():
    values = kstat_values(fixture("kstat/state_and_avenrun_illumos_man.txt"))
    assert values["cpu_info:3:cpu_info3:state"] == "on-line"
    first = parse_kstat(fixture("kstat/cpu_stat_intr_illumos_man.txt"))[0].values[3]
    assert (first.module, first.instance, first.name, first.statistic, first.value) == (
        "cpu_stat", 1, "cpu_stat1", "intr", 426073)


def test_kstat_p_interval_gives_one_sample_per_report():
    samples = parse_kstat(fixture("kstat/interval_three_samples_illumos_man.txt"))
    assert len(samples) == 3 and all(len(s.values) == 3 for s in samples)


@pytest.mark.parametrize("name,stamps", [
    ("timestamp_date_illumos_man.txt", ["Thu Jul 22 19:39:50 1999", "Thu Jul 22 19:39:55 1999"]),
    ("timestamp_unix_illumos_man.txt", ["932668656"]),
])
def test_kstat_p_T_timestamps_start_each_sample(name, stamps):
    samples = parse_kstat(fixture(f"kstat/{name}"))
    assert [s.timestamp for s in samples] == stamps
    assert samples[-1].get("unix:0:system_misc:avenrun_5min") in (11, 18)


def test_kstat_p_rejects_a_line_cut_after_the_name():
    text = fixture("kstat/cpu_stat_intr_illumos_man.txt")
    cut = text[:text.index("cpu_stat:3:cpu_stat3:intrthread") + len("cpu_stat:3:cpu_stat3:intrthr")]
    with pytest.raises(ParseError, match="module:instance:name:statistic") as err:
        parse_kstat(cut)
    assert err.value.lineno == 12


def test_kstat_p_rejects_a_bad_statistic_name_and_empty_output():
    with pytest.raises(ParseError, match="bad statistic name"):
        parse_kstat(fixture("kstat/avenrun_illumos_man.txt").replace("unix:0:", "unix:x:", 1))
    with pytest.raises(ParseError, match="matched no statistics"):
        parse_kstat("\n")


def test_kstat_p_rejects_output_cut_after_a_timestamp():
    text = fixture("kstat/timestamp_date_illumos_man.txt")
    cut = text[:text.rindex("unix:0:system_misc:avenrun_15min")]
    with pytest.raises(ParseError, match="after a timestamp"):
        parse_kstat(cut)


def test_arcstats_l2_hit_ratio_from_a_real_capture():
    arc = parse_arcstats(fixture("kstat/arcstats_l2_spxops.txt"))
    assert (arc.l2_hits, arc.l2_misses, arc.l2_size) == (2832237, 37939686, 18502909952)
    assert arc.l2_hit_ratio == pytest.approx(2832237 / (2832237 + 37939686))
    assert arc.hits is None and arc.hit_ratio is None       # the capture kept only l2_*
    assert arc.values["l2_writes_sent"] == 376002


def test_arcstats_refuses_statistics_of_another_kstat():
    with pytest.raises(ParseError, match="not an arcstats statistic: unix:0:system_misc"):
        parse_arcstats(fixture("kstat/avenrun_illumos_man.txt"))


def test_interval_hit_ratios_use_counter_deltas():
    def arc(hits, misses):
        return ArcStats(hits, misses, None, None, None, None, None, None, {})
    assert list(hit_ratios([arc(90, 10), arc(180, 20), arc(180, 20), arc(None, 5)])) == [
        0.9, None, None]


# ============================================================================ zonememstat


def test_zonememstat_global_zone_has_no_cap():
    rows = parse_zonememstat(fixture("zonememstat/default_smartos_tips.txt"))
    assert len(rows) == 7
    glob = rows[0]
    assert (glob.zone, glob.rss_mib, glob.cap_mib, glob.nover, glob.pageout_mib) == (
        "global", 170, None, None, None)
    last = rows[-1]
    assert (last.zone, last.rss_mib, last.cap_mib, last.over_cap) == (
        "17510b88-b8fe-44fc-ad72-4a6f011d3ee4", 2555, 3072, False)


def test_zonememstat_global_zone_with_zero_rss():
    glob, first, second = parse_zonememstat(fixture("zonememstat/global_zero_rss_esdc_docs.txt"))
    assert (glob.rss_mib, glob.cap_mib, glob.pageout_mib) == (0, None, None)
    assert (first.rss_mib, first.cap_mib, second.nover, second.pageout_mib) == (2082, 3072, 0, 0)


def test_zonememstat_without_header_reads_the_same_rows():
    text = fixture("zonememstat/default_smartos_tips.txt")
    assert parse_zonememstat(text.split("\n", 1)[1]) == parse_zonememstat(text)[0:]


def test_zonememstat_rejects_a_cut_off_row():
    text = fixture("zonememstat/default_smartos_tips.txt").rstrip()
    with pytest.raises(ParseError, match="expected 5 columns, found 4") as err:
        parse_zonememstat(text.rsplit(" ", 1)[0])
    assert err.value.lineno == 8


def test_zonememstat_rejects_an_unknown_header_and_a_bad_number():
    text = fixture("zonememstat/default_smartos_tips.txt")
    with pytest.raises(ParseError, match="unknown header"):
        parse_zonememstat(text.replace("NOVER", "OVER"))
    with pytest.raises(ParseError, match="bad RSS"):
        parse_zonememstat(text.replace(" 1057 ", " 1O57 "))


# ============================================================================ prstat -Z


def test_prstat_Z_one_sample_both_tables_and_the_total():
    sample = parse_prstat_zones(fixture("prstat/zones_smartos_tips.txt"))
    assert len(sample.processes) == 18 and len(sample.zones) == 8
    first = sample.processes[0]
    assert (first.pid, first.size, first.rss, first.state, first.cpu_seconds, first.cpu_percent,
            first.process, first.nlwp) == (18934, 2098 << 20, 2086 << 20, "sleep",
                                           550 * 3600 + 6 * 60 + 58, 1.1, "qemu-system-x86", 6)
    glob = sample.zone("global")
    assert (glob.zoneid, glob.nproc, glob.swap, glob.memory_percent) == (0, 88, 555 << 20, 0.5)
    assert (sample.total_processes, sample.total_lwps, sample.load_averages) == (
        155, 836, (1.58, 1.59, 1.73))


def test_prstat_Z_truncated_zone_names_are_found_by_their_full_name():
    sample = parse_prstat_zones(fixture("prstat/zones_truncated_names_esdc_docs.txt"))
    assert [z.zone for z in sample.zones][:2] == ["f7860689-c435-4964-9f7d-2d2*",
                                                   "a28faa4d-d0ee-4593-938a-f0d*"]
    zone = sample.zone("a28faa4d-d0ee-4593-938a-f0d062022b02")
    assert (zone.zoneid, zone.rss, zone.cpu_seconds) == (1, 2082 << 20, 69)
    assert (sample.total_processes, sample.total_lwps) == (93, 521)
    assert sample.processes[2].nice == -20 and sample.processes[2].size == 0
    with pytest.raises(KeyError, match="not in the prstat sample"):
        sample.zone("b0000000-0000-0000-0000-000000000000")


def test_prstat_Z_sample_cut_before_the_total_line_is_refused():
    text = fixture("prstat/zones_smartos_tips.txt")
    with pytest.raises(ParseError, match="no Total line"):
        parse_prstat_zones(text[:text.index("Total:")])


def test_prstat_Z_refuses_a_second_sample_and_a_cut_row():
    text = fixture("prstat/zones_smartos_tips.txt")
    with pytest.raises(ParseError, match="after the Total line"):
        parse_prstat_zones(text + text)
    cut = text.replace("qemu-system-x86/6\n", "\n", 1)
    with pytest.raises(ParseError, match="expected 10 process columns"):
        parse_prstat_zones(cut)


def test_prstat_Z_refuses_output_without_the_zone_table():
    text = fixture("prstat/zones_smartos_tips.txt")
    start, end = text.index("ZONEID"), text.index("Total:")
    with pytest.raises(ParseError, match="was -Z given"):
        parse_prstat_zones(text[:start] + text[end:])
