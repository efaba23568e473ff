"""Step.check as a Python callable: checks that read parsed output (e.g. a D program's)."""
from __future__ import annotations

import pytest

from smartos_lab.errors import CommandTimeout, ParseError
from smartos_lab.notebook import Exercise, Step
from smartos_lab.parsers import parse_dtrace_output

from ._parser_fixtures import fixture
from ._runners import LocalShell, RecordingRunner


def test_a_callable_check_reads_parsed_dtrace_output_from_the_lab():
    # The runner answers "dtrace ..." with the Dynamic Tracing Guide's quantize output.
    runner = RecordingRunner({"dtrace": fixture("dtrace/guide_quantize_writetime.txt")})

    def has_a_histogram_for_acomp(lab):
        out = parse_dtrace_output(lab.run("dtrace -q -s /var/tmp/ex2.d").stdout)
        return any(h.keys == ("acomp",) for a in out.aggregations for h in a.histograms)

    step = Step("quantize", "time write(2) per program", check=has_a_histogram_for_acomp)
    outcome = step.run_check(runner)
    assert outcome.passed and outcome.message == "Done: quantize"
    assert runner.commands == ["dtrace -q -s /var/tmp/ex2.d"]
    assert step.check_text == "has_a_histogram_for_acomp"


def test_false_and_a_message_tuple_are_not_yet_with_the_hint():
    step = Step("s", "i", check=lambda lab: (False, "no aggregation yet"), hint="use count()")
    outcome = step.run_check(RecordingRunner())
    assert not outcome.passed and outcome.message == "no aggregation yet"
    assert "Hint: use count()" in str(outcome)
    plain = Step("s", "i", check=lambda lab: False, failure="Not there.").run_check(RecordingRunner())
    assert (plain.passed, plain.message) == (False, "Not there.")


def test_an_error_raised_by_the_check_is_not_yet_and_shown():
    def parses_garbage(lab):
        raise ParseError("dtrace", "unexpected line", line="garbage", lineno=1)

    outcome = Step("s", "i", check=parses_garbage).run_check(RecordingRunner())
    assert not outcome.passed and "unexpected line" in outcome.message
    assert "parses_garbage" in outcome.message


def test_a_timeout_in_the_check_is_not_yet():
    def slow(lab):
        raise CommandTimeout("dtrace did not finish")

    assert not Step("s", "i", check=slow).run_check(RecordingRunner()).passed


def test_a_check_returning_something_else_is_a_programming_error():
    with pytest.raises(TypeError, match="expected True/False"):
        Step("s", "i", check=lambda lab: "yes").run_check(RecordingRunner())


def test_solve_runs_the_solution_then_the_callable_check(tmp_path):
    target = tmp_path / "answer.d"
    step = Step("write it", "write the D program",
                check=lambda lab: lab.run(f"cat {target}").stdout.startswith("syscall:::entry"),
                solution=f"echo 'syscall:::entry {{ @[execname] = count(); }}' > {target}")
    exercise = Exercise("D", [step], LocalShell())
    assert not exercise.check(0).passed
    (report,) = exercise.solve(0)
    assert report.outcome.passed and exercise.progress() == "1/1 steps done"


def test_a_step_needs_a_command_or_a_callable():
    with pytest.raises(ValueError, match="shell command or a callable"):
        Step("s", "i", check="  ")
    with pytest.raises(ValueError, match="shell command or a callable"):
        Step("s", "i", check=None)
