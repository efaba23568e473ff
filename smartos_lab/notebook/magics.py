"""IPython magics: type lab commands into cells.  Load with ``%load_ext smartos_lab``.

=====================  ===================================================================
``%lab [NAME]``        select the lab the magics use (attach, or boot it) and show its panel
``%%sh`` / ``%%gz``    the cell runs in the lab's global zone, output streamed into the cell
``%%zone NAME``        the same inside a zone (alias or UUID), through ``zlogin``
``%%dtrace``           the cell is a D program; results as tables and plots
``%checkpoint NAME``   save the lab; ``%restore NAME``, ``%checkpoints``
``%autocheckpoint``    ``on``/``off``: an undo point before each ``%%sh``/``%%zone`` cell
``%undo``              back to the state before the last such cell
=====================  ===================================================================

Once loaded, ``%%sh`` runs in the lab, not on the host (IPython's own is still
``%%script sh``).  Bad input fails the cell with one line saying what is
wrong and what to type; a command that exits non-zero fails it with the
command, its exit status and the end of its stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ..errors import ConfigError, LabError
from .cells import CellError, CellOutput, run_streamed
from .env import display
from .undo import UndoHistory

LAB_ENV = "SMARTOS_LAB_NAME"         # names the lab %lab selects when given no name
DEFAULT_TIMEOUT = 600.0
DTRACE_SECONDS = 5.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REPLACED_SH = ("smartos-lab: %%sh (and %%gz) now run in the lab's global zone, not on this host; "
               "for a host shell use %%script sh or !command")
_told_sh = False


# --- argument parsing: one line of what is wrong and what to type -----------------------
class _Parser(argparse.ArgumentParser):
    def __init__(self, magic: str, usage: str):
        super().__init__(prog=magic, usage=usage, add_help=False)
        self.magic = magic

    def error(self, message: str):
        raise UsageError(f"{self.magic}: {message}; type: {self.usage}")


def _parse(parser: _Parser, line: str) -> argparse.Namespace:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{parser.magic}: {exc}; type: {parser.usage}") from None
    return parser.parse_args(words)


def duration(text: str) -> float:
    """``5``, ``5s``, ``500ms``, ``2m`` as seconds."""
    m = _DURATION.fullmatch(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 5s, 500ms, 2m)")
    return float(m.group(1)) * {"ms": 0.001, "m": 60.0}.get(m.group(2) or "s", 1.0)


def _sh_parser(magic: str) -> _Parser:
    p = _Parser(magic, f"{magic} [--timeout SECONDS] [--via console|ssh] [--out VAR]")
    p.add_argument("--timeout", type=duration, default=DEFAULT_TIMEOUT)
    p.add_argument("--via", choices=("console", "ssh"))
    p.add_argument("--out", metavar="VAR")
    return p


def _zone_parser() -> _Parser:
    p = _Parser("%%zone", "%%zone ALIAS_OR_UUID [--timeout SECONDS] [--out VAR]")
    p.add_argument("zone")
    p.add_argument("--timeout", type=duration, default=DEFAULT_TIMEOUT)
    p.add_argument("--out", metavar="VAR")
    return p


def _dtrace_parser() -> _Parser:
    p = _Parser("%%dtrace", "%%dtrace [--for 5s] [--plot bar|quantize|heatmap|flame] [--out VAR]")
    p.add_argument("--for", dest="seconds", type=duration)
    p.add_argument("--plot", choices=("bar", "quantize", "heatmap", "flame"))
    p.add_argument("--out", metavar="VAR")
    return p


def _name_parser(magic: str, usage: str, *, optional: bool = False) -> _Parser:
    p = _Parser(magic, usage)
    p.add_argument("name", nargs="?" if optional else None)
    return p


def _variable(name: str | None) -> str | None:
    if name is not None and not name.isidentifier():
        raise UsageError(f"--out {name!r} is not a Python variable name; type e.g. --out result")
    return name


# --- the magics -------------------------------------------------------------------------
@magics_class
class LabMagics(Magics):
    """The lab magics and the state they share (selected lab, undo points)."""

    def __init__(self, shell, *, keep: int = 2):
        super().__init__(shell)
        self.lab = None
        self.autocheckpoint = False
        self.keep = keep
        self.history: UndoHistory | None = None

    # --- selecting a lab -------------------------------------------------------------------
    @line_magic("lab")
    def lab_magic(self, line: str = ""):
        """%lab [NAME]: select (attach to, or boot) the lab the magics use, and show its panel."""
        args = _parse(_name_parser("%lab", "%lab [NAME]", optional=True), line)
        if args.name is None and self.lab is not None:
            return self._show_panel()
        name = args.name or os.environ.get(LAB_ENV, "").strip() or self._only_running_lab()
        if name is None:
            raise CellError("no lab selected", _no_lab_paragraph())
        with _short_errors():
            self.select(name)
        return self._show_panel()

    def select(self, name: str):
        """Make lab ``name`` the magics' lab: attached if running, booted if it can be."""
        from ..lab import Lab, LabState, lookup
        from ..machine.rundir import validate_name
        try:
            validate_name(name)
        except ConfigError as exc:
            raise UsageError(f"%lab: {exc}; type e.g. %lab workshop") from None
        found = lookup(name)
        if found.state is LabState.RUNNING:
            lab = Lab.attach(name)      # the Lab this process holds open (the notebook's), else attached
        elif found.state is LabState.STOPPED:
            lab = Lab.up(name)                          # boots again with its saved settings
        elif found.state is LabState.ABSENT:
            from .images import find_image
            image = find_image()
            if image is None:
                raise CellError(f"lab {name!r} does not exist and there is no SmartOS image to "
                                "boot it", _no_lab_paragraph())
            lab = Lab.up(name, image=str(image.path))
        else:
            raise found.error()
        if lab is not self.lab:         # the same lab again keeps its undo points
            self._use(lab)
        return lab

    def _use(self, lab) -> None:
        """Select ``lab``; ``lab`` in the notebook names it unless it names something else."""
        from ..lab import Lab
        self.lab = lab
        self.history = None
        if isinstance(self.shell.user_ns.get("lab", lab), Lab):
            self.shell.user_ns["lab"] = lab

    def _show_panel(self):
        from .panel import LabPanel, panel
        shown = panel(self.lab)
        if isinstance(shown, LabPanel):
            display(shown.widget)
            return None
        print(shown)
        return None

    @staticmethod
    def _only_running_lab() -> str | None:
        from ..machine.registry import running_labs
        labs = [s.name for s in running_labs() if s.state in ("running", "paused")]
        return labs[0] if len(labs) == 1 else None

    def _require_lab(self, magic: str):
        if self.lab is None:
            raise UsageError(f"{magic}: no lab selected; type %lab NAME first (%lab alone lists "
                             "what to do)")
        return self.lab

    # --- commands ---------------------------------------------------------------------------
    @cell_magic("sh")
    def sh(self, line: str, cell: str):
        """%%sh [--timeout S] [--via console|ssh] [--out VAR]: run the cell in the lab's global zone."""
        return self._sh("%%sh", line, cell)

    def _sh(self, magic: str, line: str, cell: str):
        args = _parse(_sh_parser(magic), line)
        out = _variable(args.out)
        lab = self._require_lab(magic)
        if not cell.strip():
            raise UsageError(f"{magic}: the cell is empty; type the commands under the {magic} line")
        self._undo_point(cell)
        result = run_streamed(lab.sh, cell, timeout=args.timeout, via=args.via, output=CellOutput())
        if out:
            self.shell.user_ns[out] = result
        return None

    @cell_magic("zone")
    def zone(self, line: str, cell: str):
        """%%zone ALIAS_OR_UUID [--timeout S] [--out VAR]: run the cell in a zone (zlogin)."""
        if not line.strip():
            raise UsageError("%%zone: name the zone; type: %%zone ALIAS_OR_UUID "
                             "(%%sh vmadm list shows them)")
        args = _parse(_zone_parser(), line)
        out = _variable(args.out)
        lab = self._require_lab("%%zone")
        if not cell.strip():
            raise UsageError("%%zone: the cell is empty; type the commands under the %%zone line")
        uuid = self._zone_uuid(lab, args.zone)
        self._undo_point(cell)
        command = f"zlogin {shlex.quote(uuid)} {shlex.quote(cell.strip(chr(10)))}"
        result = run_streamed(lab.sh, command, timeout=args.timeout, via=None, output=CellOutput())
        if out:
            self.shell.user_ns[out] = result
        return None

    @staticmethod
    def _zone_uuid(lab, zone: str) -> str:
        with _short_errors():
            zones = lab.zones.list()
        for entry in zones:
            if zone in (entry.uuid, entry.alias):
                return entry.uuid
        known = ", ".join(f"{z.alias or '-'} ({z.uuid})" for z in zones) or "none"
        raise UsageError(f"%%zone: no zone {zone!r} in lab {lab.name}; the zones there are: {known}")

    @cell_magic("dtrace")
    def dtrace(self, line: str, cell: str):
        """%%dtrace [--for 5s] [--plot bar|quantize|heatmap|flame] [--out VAR]: run the cell's D program."""
        from .dtrace_cell import run_dtrace_cell
        args = _parse(_dtrace_parser(), line)
        out = _variable(args.out)
        lab = self._require_lab("%%dtrace")
        if not cell.strip():
            raise UsageError("%%dtrace: the cell is empty; type a D program under the %%dtrace line")
        result = run_dtrace_cell(lab, cell, seconds=args.seconds, plot=args.plot)
        if out:
            self.shell.user_ns[out] = result
        return None

    # --- checkpoints and undo ------------------------------------------------------------------
    @line_magic("checkpoint")
    def checkpoint(self, line: str = ""):
        """%checkpoint NAME: save the whole lab (RAM and disks) as NAME."""
        args = _parse(_name_parser("%checkpoint", "%checkpoint NAME"), line)
        lab = self._require_lab("%checkpoint")
        _checkpoint_name("%checkpoint", args.name)
        with _short_errors():
            seconds = lab.checkpoint(args.name)
        print(f"saved checkpoint {args.name!r} in {seconds:.1f} s")

    @line_magic("restore")
    def restore(self, line: str = ""):
        """%restore NAME: return the lab to checkpoint NAME."""
        args = _parse(_name_parser("%restore", "%restore NAME"), line)
        lab = self._require_lab("%restore")
        _checkpoint_name("%restore", args.name)
        with _short_errors():
            known = [c.name for c in lab.checkpoints()]
            if args.name not in known:
                choices = ", ".join(f"%restore {n}" for n in known) or \
                    "%checkpoint NAME first (there are none yet)"
                raise UsageError(f"%restore: lab {lab.name} has no checkpoint {args.name!r}; "
                                 f"type one of: {choices}")
            seconds = lab.restore(args.name)
        print(f"restored checkpoint {args.name!r} in {seconds:.1f} s")

    @line_magic("checkpoints")
    def checkpoints(self, line: str = ""):
        """%checkpoints: the lab's checkpoints."""
        if line.strip():
            raise UsageError("%checkpoints takes no arguments; type: %checkpoints")
        lab = self._require_lab("%checkpoints")
        with _short_errors():
            found = lab.checkpoints()
        if not found:
            print(f"lab {lab.name} has no checkpoints yet (%checkpoint NAME saves one)")
            return None
        from .tables import Table
        return Table(["name", "taken (UTC)", "VM state"],
                     [[c.name, c.date.strftime("%Y-%m-%d %H:%M:%S"), f"{c.vm_state_size / 2**20:.1f} MiB"]
                      for c in found])

    @line_magic("autocheckpoint")
    def autocheckpoint_magic(self, line: str = ""):
        """%autocheckpoint on|off: an undo point before each %%sh / %%zone cell (for %undo)."""
        word = line.strip().lower()
        if word not in ("on", "off", ""):
            raise UsageError(f"%autocheckpoint: {line.strip()!r} is not on or off; type: "
                             "%autocheckpoint on  (or off)")
        if word:
            self.autocheckpoint = word == "on"
        state = "on" if self.autocheckpoint else "off"
        extra = f": an undo point before each %%sh/%%zone cell, the last {self.keep} kept" \
            if self.autocheckpoint else ""
        print(f"autocheckpoint is {state}{extra}")

    @line_magic("undo")
    def undo(self, line: str = ""):
        """%undo: return the lab to the state before the last %%sh / %%zone cell (autocheckpoint on)."""
        if line.strip():
            raise UsageError("%undo takes no arguments; type: %undo")
        self._require_lab("%undo")
        with _short_errors():
            point, seconds = self._history().undo()
        print(f"undone: back to before {point.label!r} in {seconds:.1f} s "
              f"({len(self._history().points)} undo point(s) left)")

    def _history(self) -> UndoHistory:
        if self.history is None or self.history.lab is not self.lab:
            with _short_errors():
                self.history = UndoHistory(self.lab, keep=self.keep)
        return self.history

    def _undo_point(self, cell: str) -> None:
        if not self.autocheckpoint:
            return
        label = next((ln.strip() for ln in cell.splitlines() if ln.strip()), "")[:60]
        with _short_errors():
            point = self._history().save(label)
        print(f"[undo point {point.name}: {point.cost()}]", file=sys.stderr, flush=True)


