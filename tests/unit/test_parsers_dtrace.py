"""dtrace output parser, tested on real dtrace output from the illumos Dynamic Tracing
Guide, the DTraceToolkit examples and the SmartOS docs (tests/fixtures/dtrace)."""
from __future__ import annotations

import pytest

from smartos_lab.errors import DTraceError, ParseError
from smartos_lab.parsers.dtrace import (
    AggRow,
    Bucket,
    DTraceCompileError,
    DTraceProbeSpecError,
    DTraceStreamParser,
    parse_dtrace_output,
    parse_dtrace_ticks,
    parse_printa,
)

from ._parser_fixtures import fixture_files, fixture_path

HEADER = ("# source: ", "# command: ", "# note: ")


def fixture(name: str) -> str:
    """The captured output of a fixture file, without its source/command header."""
    lines = fixture_path(f"dtrace/{name}").read_text().split("\n")
    while lines and lines[0].startswith(HEADER):
        lines.pop(0)
    return "\n".join(lines)


def parse(name: str):
    return parse_dtrace_output(fixture(name))


@pytest.mark.parametrize("path", fixture_files("dtrace"), ids=lambda p: p.name)
def test_every_fixture_names_its_source_and_command(path):
    first, second = path.read_text().split("\n")[:2]
    assert first.startswith("# source: ") and len(first) > len("# source: ") + 10
    assert second.startswith("# command: ")


# --- header -------------------------------------------------------------------------------
def test_script_header_gives_script_name_and_probe_count():
    out = parse("guide_count_writesbycmd.txt")
    assert [(e.kind, e.name, e.probes) for e in out.enablings] == [("script", "./writesbycmd.d", 1)]
    assert out.probes_matched == 1
    assert out.interrupted                      # the ^C the user typed


def test_description_header_counts_probes():
    assert parse("toolkit_count_pid_execname.txt").probes_matched == 228
    assert parse("smartos_faq_open_records.txt").enablings[0].name == "syscall::open*:entry "


def test_output_without_header_has_no_probe_count():
    assert parse("guide_trunc_ticks.txt").probes_matched is None


# --- scalar aggregations -----------------------------------------------------------------------
def test_count_rows_keep_printed_order_and_integer_values():
    (agg,) = parse("guide_count_writesbycmd.txt").aggregations
    assert agg.kind == "scalar"
    assert len(agg.rows) == 13
    assert agg.rows[0] == AggRow(("dtrace",), 1)
    assert agg.rows[-1] == AggRow(("make.bin",), 2010)
    assert agg.as_dict()["tee"] == 814


def test_string_and_integer_keys_are_separate_key_fields():
    (agg,) = parse("guide_count_writesbycmdfd.txt").aggregations
    assert agg.rows[0] == AggRow(("cat", "1"), 58)
    assert agg.rows[4] == AggRow(("tee", "3"), 156)
    assert agg.top(1) == [AggRow(("iropt", "4"), 1731)]
    assert agg.as_dict()[("acomp", "3")] == 736


def test_integer_key_before_string_key():
    (agg,) = parse("toolkit_count_pid_execname.txt").aggregations
    assert agg.rows[0] == AggRow(("1109", "svc.startd"), 1)
    assert agg.rows[-1] == AggRow(("8707", "dtrace"), 1720)


def test_integer_only_keys():
    (agg,) = parse("toolkit_count_int_key_cpu.txt").aggregations
    assert agg.as_dict() == {"513": 2, "515": 4, "3": 39, "2": 39}


def test_avg_aggregation_values_are_integers():
    (agg,) = parse("guide_avg_writetime.txt").aggregations
    assert agg.as_dict()["bringover"] == 1332465
    assert agg.as_dict()["tail"] == 1335260


