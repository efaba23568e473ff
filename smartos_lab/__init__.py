"""smartos-lab: a hands-on SmartOS lab on QEMU, driven from Python and Jupyter.

Layers (each only uses the ones before it)::

    images -> machine (qemu, qmp, console, shell, ssh) -> smartos (boot, setup, login)
           -> toolkits (zfs, zones, dtrace, vms, sysinfo) -> lab (facade) -> notebook UX, cli

Inside a Jupyter kernel, ``progress=True`` shows the notebook layer's widget
and a :class:`Lab` shown as a cell's value is its live panel (both installed
here, the notebook layer imported only when first used, so ``import
smartos_lab`` stays fast and never imports IPython or ipywidgets itself).
``%load_ext smartos_lab`` loads the magics (:mod:`smartos_lab.notebook.magics`).
"""
from __future__ import annotations

import sys

__version__ = "0.1.0"

__all__ = ["Lab", "__version__"]


def __getattr__(name: str):
    if name == "Lab":
        from .lab import Lab

        return Lab
    raise AttributeError(name)


def _in_kernel() -> bool:
    """True in a Jupyter kernel; looks only at modules already imported."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _notebook_display():
    from .notebook.progress import step_display

    return step_display()


def _show_lab(lab) -> None:
    from .notebook.panel import show_lab

    show_lab(lab)


def _install_in_kernel() -> None:
    from . import steps

    steps.set_display(_notebook_display)
    shell = sys.modules["IPython"].get_ipython()
    shell.display_formatter.ipython_display_formatter.for_type_by_name(
        "smartos_lab.lab", "Lab", _show_lab)


def load_ipython_extension(ipython) -> None:
    """``%load_ext smartos_lab``: the lab magics (``%lab``, ``%%sh``, ``%undo`` ...)."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


if _in_kernel():
    _install_in_kernel()
