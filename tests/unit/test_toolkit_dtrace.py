"""The DTrace toolkit: programs composed, commands built, output split into named aggregations."""
from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from smartos_lab.errors import ConfigError, DTraceError
from smartos_lab.parsers.dtrace import DTraceCompileError
from smartos_lab.toolkits import dtrace_script as ds
from smartos_lab.toolkits.dtrace import DTrace, split_output
from smartos_lab.toolkits.oneliners import ONE_LINERS, one_liner

from ._parser_fixtures import fixture
from ._runners import LocalShell, RecordingRunner


def dtrace_runner(out: str = "", status: int = 0) -> RecordingRunner:
    """Answers every ``dtrace`` command with ``out`` and ``status``."""
    return RecordingRunner({"dtrace": (out, status)})


# ------------------------------------------------------------------ composing programs
def test_duration_appends_a_tick_clause_that_exits():
    program = ds.compose("syscall:::entry { @[execname] = count(); }", duration=5, named=False)
    assert program == "syscall:::entry { @[execname] = count(); } tick-5s { exit(0); }"
    assert ds.compose("BEGIN { exit(0); }", duration=0.25, named=False).endswith(
        "tick-250ms { exit(0); }")


def test_until_events_counts_the_first_event_clause_with_its_predicate():
    script = ('#pragma D option quiet\nBEGIN { printf("hi { /"); }\n'
              'syscall::read:entry /execname == "a/b"/ { @[pid] = count(); }')
    program = ds.compose(script, until_events=100, named=False)
    assert program.splitlines()[:3] == script.splitlines()          # user lines keep numbers
    assert ('int smartos_lab_events; syscall::read:entry /execname == "a/b"/ '
            '{ smartos_lab_events++; } syscall::read:entry /smartos_lab_events >= 100/ '
            '{ exit(0); }') in program


def test_until_events_needs_an_event_clause():
    with pytest.raises(ConfigError):
        ds.compose("BEGIN { x = 1; } tick-1s { exit(0); }", until_events=3)


def test_aggregation_names_ignore_strings_and_comments():
    script = ('/* @fake[1] = count(); */ syscall:::entry { @[execname] = count(); '
              '@bytes[pid] = sum(arg0); printf("@x[%d] = 1", 1); } // @y = count()')
    assert ds.aggregation_names(script) == ["", "bytes"]


def test_end_clause_prints_each_aggregation_followed_by_its_marker():
    program = ds.compose("syscall:::entry { @[execname] = count(); @n = count(); }")
    assert program.endswith('END { printa(@); printf("=== tick @\\n"); printa(@n); '
                            'printf("=== tick @n\\n"); printf("=== tick end\\n"); }')


def test_interval_clause_prints_clears_then_marks_the_interval():
    clause = ds.interval_clause("io:::done { @lat = quantize(1); }", 1)
    assert clause == ('tick-1s { printa(@lat); trunc(@lat); printf("=== tick @lat\\n"); '
                      'printf("=== tick %d\\n", walltimestamp); }')


@pytest.mark.parametrize("bad", ["", "   ", "x\x00"])
def test_empty_or_nul_programs_are_rejected(bad):
    with pytest.raises(ConfigError):
        ds.compose(bad, duration=1)


# ------------------------------------------------------------------ commands
def test_one_line_programs_run_with_dash_n_as_one_argument():
    runner = RecordingRunner()
    script = "syscall:::entry /execname != \"it's\"/ { @[probefunc] = count(); }"
    DTrace(runner).run(script, duration=2, options={"bufsize": "4m"}, run="ls -l /tmp")
    argv = shlex.split(runner.commands[-1])
    assert argv[:7] == ["dtrace", "-q", "-x", "bufsize=4m", "-c", "ls -l /tmp", "-n"]
    assert argv[7] == ds.compose(script, duration=2)
    assert len(argv) == 8


def test_multi_line_programs_go_to_a_temporary_file_that_is_removed():
    runner = RecordingRunner()
    DTrace(runner).run("BEGIN {\n  trace(1);\n}", duration=1)
    run = next(c for c in runner.commands if c.startswith("dtrace"))
    path = shlex.split(run)[-1]
    assert shlex.split(run)[:3] == ["dtrace", "-q", "-s"] and path.endswith(".d")
    assert runner.commands[-1] == f"rm -f {path}"


def test_a_program_that_never_ends_is_refused():
    with pytest.raises(ConfigError):
        DTrace(RecordingRunner()).run("syscall:::entry { @[execname] = count(); }")


def test_bad_option_names_are_rejected():
    with pytest.raises(ConfigError):
        DTrace(RecordingRunner()).run("BEGIN { exit(0); }", options={"buf size": 1})