def test_printf_lines_and_two_printa_blocks_are_told_apart():
    out = parse("guide_denormalize.txt")
    assert out.lines == ["Ran for 14 seconds.", "Per-second rate:", "Raw counts:"]
    per_second, raw = out.aggregations
    assert per_second.as_dict()["Xsun"] == 829
    assert raw.as_dict()["Xsun"] == 11616
    assert len(per_second.rows) == len(raw.rows) == 19


def test_blank_line_between_interval_printa_blocks_starts_a_new_aggregation():
    first, second = parse("guide_trunc_ticks.txt").aggregations
    assert first.as_dict()["Xsun"] == 616
    assert second.as_dict()["Xsun"] == 1287


def test_quiet_printf_output_is_printed_lines_not_rows():
    out = parse("toolkit_quiet_printf_lines.txt")
    assert out.aggregations == []
    assert out.lines[0] == "2005 Apr 25 19:15:09 man ls"
    assert len(out.lines) == 10


# --- histograms ----------------------------------------------------------------------------
def test_quantize_histograms_are_keyed_with_power_of_two_buckets():
    (agg,) = parse("guide_quantize_writetime.txt").aggregations
    assert agg.kind == "quantize"
    assert [h.keys for h in agg.histograms] == [("lint",), ("acomp",), ("iropt",)]
    lint = agg.histograms[0]
    assert lint.buckets[0] == Bucket(8192, 16384, 0, "8192")
    assert lint.buckets[3] == Bucket(65536, 131072, 74, "65536")
    assert lint.buckets[-1] == Bucket(524288, None, 0, "524288")   # its upper bound is not printed
    assert agg.histograms[1].total == 2678
    assert agg.histograms[2].counts[:3] == [0, 4149, 1798]


def test_lquantize_first_row_is_unbounded_below():
    out = parse("guide_lquantize_dateprof.txt")
    (hist,) = out.histograms
    assert out.aggregations[0].kind == "lquantize"
    assert hist.keys == ("system calls over time",)
    assert hist.buckets[0] == Bucket(None, 0, 0, "< 0")
    assert hist.buckets[1] == Bucket(0, 100, 20530, "0")
    assert hist.labels[-1] == "2700"
    assert hist.total == 325312


def test_lquantize_selection_is_one_aggregation_of_keyed_histograms():
    (agg,) = parse("guide_lquantize_fds.txt").aggregations
    assert agg.kind == "lquantize"
    assert [h.keys[0] for h in agg.histograms] == ["mountd", "xemacs-20.4", "make.bin", "acomp", "iropt"]
    iropt = agg.histograms[-1]
    assert iropt.buckets[2] == Bucket(4, 5, 20144, "4")


def test_llquantize_buckets_follow_the_printed_log_linear_values():
    (agg,) = parse("guide_llquantize.txt").aggregations
    assert agg.kind == "llquantize"
    (hist,) = agg.histograms
    assert hist.keys == ()
    assert hist.buckets[0] == Bucket(None, 1, 1, "< 1")
    assert Bucket(10, 15, 5, "10") in hist.buckets
    assert hist.buckets[-2] == Bucket(1000, 1500, 500, "1000")
    assert hist.total == 1500


def test_histogram_with_indentation_lost_in_the_docs_still_parses():
    (agg,) = parse("smartos_faq_quantize_tar.txt").aggregations
    (hist,) = agg.histograms
    assert agg.kind == "quantize"
    assert hist.keys == ("tar",)
    assert hist.counts == [0, 37, 114, 116, 286, 33, 87, 0]


def test_keyless_lquantize_per_interval():
    out = parse("toolkit_iopending_ticks.txt")
    assert [a.kind for a in out.aggregations] == ["lquantize"] * 3
    assert out.histograms[0].buckets[1] == Bucket(0, 1, 1010, "0")


