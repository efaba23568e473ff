"""Rows as tables (HTML in Jupyter, aligned text elsewhere) and toolkit figures as images."""
from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class Table:
    """Rows shown as an HTML table in Jupyter and as aligned text elsewhere."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]]):
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]

    def __str__(self) -> str:
        data = [self.columns] + self.rows
        widths = [max(len(r[i]) for r in data) for i in range(len(self.columns))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in data)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>"
                                        for v in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table(rows: Iterable[Any], columns: Sequence[str] | None = None, *,
          limit: int | None = None) -> Table:
    """A :class:`Table` of dataclass instances, dicts, objects or tuples.

    ``columns`` picks fields (default: every dataclass field / dict key of the
    first row; tuples need ``columns``).  Tuple values (aggregation keys, stacks)
    are joined with ``, ``; None shows as ``-``.
    """
    rows = list(rows)
    if limit is not None:
        rows = rows[:limit]
    if columns is None:
        columns = _default_columns(rows[0]) if rows else []
    return Table(columns, [[_cell(_value(row, c, i)) for i, c in enumerate(columns)] for row in rows])


def _default_columns(row: Any) -> list[str]:
    if dataclasses.is_dataclass(row):
        return [f.name for f in dataclasses.fields(row) if f.name not in ("raw", "fields")]
    if isinstance(row, Mapping):
        return [str(k) for k in row]
    raise TypeError(f"give columns for rows of type {type(row).__name__}")


def _value(row: Any, column: str, index: int) -> Any:
    if isinstance(row, Mapping):
        return row.get(column)
    if isinstance(row, (tuple, list)):
        return row[index] if index < len(row) else None
    return getattr(row, column, None)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def figure_image(fig, *, dpi: int = 100):
    """A matplotlib Figure as an ``IPython.display.Image`` (shown as a cell's last value).

    The toolkit's plots are pyplot-free Figures, which Jupyter would show only as text.
    """
    from IPython.display import Image

    from ..toolkits.plots import to_png
    return Image(data=to_png(fig, dpi=dpi), format="png")
