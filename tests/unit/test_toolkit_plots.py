"""Plots of parsed DTrace output (real fixtures from the DTrace guide and DTraceToolkit)."""
from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.patches import Rectangle

from smartos_lab.errors import ConfigError
from smartos_lab.parsers.dtrace import parse_dtrace_output, parse_dtrace_ticks
from smartos_lab.toolkits import plots

from ._parser_fixtures import fixture_path

PNG = b"\x89PNG\r\n\x1a\n"
# iopending prints "<%Y date>,  load: ..." before each interval (DTraceToolkit iopending)
IOPENDING_MARKER = r"^\s*\d{4} \w{3}\s+\d+ [\d:]+,\s+load:.*$"


def output(name: str):
    lines = fixture_path(f"dtrace/{name}").read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


def aggregation(name: str):
    return parse_dtrace_output(output(name)).aggregations[0]


def save(fig, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    path.write_bytes(plots.to_png(fig))
    assert path.read_bytes().startswith(PNG)
    return path


def test_bar_chart_shows_the_largest_rows_first_with_their_keys(tmp_path):
    fig = plots.bar_chart(aggregation("guide_count_writesbycmd.txt"), top=5, value_label="writes")
    save(fig, tmp_path, "bars")
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 5
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[::-1] == ["make.bin", "def.dir.flp", "tee", "sh", "expr"]
    assert [b.get_width() for b in bars][::-1] == [2010, 1996, 814, 291, 72]
    assert ax.get_xlabel() == "writes"


def test_bar_chart_labels_multi_key_rows():
    fig = plots.bar_chart(aggregation("toolkit_count_pid_execname.txt"))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all(", " in label for label in labels)


def test_bar_chart_refuses_histograms():
    with pytest.raises(ConfigError):
        plots.bar_chart(aggregation("guide_quantize_writetime.txt"))


def test_quantize_histogram_has_one_bar_per_power_of_two_bucket(tmp_path):
    agg = aggregation("guide_quantize_writetime.txt")
    fig = plots.histogram(agg, key="acomp", value_label="ns")
    save(fig, tmp_path, "hist")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["4096", "8192", "16384", "32768", "65536", "131072", "262144", "524288",
                      "1048576", "2097152"]
    assert [int(b.get_height()) for b in ax.patches] == [0, 840, 750, 165, 460, 446, 16, 0, 1, 0]
    assert ax.get_title() == "acomp" and ax.get_xlabel() == "ns"


def test_histogram_defaults_to_the_busiest_key_and_shows_lquantize_edges():
    assert plots.histogram(aggregation("guide_quantize_writetime.txt")).axes[0].get_title() == "iropt"
    fig = plots.histogram(aggregation("guide_llquantize.txt"))
    assert fig.axes[0].get_xticklabels()[0].get_text() == "< 1"


def test_histogram_of_an_unknown_key_is_a_config_error():
    with pytest.raises(ConfigError):
        plots.histogram(aggregation("guide_quantize_writetime.txt"), key="nope")


def test_heatmap_has_a_column_per_interval_and_a_row_per_bucket(tmp_path):
    snaps = parse_dtrace_ticks(output("toolkit_iopending_ticks.txt"), marker=IOPENDING_MARKER,
                               marker_at="start")
    aggs = [s.output.aggregations[0] for s in snaps]
    fig = plots.heatmap(aggs, value_label="pending I/O")
    save(fig, tmp_path, "heat")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 3.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["< 0", "0", "1"]
    mesh = ax.collections[0]
    assert mesh.get_array().shape == (3, 3)
    assert ax.get_ylabel() == "pending I/O"


def test_heatmap_aligns_buckets_across_intervals_and_leaves_gaps_for_empty_ones():
    agg = aggregation("guide_quantize_writetime.txt")
    fig = plots.heatmap([agg.histograms[0], None, agg.histograms[1]], interval=2.0)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 6.0)
    lows = [int(t.get_text()) for t in ax.get_yticklabels()]
    assert lows == sorted(lows) and lows[0] == 4096 and lows[-1] == 2097152


def test_flame_graph_folds_stacks_outermost_first(tmp_path):
    agg = aggregation("guide_stack_count.txt")
    tree = plots.stack_tree(agg)
    assert tree.value == sum(r.value for r in agg.rows)
    assert set(tree.children) == {"genunix`lstat64", "genunix`chdir"}
    fig = plots.flame_graph(agg, min_fraction=0)
    save(fig, tmp_path, "flame")
    boxes = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert boxes[0].get_width() == tree.value and boxes[0].get_label() == "all"
    leaf = next(b for b in boxes if b.get_label() == "rpcmod`endpnt_get")
    assert leaf.get_y() == 12                  # the deepest of the 12-frame stack
    assert fig.axes[0].get_ylim() == (0.0, 13.0)


def test_flame_graph_needs_stack_keys():
    with pytest.raises(ConfigError):
        plots.flame_graph(aggregation("guide_count_writesbycmd.txt"))


def test_live_plot_displays_once_then_updates_in_place():
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def display(obj, display_id=True):
        shown.append(("display", obj))
        return Handle()

    snaps = parse_dtrace_ticks(output("toolkit_iopending_ticks.txt"), marker=IOPENDING_MARKER,
                               marker_at="start")
    live = plots.LivePlot(lambda hist: plots.heatmap([s.output.aggregations[0] for s in hist]),
                          keep=2, display=display)
    history = live.follow(iter(snaps))
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert live.updates == 3 and len(history) == 2