# --- stack keys ----------------------------------------------------------------------------
def test_stack_keys_are_tuples_of_frames_with_the_count_on_its_own_line():
    (agg,) = parse("guide_stack_count.txt").aggregations
    assert len(agg.rows) == 3
    frames = agg.rows[1].keys[0]
    assert frames[0] == "genunix`vfs_rlock_wait+0xc"
    assert frames[-1] == "genunix`chdir+0x18"
    assert agg.rows[1].value == 1
    assert len(agg.rows[0].keys[0]) == 12


def test_ustack_keys_keep_unresolved_hex_frames():
    (agg,) = parse("guide_ustack_count_brk.txt").aggregations
    first = agg.rows[0].keys[0]
    assert first[:3] == ("libc.so.1`_brk_unlocked+0xc", "88143f6", "88146cd")
    assert first[-1] == ".netscape.bin`main+0x1875"
    assert [row.value for row in agg.rows] == [1, 1]


# --- trace records ---------------------------------------------------------------------------
def test_trace_records_follow_the_probe_header():
    out = parse("toolkit_exec_success_records.txt")
    assert len(out.records) == 10
    first = out.records[0]
    assert (first.cpu, first.probe_id, first.probe, first.data) == (
        0, 3297, "exec_common:exec-success", "man ls")
    assert out.aggregations == []


def test_trace_record_stack_frames_are_kept_with_their_record():
    records = parse("guide_stack_trace_records.txt").records
    assert [len(r.extra) for r in records] == [4, 2, 4]
    assert records[1].extra == ("genunix`fop_read+0x1b", "genunix`read+0x1d4")


def test_records_without_leading_spaces_and_interrupt():
    out = parse("toolkit_signal_records.txt")
    assert [r.data for r in out.records] == ["bash -15 16442", "bash -9 16443"]
    assert out.interrupted
    assert [r.data for r in parse("smartos_faq_open_records.txt").records][-1] == "df /etc/mnttab"


# --- runtime faults, drops and error counts: warnings, not exceptions -----------------------------
def test_error_probe_record_fault_and_error_count():
    out = parse("guide_error_probe.txt")
    assert out.records[0].probe == ":ERROR" and out.records[0].data == "Hit an error!"
    (fault,) = out.faults
    assert (fault.enabled_id, fault.probe_id, fault.probe) == (1, 1, "dtrace:::BEGIN")
    assert fault.fault == "invalid address"
    assert (fault.address, fault.action, fault.dif_offset) == (0, 1, 12)
    assert [(e.count, e.cpu) for e in out.error_counts] == [(1, 2)]


def test_fault_wrapped_by_the_documentation_is_joined():
    (fault,) = parse("guide_badptr_fault.txt").faults
    assert fault.message == "invalid address (0x0) in action #2 at DIF offset 4"
    (fault,) = parse("guide_copyinstr_fault.txt").faults
    assert (fault.probe, fault.address, fault.dif_offset) == ("syscall::open:entry", 0x9AF1B, 52)


def test_fault_continued_after_a_backslash():
    out = parse("guide_chill_errors.txt")
    (fault,) = out.faults
    assert fault.fault == "illegal operation" and fault.action == 1 and fault.address is None
    assert out.messages == ["allowing destructive actions"]
    assert [(e.count, e.cpu) for e in out.error_counts] == [(57, None)]


def test_faults_wrapped_after_the_probe_description():
    faults = parse("smartos_faq_invalid_address.txt").faults
    assert [f.address for f in faults] == [0xD27F7A24, 0xD27FBF38]


def test_principal_buffer_drops_are_warnings():
    (drop,) = parse("guide_drops.txt").drops
    assert (drop.count, drop.kind, drop.cpu) == (11, "principal", 0)
    out = parse("toolkit_java_drops.txt")
    assert out.dropped == 2547


def test_speculative_and_dynamic_variable_drops():
    (drop,) = parse("guide_speculative_drops.txt").drops
    assert (drop.count, drop.kind, drop.cpu) == (38, "speculative", None)
    (drop,) = parse("quoted_dynvar_drops.txt").drops
    assert (drop.count, drop.kind, drop.detail) == (5860, "dynamic variable", "with non-empty dirty list")


