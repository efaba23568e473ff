"""Where the notebook layer runs: inside a Jupyter kernel or not, and its display helpers.

IPython and ipywidgets are imported only when asked for, so everything here
works (and imports fast) without Jupyter.
"""
from __future__ import annotations

import sys


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def widgets():
    """The ipywidgets module, or ImportError with the fix."""
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError("this needs ipywidgets: pip install 'smartos-lab[notebook]'") from exc
    return ipywidgets


def display(obj) -> None:
    from IPython.display import display as show
    show(obj)