# ------------------------------------------------------------------ results
def test_compile_errors_raise_a_typed_error_with_dtrace_s_message():
    runner = dtrace_runner(fixture("dtrace/guide_compile_error_printf.txt"), 1)
    with pytest.raises(DTraceCompileError) as info:
        DTrace(runner).run("BEGIN {\n printf(\"%s\", 1);\n}", duration=1)
    assert info.value.line == 4 and "argument #2 is incompatible" in info.value.message
    assert isinstance(info.value, DTraceError)


def test_invalid_probe_specifier_raises_a_typed_error():
    runner = dtrace_runner(fixture("dtrace/smartos_faq_invalid_probe_pid.txt"), 1)
    with pytest.raises(DTraceError):
        DTrace(runner).run("pid$target::: { @ = count(); }", duration=1)


def test_output_without_markers_keeps_the_printed_aggregations_in_order():
    """Output of a program that printed its aggregations itself (no END markers)."""
    runner = dtrace_runner(fixture("dtrace/guide_count_writesbycmd.txt"))
    result = DTrace(runner).run("syscall::write:entry { @[execname] = count(); }", duration=1)
    agg = result.aggregation()
    assert agg.kind == "scalar" and agg.as_dict()["make.bin"] == 2010
    assert list(result.aggregations) == ["#0"]


def test_named_sections_map_to_aggregation_names():
    """The aggregation text is a real fixture; the '=== tick' lines are what our own
    printf() clauses print."""
    counts = fixture("dtrace/guide_count_writesbycmd.txt")
    hists = fixture("dtrace/guide_quantize_writetime.txt")
    text = f"\n{counts}=== tick @\n\n{hists}=== tick @time\n=== tick end\n"
    final, intervals, rest = split_output(text)
    assert intervals == []
    assert final["@"].as_dict()["tee"] == 814
    assert [h.keys for h in final["@time"].histograms] == [("lint",), ("acomp",), ("iropt",)]


def test_interval_sections_become_snapshots_and_the_end_print_the_final_aggregation():
    """Two intervals of a real histogram fixture, framed by our own marker lines."""
    hists = fixture("dtrace/guide_lquantize_fds.txt")
    text = (f"{hists}=== tick @\n=== tick 1700000000000000000\n"
            f"=== tick @\n=== tick 1700000001000000000\n"
            f"{hists}=== tick @\n=== tick end\n")
    final, intervals, _ = split_output(text)
    assert [i.timestamp_ns for i in intervals] == [1700000000000000000, 1700000001000000000]
    assert intervals[0].aggregation().kind == "lquantize"
    assert intervals[1].aggregations == {"@": None}                 # an empty interval
    assert final["@"].kind == "lquantize"


def test_printed_lines_and_faults_are_kept():
    runner = dtrace_runner(fixture("dtrace/smartos_faq_invalid_address.txt"))
    result = DTrace(runner).run("syscall::open:entry { trace(stringof(arg0)); }", duration=1)
    assert len(result.faults) == 2 and result.faults[0].probe == "syscall::open:entry"


def test_one_liner_runs_the_library_program():
    runner = RecordingRunner()
    DTrace(runner).one_liner("syscalls_by_process", duration=3)
    assert shlex.split(runner.commands[-1])[-1].startswith(ONE_LINERS["syscalls_by_process"].script)


def test_the_one_liner_library_is_documented_and_composable():
    for item in ONE_LINERS.values():
        assert item.explanation and item.script
        ds.compose(item.script, duration=1)         # every one parses into clauses
    with pytest.raises(ConfigError):
        one_liner("nope")


# ------------------------------------------------------------------ stream polling plumbing
def test_poll_returns_only_complete_lines_until_the_writer_exits(tmp_path):
    out = tmp_path / "out"
    out.write_text("a 1\nb 2\npart")
    writer = subprocess.Popen(["sleep", "30"])
    try:
        dt = DTrace(LocalShell())
        alive, text, seen = dt._poll(writer.pid, str(out), 0)
        assert (alive, text, seen) == (True, "a 1\nb 2\n", 2)
        with out.open("a") as f:
            f.write("ial 3\n")
        assert dt._poll(writer.pid, str(out), seen) == (True, "partial 3\n", 3)
    finally:
        writer.kill()
        writer.wait()
    with out.open("a") as f:
        f.write("last")
    assert dt._poll(writer.pid, str(out), 3) == (False, "last\n", 4)


def test_poll_of_a_missing_file_is_empty(tmp_path):
    dt = DTrace(LocalShell())
    assert dt._poll(os.getpid() + 10_000_000, str(tmp_path / "none"), 0) == (False, "", 0)
