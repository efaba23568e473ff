"""Plots of DTrace aggregations with matplotlib (no pyplot: safe headless and in threads).

Every function returns a :class:`matplotlib.figure.Figure` (or draws into the
``ax`` given):

* :func:`bar_chart` -- keyed count/sum aggregations, largest first;
* :func:`histogram` -- a quantize/lquantize/llquantize distribution;
* :func:`heatmap` -- a distribution over time, from per-interval snapshots;
* :func:`flame_graph` -- stack aggregations (``@[stack()] = count()``) as a flame graph;
* :class:`LivePlot` -- redraws a figure in a notebook as a ``dtrace.stream`` delivers intervals.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import ConfigError
from ..parsers.dtrace import Aggregation, Bucket, Histogram

# ============================================================================ bars


def key_label(keys: tuple, *, frames: int = 1) -> str:
    """A readable label for an aggregation key tuple (stack keys show their top frames)."""
    parts = []
    for key in keys:
        if isinstance(key, tuple):
            parts.append(" < ".join(_function(f) for f in key[:frames]) or "<empty stack>")
        else:
            parts.append(str(key))
    return ", ".join(parts) or "(no key)"


def bar_chart(agg: Aggregation, *, top: int = 20, title: str = "", value_label: str = "",
              ax=None) -> Figure:
    """Horizontal bars of a scalar aggregation's rows, the ``top`` largest (largest on top)."""
    _need(agg, "scalar")
    rows = agg.top(top)
    fig, ax = _figure(ax, height=max(2.0, 0.3 * len(rows) + 1.2))
    labels = [key_label(r.keys) for r in rows][::-1]
    values = [r.value for r in rows][::-1]
    ax.barh(range(len(rows)), values, color="#4c72b0")
    ax.set_yticks(range(len(rows)), labels=labels)
    ax.set_xlabel(value_label or "value")
    ax.set_title(title or (f"{agg.name}: top {len(rows)}" if agg.name else f"top {len(rows)}"))
    if not rows:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    return fig


# ============================================================================ histograms


def histogram(data: Aggregation | Histogram, *, key: tuple | str | None = None, title: str = "",
              value_label: str = "", ax=None) -> Figure:
    """The buckets of one distribution as bars, labelled with their lower bounds.

    From an :class:`Aggregation` with several keys, ``key`` picks one (a
    tuple or its single string); by default the one with the most samples.
    """
    hist = data if isinstance(data, Histogram) else _pick_histogram(data, key)
    fig, ax = _figure(ax, height=3.5)
    buckets = hist.buckets
    ax.bar(range(len(buckets)), [b.count for b in buckets], width=0.9, color="#dd8452",
           edgecolor="#8c4a1a")
    ax.set_xticks(range(len(buckets)), labels=[b.label for b in buckets],
                  rotation=45 if len(buckets) > 8 else 0, ha="right" if len(buckets) > 8 else "center")
    ax.set_xlabel(value_label or "value (bucket lower bound)")
    ax.set_ylabel("count")
    ax.set_title(title or (key_label(hist.keys) if hist.keys else "distribution"))
    return fig


def _pick_histogram(agg: Aggregation, key: tuple | str | None) -> Histogram:
    if not agg.histograms:
        raise ConfigError("this aggregation has no histograms (use bar_chart for count/sum)")
    if key is None:
        return max(agg.histograms, key=lambda h: h.total)
    wanted = key if isinstance(key, tuple) else (key,)
    for hist in agg.histograms:
        if hist.keys == wanted:
            return hist
    raise ConfigError(f"no histogram for key {wanted!r}; keys: {[h.keys for h in agg.histograms]}")


# ============================================================================ heatmap