def _checkpoint_name(magic: str, name: str) -> str:
    from ..machine.checkpoints import validate_checkpoint_name
    try:
        return validate_checkpoint_name(name)
    except ConfigError as exc:
        raise UsageError(f"{magic}: {exc}; type e.g. {magic} before-zfs") from None


class _short_errors:
    """Turn a lab error into a short cell error (no traceback through the package)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, LabError):
            raise CellError.from_lab_error(exc) from None
        return False


def _no_lab_paragraph() -> list[str]:
    return [
        "  %lab NAME attaches to the running lab NAME or boots the stopped lab NAME ('smartos-lab ps'",
        f"  lists them; ${LAB_ENV} names the lab for a bare %lab).  A new lab boots SmartOS from an",
        "  image: export SMARTOS_LAB_IMAGE=/path/to/smartos-<TS>-USB.img.gz and restart the kernel,",
        "  or 'smartos-lab images add FILE', or ImageCache().fetch(\"latest\") in 00-start-here.ipynb;",
        "  then type: %lab NAME"]


# --- loading -------------------------------------------------------------------------------
def load_ipython_extension(ipython) -> LabMagics:
    """``%load_ext smartos_lab``: register the magics (``%%sh`` replaces IPython's host one)."""
    global _told_sh
    magics = LabMagics(ipython)
    ipython.register_magics(magics)
    ipython.magics_manager.register_alias("gz", "sh", "cell")
    from .panel import show_lab
    ipython.display_formatter.ipython_display_formatter.for_type_by_name(
        "smartos_lab.lab", "Lab", show_lab)
    if not _told_sh:
        _told_sh = True
        print(REPLACED_SH)
    return magics