# --- fatal errors raise ---------------------------------------------------------------------
def test_compile_error_raises_with_script_line_and_message():
    with pytest.raises(DTraceCompileError) as caught:
        parse("guide_compile_error_printf.txt")
    err = caught.value
    assert isinstance(err, DTraceError)
    assert (err.script, err.line) == ("trussrw.d", 4)
    assert err.message.startswith("printf( )\nargument #2 is incompatible with conversion #1 prototype:")
    assert err.message.endswith("argument: int")


def test_compile_error_whose_message_is_on_the_next_line():
    with pytest.raises(DTraceCompileError) as caught:
        parse("guide_compile_error_macro.txt")
    assert (caught.value.script, caught.value.line) == ("./tracewrite", 4)
    assert caught.value.message == "macro argument $1 is not defined"


def test_invalid_probe_specifier_raises_with_the_specifier():
    with pytest.raises(DTraceProbeSpecError) as caught:
        parse("guide_invalid_probe_spec.txt")
    err = caught.value
    assert err.spec == "dtrace:::BEGIN{trace(curthread->t_procp);}"
    assert err.message == ("in action list: attributes for scalar curthread (Stable/Private/Common) "
                           "are less than predefined minimum")


def test_invalid_probe_specifier_with_a_multi_line_reason():
    with pytest.raises(DTraceProbeSpecError) as caught:
        parse("smartos_faq_invalid_probe_pid.txt")
    assert caught.value.spec == "pid$target:::"
    assert caught.value.message.endswith("Not enough space")


# --- printa with a format ---------------------------------------------------------------------
def test_printa_format_splits_keys_as_the_format_says():
    agg = parse_printa(fixture("toolkit_printa_xcallsbypid.txt"), "%6d %-16s %@16d\n", name="num")
    assert agg.name == "num"
    assert agg.rows[0] == AggRow(("215", "utmpd"), 3)
    assert agg.rows[-1] == AggRow(("6351", "find"), 5718)
    assert len(agg.rows) == 7                       # header and ^C lines are not records


def test_printa_integer_key_format():
    agg = parse_printa(fixture("toolkit_printa_intbycpu.txt"), "%-16d %@16d\n")
    assert agg.as_dict() == {"0": 374, "1": 412}


def test_printa_line_between_records_that_does_not_match_raises():
    text = fixture("toolkit_printa_xcallsbypid.txt").replace("ls                             24",
                                                               "ls                             2x4")
    with pytest.raises(ParseError) as caught:
        parse_printa(text, "%6d %-16s %@16d\n")
    assert caught.value.command == "dtrace"
    assert "2x4" in caught.value.line


def test_printa_format_needs_a_value_conversion():
    with pytest.raises(ValueError):
        parse_printa("  a  1\n", "%s %d\n")


# --- interval snapshots ------------------------------------------------------------------------
IOPENDING_MARKER = r"^\s*(?P<label>\d{4} \w{3} +\d+ \d\d:\d\d:\d\d),"


def test_tick_loop_with_a_header_line_per_interval():
    snapshots = parse_dtrace_ticks(fixture("toolkit_iopending_ticks.txt"),
                                   marker=IOPENDING_MARKER, marker_at="start")
    assert [s.label for s in snapshots] == ["2006 Jan  6 20:21:59", "2006 Jan  6 20:22:00",
                                            "2006 Jan  6 20:22:01"]
    assert [s.output.histograms[0].counts for s in snapshots] == [[0, 1010, 0], [0, 1000, 0],
                                                                 [0, 1000, 0]]
    assert snapshots[-1].output.interrupted and snapshots[0].timestamp_ns is None


