"""``%%dtrace``: run a cell's D program in the lab and show what it measured.

The output is parsed by :mod:`smartos_lab.parsers.dtrace` (through the DTrace
toolkit) and drawn with :mod:`smartos_lab.toolkits.plots`: each aggregation as
a table and a plot (bars for counts and sums, a histogram for quantize
aggregations, a flame graph for stacks, a heatmap over 1 s intervals).  A D
compile error shows DTrace's own message.
"""
from __future__ import annotations

from ..errors import ConfigError, DTraceError, LabError
from ..parsers.dtrace import Aggregation, DTraceCompileError
from ..toolkits.dtrace import DTraceResult
from .cells import CellError
from .env import display
from .tables import figure_image, table

DEFAULT_SECONDS = 5.0
TABLE_ROWS = 20


def run_dtrace_cell(lab, program: str, *, seconds: float | None = None,
                    plot: str | None = None) -> DTraceResult:
    """Run ``program`` (for ``seconds``, default 5 unless it calls ``exit()``) and show its results."""
    if seconds is None and "exit(" not in program:
        seconds = DEFAULT_SECONDS
    try:
        result = lab.dtrace.run(program, duration=seconds,
                                aggregate_interval=1.0 if plot == "heatmap" else None)
    except DTraceCompileError as exc:
        raise CellError("DTrace could not compile the cell", _compile_lines(exc)) from None
    except (DTraceError, ConfigError) as exc:
        raise CellError.from_lab_error(exc) from None
    except LabError as exc:
        raise CellError.from_lab_error(exc) from None
    show_result(result, plot)
    return result


def _compile_lines(exc: DTraceCompileError) -> list[str]:
    lines = [f"  {line}" for line in (exc.text or str(exc)).strip("\n").splitlines()]
    if exc.line is not None:
        lines.append(f"  (line {exc.line} is line {exc.line} of the cell)")
    return lines


def show_result(result: DTraceResult, plot: str | None = None) -> None:
    """Printed lines as text, each aggregation as a table and its plot."""
    for line in result.lines:
        print(line)
    for fault in result.faults[:5]:
        print(f"[fault] {fault}")
    aggregations = {n: a for n, a in result.aggregations.items() if a is not None}
    for name, agg in aggregations.items():
        print(f"{name}  ({agg.kind}, {len(agg.rows) or len(agg.histograms)} keys)")
        display(_table(agg))
        figure = _plot(agg, plot, result, name)
        if figure is not None:
            display(figure_image(figure))
    if not aggregations and not result.lines:
        print(f"(dtrace printed nothing in {result.duration:.1f} s)")


def _table(agg: Aggregation):
    if agg.kind == "scalar":
        return table([(_key(r.keys), r.value) for r in agg.top(TABLE_ROWS)], ["key", "value"])
    return table([(_key(h.keys), h.total) for h in agg.histograms[:TABLE_ROWS]], ["key", "total"])


def _key(keys: tuple) -> str:
    from ..toolkits.plots import key_label
    return key_label(keys) if keys else "(all)"


def _plot(agg: Aggregation, plot: str | None, result: DTraceResult, name: str):
    from ..toolkits import plots
    stacks = any(isinstance(k, tuple) for r in agg.rows for k in r.keys)
    kind = plot or ("flame" if stacks else "bar" if agg.kind == "scalar" else "quantize")
    if kind == "bar":
        return plots.bar_chart(agg, title=name) if agg.kind == "scalar" else None
    if kind == "quantize":
        return plots.histogram(agg, title=name) if agg.histograms else None
    if kind == "flame":
        return plots.flame_graph(agg, title=name) if agg.kind == "scalar" else None
    if kind == "heatmap":
        snapshots = [i.aggregation(name) for i in result.intervals]
        return plots.heatmap(snapshots, title=name) if any(snapshots) else None
    return None