def heatmap(snapshots: Sequence[Histogram | Aggregation | None], *, key: tuple | str | None = None,
            interval: float = 1.0, title: str = "", value_label: str = "", ax=None) -> Figure:
    """A latency (or size) heatmap: one column per interval, one row per bucket, colour = count.

    ``snapshots`` are per-interval histograms (or aggregations, from
    ``[i.aggregation() for i in result.intervals]``; None for an empty interval).
    Buckets are aligned by their lower bound across intervals.
    """
    columns: list[dict[int | None, int]] = []
    labels: dict[int | None, str] = {}
    for snap in snapshots:
        if snap is None:
            columns.append({})
            continue
        hist = snap if isinstance(snap, Histogram) else _merged_histogram(snap, key)
        columns.append({b.lower: b.count for b in hist.buckets})
        for b in hist.buckets:
            labels.setdefault(b.lower, b.label)
    if not columns:
        raise ConfigError("no intervals to plot")
    lowers = sorted(labels, key=lambda v: (v is not None, v or 0))   # "< N" first
    grid = [[col.get(lower, 0) for col in columns] for lower in lowers]
    fig, ax = _figure(ax, height=4.0, width=max(6.0, 0.25 * len(columns) + 3))
    peak = max((v for row in grid for v in row), default=0)
    if peak > 0:
        masked = [[v if v > 0 else float("nan") for v in row] for row in grid]
        mesh = ax.pcolormesh([i * interval for i in range(len(columns) + 1)],
                             range(len(lowers) + 1), masked, cmap="inferno_r",
                             norm=LogNorm(vmin=1, vmax=max(peak, 2)), shading="flat")
        fig.colorbar(mesh, ax=ax, label="count")
    ax.set_yticks([i + 0.5 for i in range(len(lowers))], labels=[labels[lo] for lo in lowers])
    ax.set_xlim(0, len(columns) * interval)
    ax.set_ylim(0, max(1, len(lowers)))
    ax.set_xlabel("time (s)")
    ax.set_ylabel(value_label or "bucket")
    ax.set_title(title or "distribution over time")
    return fig


def _merged_histogram(agg: Aggregation, key: tuple | str | None) -> Histogram:
    """One key's histogram, or (no key given) the sum over all keys."""
    if key is not None:
        return _pick_histogram(agg, key)
    if not agg.histograms:
        raise ConfigError("this aggregation has no histograms")
    if len(agg.histograms) == 1:
        return agg.histograms[0]
    merged: dict[int | None, Bucket] = {}
    for hist in agg.histograms:
        for b in hist.buckets:
            seen = merged.get(b.lower)
            merged[b.lower] = b if seen is None else replace(seen, count=seen.count + b.count)
    return Histogram((), tuple(merged[k] for k in sorted(merged, key=lambda v: (v is not None, v or 0))))


# ============================================================================ flame graph


@dataclass
class _Node:
    name: str
    value: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def stack_tree(agg: Aggregation, *, keep_offsets: bool = False) -> _Node:
    """Fold stack-keyed rows into a call tree (root = all samples, children = callers' callees).

    DTrace prints the innermost frame first; the tree runs outermost to innermost.
    Offsets (``+0x1c``) are dropped unless ``keep_offsets`` so samples in one
    function merge.
    """
    root = _Node("all")
    for row in agg.rows:
        stack = next((k for k in row.keys if isinstance(k, tuple)), None)
        if stack is None:
            raise ConfigError("not a stack aggregation: use @[stack()] = count() (or ustack())")
        root.value += row.value
        node = root
        prefix = [str(k) for k in row.keys if not isinstance(k, tuple)]   # e.g. execname first
        frames = prefix + [f if keep_offsets else _function(f) for f in reversed(stack)]
        for frame in frames:
            node = node.children.setdefault(frame, _Node(frame))
            node.value += row.value
    return root


