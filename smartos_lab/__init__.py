"""smartos-lab: a hands-on SmartOS lab on QEMU, driven from Python and Jupyter.

Layers (each only uses the ones before it)::

    images -> machine (qemu, qmp, console, shell, ssh) -> smartos (boot, setup, login)
           -> toolkits (zfs, zones, dtrace, vms, sysinfo) -> lab (facade) -> notebook UX, cli

Inside a Jupyter kernel, ``progress=True`` shows the notebook layer's widget
(installed here, imported only when first used, so ``import smartos_lab``
stays fast and never imports IPython or ipywidgets itself).
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


if _in_kernel():
    from . import steps as _steps

    _steps.set_display(_notebook_display)
