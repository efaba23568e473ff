"""smartos-lab: a hands-on SmartOS lab on QEMU, driven from Python and Jupyter.

Layers (each only uses the ones before it)::

    images -> machine (qemu, qmp, console, shell, ssh) -> smartos (boot, setup, login)
           -> toolkits (zfs, zones, dtrace, vms, sysinfo) -> lab (facade) -> notebook UX, cli
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Lab", "__version__"]


def __getattr__(name: str):
    if name == "Lab":
        from .lab import Lab

        return Lab
    raise AttributeError(name)