def flame_graph(agg: Aggregation, *, title: str = "", min_fraction: float = 0.002,
                keep_offsets: bool = False, ax=None) -> Figure:
    """A flame graph: each frame a box as wide as its samples, callers below callees.

    Boxes narrower than ``min_fraction`` of all samples are not drawn.
    """
    root = stack_tree(agg, keep_offsets=keep_offsets)
    depth = _depth(root)
    fig, ax = _figure(ax, height=max(3.0, 0.28 * (depth + 1) + 1.0), width=12.0)
    total = root.value or 1
    boxes: list[tuple[float, int, float, str]] = []

    def place(node: _Node, x: float, level: int) -> None:
        boxes.append((x, level, node.value, node.name))
        offset = x
        for child in sorted(node.children.values(), key=lambda n: n.name):
            if child.value / total >= min_fraction:
                place(child, offset, level + 1)
            offset += child.value

    place(root, 0.0, 0)
    for x, level, width, name in boxes:
        ax.add_patch(Rectangle((x, level), width, 0.95, facecolor=_flame_colour(name),
                               edgecolor="white", linewidth=0.3, label=name))
        if width / total > 0.04:
            ax.text(x + width / 2, level + 0.47, _fit(name, width / total), ha="center",
                    va="center", fontsize=7, clip_on=True)
    ax.set_xlim(0, total)
    ax.set_ylim(0, depth + 1)
    ax.set_yticks([])
    ax.set_xlabel(f"samples ({root.value} total)")
    ax.set_title(title or "flame graph")
    return fig


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0) if node.children else 0


def _function(frame: str) -> str:
    """``genunix`read+0x1d4`` -> ``genunix`read``; bare addresses stay."""
    name, plus, offset = frame.rpartition("+")
    return name if plus and offset.startswith("0x") and name else frame


def _flame_colour(name: str) -> tuple[float, float, float]:
    h = int(hashlib.md5(name.encode()).hexdigest()[:4], 16) / 0xFFFF
    return (0.85 + 0.15 * h, 0.35 + 0.45 * h, 0.1 + 0.15 * (1 - h))


def _fit(name: str, fraction: float) -> str:
    room = max(3, int(fraction * 160))
    return name if len(name) <= room else name[:room - 1] + "…"


# ============================================================================ live plots


class LivePlot:
    """Redraw a figure in a Jupyter notebook for each interval of a DTrace stream.

    ``render(history)`` gets the list of intervals seen so far and returns a
    Figure; each update replaces the previous image in place
    (``IPython.display.display(..., display_id=True)``).  With ``output`` (an
    ``ipywidgets.Output``) the image lives inside that widget.  ``display``
    replaces IPython's display function (tests).
    """

    def __init__(self, render: Callable[[list], Figure], *, keep: int | None = 60,
                 output=None, display: Callable | None = None):
        self.render = render
        self.keep = keep
        self.history: list = []
        self.updates = 0
        self._output = output
        self._display = display
        self._handle = None

    def update(self, item) -> bytes:
        """Add one interval and redraw; returns the PNG shown."""
        self.history.append(item)
        if self.keep is not None:
            self.history = self.history[-self.keep:]
        png = to_png(self.render(self.history))
        image = _ipython_image(png)
        if self._handle is None:
            show = self._display or _ipython_display
            if self._output is not None:
                with self._output:
                    self._handle = show(image, display_id=True)
            else:
                self._handle = show(image, display_id=True)
        else:
            self._handle.update(image)
        self.updates += 1
        return png

    def follow(self, stream: Iterable, *, limit: int | None = None) -> list:
        """Consume ``stream`` (e.g. ``lab.dtrace.stream(...)``), updating on every interval."""
        for count, item in enumerate(stream, 1):
            self.update(item)
            if limit is not None and count >= limit:
                break
        return self.history


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (Agg)."""
    buf = io.BytesIO()
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _ipython_image(png: bytes):
    try:
        from IPython.display import Image
    except ImportError:
        return png
    return Image(data=png, format="png")


def _ipython_display(obj, display_id=True):
    from IPython.display import display

    return display(obj, display_id=display_id)


# ============================================================================ helpers


def _figure(ax, *, height: float, width: float = 7.0):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _need(agg: Aggregation, kind: str) -> None:
    if agg.kind != kind:
        raise ConfigError(f"expected a {kind} aggregation, got {agg.kind} "
                          f"({'use histogram()' if kind == 'scalar' else 'use bar_chart()'})")