def test_stream_parser_gives_the_same_snapshots_for_any_chunking():
    text = fixture("toolkit_iopending_ticks.txt")
    parser = DTraceStreamParser(marker=IOPENDING_MARKER, marker_at="start")
    snapshots = []
    for start in range(0, len(text), 7):
        snapshots += parser.feed(text[start:start + 7])
    snapshots += parser.close()
    assert [s.index for s in snapshots] == [0, 1, 2]
    assert parser.preamble.lines == ["   Tracing... Please wait."]
    assert snapshots[1].output.histograms[0].total == 1000


def test_end_markers_complete_each_snapshot_as_soon_as_they_arrive():
    # The interval bodies are the guide's real printa output; the marker lines are the
    # documented convention (printf("=== tick %d\n", walltimestamp) after printa).
    first, second = fixture("guide_trunc_ticks.txt").split("\n\n")
    parser = DTraceStreamParser()
    assert parser.feed("\n" + first + "\n") == []
    (snapshot,) = parser.feed("=== tick 1119370426000000000\n\n" + second)
    assert snapshot.timestamp_ns == 1119370426000000000
    assert snapshot.output.aggregations[0].as_dict()["Xsun"] == 616
    (snapshot,) = parser.feed("\n=== tick 1119370436000000000\n")
    assert snapshot.index == 1 and snapshot.output.aggregations[0].as_dict()["Xsun"] == 1287
    assert parser.close() == []


def test_compile_error_in_a_stream_raises_when_the_stream_ends():
    parser = DTraceStreamParser()
    assert parser.feed(fixture("guide_compile_error_printf.txt") + "\n") == []
    with pytest.raises(DTraceCompileError):
        parser.close()


# --- malformed input: ParseError naming the command and the line --------------------------------
def test_broken_histogram_row_raises_with_its_line():
    text = fixture("guide_quantize_writetime.txt").replace("|@@@@@@@@@@@@@@@@@@@                      74",
                                                           "|@@@@@@@@@@@@@@@@@@@                      7 4")
    with pytest.raises(ParseError) as caught:
        parse_dtrace_output(text, command="dtrace -s writetime.d")
    err = caught.value
    assert err.command == "dtrace -s writetime.d"
    assert err.line.strip().endswith("7 4") and err.lineno == 6
    assert "dtrace -s writetime.d" in str(err)


def test_histogram_rows_out_of_order_raise():
    text = fixture("guide_quantize_writetime.txt").replace("           32768 |", "            1024 |", 1)
    with pytest.raises(ParseError, match="increasing"):
        parse_dtrace_output(text)


def test_histogram_header_cut_off_before_its_rows_raises():
    text = fixture("guide_lquantize_dateprof.txt")
    text = text[:text.index("Distribution")] + "Distribution ------------- count\n"
    with pytest.raises(ParseError, match="without rows"):
        parse_dtrace_output(text)


def test_histogram_rows_without_their_header_raise():
    lines = fixture("guide_lquantize_dateprof.txt").split("\n")
    del lines[4]                                    # the "value ---- Distribution ---- count" line
    with pytest.raises(ParseError, match="without a 'value"):
        parse_dtrace_output("\n".join(lines))


def test_count_row_with_a_non_number_raises():
    text = fixture("guide_count_writesbycmd.txt").replace("814", "81x4")
    with pytest.raises(ParseError) as caught:
        parse_dtrace_output(text)
    assert caught.value.line.split() == ["tee", "81x4"]
    assert caught.value.lineno == 14                # counted in the text given to the parser


# --- size (its speed is measured by benchmarks/bench_parsers.py, not timed here) -------------------
def test_a_ten_thousand_key_count_aggregation_parses_whole():
    rows = "\n".join(f"  {f'key-{i}':<50} {i:>16}" for i in range(10_000))   # "  %-50s %16d"
    text = "dtrace: description 'syscall:::entry ' matched 234 probes\n^C\n\n" + rows + "\n"
    out = parse_dtrace_output(text)
    assert len(out.aggregations[0].rows) == 10_000
    assert out.aggregations[0].rows[-1].value == 9_999
