"""The notebooks: valid, output-free, parseable, and in step with the real API.

The API check is static: it reads each notebook's code cells in order, follows
what names refer to (``from smartos_lab... import``, ``lab = Lab.up(...)``,
``result = lab.dtrace.run(...)``) using the package's real classes and their
type hints, and reports every imported name, attribute or call that does not
exist or does not accept the arguments given.  A toolkit is resolved by
running the real ``Lab.<toolkit>`` property on a stand-in lab, so a toolkit
that ``Lab`` cannot build is reported too.

``00-start-here.ipynb`` needs no SmartOS and is executed for real with nbclient.
"""
from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = ["00-start-here.ipynb", "01-boot-smartos.ipynb", "01a-smartos-fundamentals.ipynb",
            "02-zfs.ipynb", "02a-zfs-part2.ipynb", "03-zones-and-images.ipynb",
            "03a-zone-lifecycle.ipynb", "03b-resource-controls.ipynb", "03c-writing-d.ipynb",
            "04-dtrace.ipynb", "04a-tracing-zones.ipynb", "05-kvm-and-bhyve.ipynb",
            "05a-lx-zones.ipynb", "06-your-own-kernel.ipynb", "07-magics-tour.ipynb"]
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
ANY_LAB = ["07-magics-tour.ipynb"]          # runs on any lab (the test guest in the tests)
NEED_SMARTOS = [p for p in NOTEBOOKS if not p.name.startswith("00-") and p.name not in ANY_LAB]


def _read(path: Path):
    return nbformat.read(str(path), as_version=4)


# what a magic cell's ``--out VAR`` holds, as Python the API check follows
OUT_VALUE = {"sh": 'lab.sh("")', "gz": 'lab.sh("")', "zone": 'lab.sh("")',
             "dtrace": 'lab.dtrace.run("", duration=1)'}


def _code_cells(path: Path) -> list[str]:
    """Each code cell's source with IPython magics and shell escapes blanked (same line numbers);
    a magic cell becomes the assignment its ``--out VAR`` makes, if any."""
    sources = []
    for cell in _read(path).cells:
        if cell.cell_type != "code":
            continue
        magic = _cell_magic(cell.source)
        if magic is not None:
            name, line = magic
            out = re.search(r"--out[ =](\w+)", line)
            if out and name in OUT_VALUE:
                sources.append(f"{out.group(1)} = {OUT_VALUE[name]}")
            continue
        lines = [("" if line.lstrip().startswith(("%", "!")) else line)
                 for line in cell.source.splitlines()]
        sources.append("\n".join(lines))
    return sources


def _ids(paths):
    return [p.name for p in paths]


# ============================================================================ format


def test_the_notebook_series_is_complete():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_valid_nbformat_4_with_a_python3_kernel(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_has_no_stored_outputs(path):
    for cell in _read(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_code_cell_parses(path):
    for source in _code_cells(path):
        ast.parse(source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_opens_with_what_you_learn_what_it_needs_and_time(path):
    first = _read(path).cells[0]
    assert first.cell_type == "markdown"
    for heading in ("What you will learn", "What it needs", "Time"):
        assert heading in first.source, heading
    if path in NEED_SMARTOS:
        assert "KVM" in first.source and "TCG" in first.source
        assert "--nbval-cell-timeout" in first.source


@pytest.mark.parametrize("path", NEED_SMARTOS, ids=_ids(NEED_SMARTOS))
def test_the_image_is_found_before_the_first_lab_boots(path):
    cells = _code_cells(path)
    image = next(i for i, s in enumerate(cells) if "require_image()" in s)
    boot = next(i for i, s in enumerate(cells) if "Lab.up(" in s)
    assert image < boot
    assert not any(re.search(r"\b[lL]ab\.", s) for s in cells[:image])


@pytest.mark.parametrize("path", NEED_SMARTOS, ids=_ids(NEED_SMARTOS))
def test_without_an_image_the_image_cell_stops_with_what_to_do(path, tmp_path, monkeypatch):
    from smartos_lab.errors import ImageError
    for var in ("SMARTOS_LAB_IMAGE", "SMARTOS_LAB_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path / "empty-cache"))
    cell = next(s for s in _code_cells(path) if "require_image()" in s)
    with pytest.raises(ImageError) as err:
        exec(compile(cell, path.name, "exec"), {})
    assert "SMARTOS_LAB_IMAGE" in str(err.value) and "smartos-lab images add" in str(err.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_command_lines_named_in_a_notebook_exist(path):
    from smartos_lab.cli import build_parser
    parser = build_parser()
    text = "\n".join(cell.source for cell in _read(path).cells)
    for words in re.findall(r"smartos-lab ((?:[a-z]+)(?: [a-z]+)?)", text):
        name, _, action = words.partition(" ")
        sub = parser._subparsers._group_actions[0].choices       # argparse keeps them here
        assert name in sub, f"smartos-lab {name}"
        actions = [a for a in sub[name]._actions if getattr(a, "choices", None)]
        if action and actions and isinstance(actions[0].choices, dict):
            assert action in actions[0].choices, f"smartos-lab {name} {action}"


def _published_examples(path: Path) -> list[str]:
    found = []
    for source in _code_cells(path):
        found += re.findall(r"published_example\(\"([^\"]+)\"\)", source)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_example_output_shown_is_shipped_with_the_package_with_its_source(path):
    for rel in _published_examples(path):
        text = (ROOT / "smartos_lab" / "examples" / rel).read_text()
        assert text.startswith("# source: "), rel


# ============================================================================ magics


def _cell_magic(source: str) -> tuple[str, str] | None:
    """``(name, rest of the line)`` of a cell that starts with ``%%name``, else None."""
    first = source.lstrip("\n").split("\n", 1)[0]
    match = re.match(r"%%(\w+)(.*)", first)
    return (match.group(1), match.group(2).strip()) if match else None


def _line_magics(source: str) -> list[tuple[str, str]]:
    """``(name, arguments)`` of each ``%name`` line of a cell that is not a cell magic."""
    if _cell_magic(source) is not None:
        return []
    return [(m.group(1), m.group(2).strip()) for line in source.splitlines()
            if (m := re.match(r"\s*%(?!%)(\w+)(.*)", line))]


@dataclass(frozen=True)
class MagicUse:
    cell: int
    kind: str           # "cell" | "line"
    name: str
    line: str           # what follows the name on its line
    body: str = ""      # a cell magic's cell


def _magic_uses(path: Path) -> list[MagicUse]:
    uses = []
    for i, cell in enumerate(c for c in _read(path).cells if c.cell_type == "code"):
        magic = _cell_magic(cell.source)
        if magic is not None:
            body = cell.source.lstrip("\n").split("\n", 1)[1] if "\n" in cell.source.strip("\n") else ""
            uses.append(MagicUse(i, "cell", magic[0], magic[1], body))
        uses += [MagicUse(i, "line", name, line) for name, line in _line_magics(cell.source)]
    return uses


@functools.cache
def _registered_lab_magics() -> dict[str, frozenset[str]]:
    """The magics ``%load_ext smartos_lab`` registers, as a real IPython then finds them
    (aliases such as ``%%gz`` included), plus IPython's own ``%load_ext``."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.magic import MagicAlias

    from smartos_lab.notebook.magics import LabMagics
    shell = InteractiveShell.instance(history_load_length=0)
    try:
        shell.extension_manager.load_extension("smartos_lab")
        found = {}
        for kind, table in shell.magics_manager.magics.items():
            ours = set()
            for name, fn in table.items():
                owner = getattr(fn, "__self__", None)
                if isinstance(owner, LabMagics) or (
                        isinstance(fn, MagicAlias) and fn.magic_name in LabMagics.magics[kind]):
                    ours.add(name)
            found[kind] = frozenset(ours | ({"load_ext"} if kind == "line" else set()))
        return found
    finally:
        InteractiveShell.clear_instance()


LAB_MAGICS = ("sh", "gz", "zone", "dtrace", "checkpoint", "restore", "checkpoints",
              "autocheckpoint", "undo")          # the magics that need a selected lab


def _options_problem(use: MagicUse) -> str | None:
    """What the magic would refuse in ``use``'s line (its own parser decides), or None.
    ``$VAR`` and ``{expr}`` are Python variables IPython expands: any value is accepted."""
    from IPython.core.error import UsageError

    from smartos_lab.notebook import magics
    parsers = {("cell", "sh"): lambda: magics._sh_parser("%%sh"),
               ("cell", "gz"): lambda: magics._sh_parser("%%gz"),
               ("cell", "zone"): magics._zone_parser, ("cell", "dtrace"): magics._dtrace_parser,
               ("line", "lab"): lambda: magics._name_parser("%lab", "%lab [NAME]", optional=True),
               ("line", "checkpoint"): lambda: magics._name_parser("%checkpoint", "%checkpoint NAME"),
               ("line", "restore"): lambda: magics._name_parser("%restore", "%restore NAME")}
    if use.kind == "line" and use.name in ("checkpoints", "undo"):
        return f"%{use.name} takes no arguments" if use.line else None
    if use.kind == "line" and use.name == "autocheckpoint":
        return None if use.line in ("on", "off", "") else f"%autocheckpoint {use.line!r}"
    if (use.kind, use.name) not in parsers:
        return None
    try:
        args = magics._parse(parsers[(use.kind, use.name)](), use.line)
        magics._variable(getattr(args, "out", None))
    except UsageError as exc:
        return str(exc)
    if use.kind == "cell" and not use.body.strip():
        return "the cell is empty"
    return None


WITH_MAGICS = [p for p in NOTEBOOKS if _magic_uses(p)]


def test_the_smartos_notebooks_type_commands_with_the_lab_magics():
    assert set(NEED_SMARTOS) | {NOTEBOOK_DIR / name for name in ANY_LAB} <= set(WITH_MAGICS)


@pytest.mark.parametrize("path", WITH_MAGICS, ids=_ids(WITH_MAGICS))
def test_every_magic_a_notebook_types_is_one_the_lab_extension_registers(path):
    registered = _registered_lab_magics()
    unknown = [f"code cell {u.cell}: {'%%' if u.kind == 'cell' else '%'}{u.name}"
               for u in _magic_uses(path) if u.name not in registered[u.kind]]
    assert not unknown, unknown


@pytest.mark.parametrize("path", WITH_MAGICS, ids=_ids(WITH_MAGICS))
def test_every_magic_line_parses_as_the_magic_parses_it(path):
    problems = [f"code cell {u.cell}: {u.name} {u.line}: {problem}" for u in _magic_uses(path)
                if (problem := _options_problem(u))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_a_cell_magic_is_the_first_line_of_its_cell(path):
    for cell in _read(path).cells:
        if cell.cell_type == "code":
            rest = cell.source.strip("\n").splitlines()[1:]
            later = [line for line in rest if line.lstrip().startswith("%%")]
            assert not later, cell.source[:80]


@pytest.mark.parametrize("path", WITH_MAGICS, ids=_ids(WITH_MAGICS))
def test_the_lab_is_selected_after_it_boots_and_before_the_magics_use_it(path):
    """``%load_ext smartos_lab``, then ``%lab`` after the cell that boots the lab the Python way,
    before any magic that needs a lab; after a cell that makes ``lab = Lab.up(...)`` again
    (a reboot, a re-attach), ``%lab`` again before the next one."""
    cells = [c.source for c in _read(path).cells if c.cell_type == "code"]
    loaded = selected = False
    booted = path.name in ANY_LAB
    for i, source in enumerate(cells):
        magic = _cell_magic(source)
        if magic is None and re.search(r"^\s*lab = Lab\.up\(", source, re.M):
            booted, selected = True, False
        for name, line in [magic] if magic else _line_magics(source):
            if name == "load_ext":
                loaded = loaded or line == "smartos_lab"
            elif name == "lab":
                assert loaded, f"code cell {i}: %lab before %load_ext smartos_lab"
                assert booted, f"code cell {i}: %lab before the cell that boots the lab"
                selected = True
            elif name in LAB_MAGICS:
                assert selected, f"code cell {i}: %{name} with no lab selected since the lab (re)booted"


def test_the_magic_checks_catch_drift():
    bad = [MagicUse(0, "cell", "dtrace", "--for banana", "BEGIN { exit(0); }"),
           MagicUse(1, "cell", "sh", "--via telnet", "uname -a"),
           MagicUse(2, "cell", "zone", "", "zonename"),
           MagicUse(3, "cell", "sh", "--out 2r", "id"),
           MagicUse(4, "cell", "dtrace", "--for 5s", "\n"),
           MagicUse(5, "line", "autocheckpoint", "maybe")]
    assert all(_options_problem(u) for u in bad), [u for u in bad if not _options_problem(u)]
    good = [MagicUse(0, "cell", "dtrace", "--for 5s --plot quantize --out d", "BEGIN { exit(0); }"),
            MagicUse(1, "cell", "zone", "{uuid} --timeout 30", "zonename"),
            MagicUse(2, "line", "lab", "$LAB")]
    assert not [u for u in good if _options_problem(u)]
    registered = _registered_lab_magics()
    assert {"sh", "gz", "zone", "dtrace"} <= registered["cell"] and "bash" not in registered["cell"]
    assert {"lab", "checkpoint", "restore", "undo", "load_ext"} <= registered["line"]
    assert "timeit" not in registered["line"]
    assert _cell_magic("%%dtrace --for 5s\nBEGIN {}") == ("dtrace", "--for 5s")
    assert _line_magics("%load_ext smartos_lab\n%lab $LAB") == [("load_ext", "smartos_lab"),
                                                                ("lab", "$LAB")]


# ============================================================================ API check


@dataclass(frozen=True)
class Ref:
    """What a name or expression refers to: a module, a class, an instance of a class,
    a callable (``drop_self``: an unbound method looked up on an instance), or a list of T."""

    kind: str           # "module" | "class" | "instance" | "callable" | "list"
    obj: object
    drop_self: bool = False


def _stand_in(cls):
    """An object with what ``cls``'s cached properties read, to build its toolkits."""
    from smartos_lab.lab import Lab
    from smartos_lab.machine.accel import AccelChoice
    if cls is Lab:
        return types.SimpleNamespace(shell=object(), name="lab", stopped_at_boot=None,
                                     machine=types.SimpleNamespace(accel=AccelChoice("tcg", "test"),
                                                                   console=object()))
    return None


@functools.cache
def _assigned_attributes(cls) -> frozenset[str]:
    """Names assigned as ``self.<name> = ...`` anywhere in ``cls``'s own source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    return frozenset(n.attr for n in ast.walk(tree)
                     if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                     and isinstance(n.value, ast.Name) and n.value.id == "self")


def _instance_has(cls, name: str) -> bool:
    if hasattr(cls, name):
        return True
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}) or name in _assigned_attributes(klass):
            return True
        if is_dataclass(klass) and name in {f.name for f in fields(klass)}:
            return True
    return False


def _hints(obj) -> dict:
    try:
        return typing.get_type_hints(obj)
    except Exception:           # unresolvable forward references: no inference
        return {}


def _from_hint(hint) -> Ref | None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _from_hint(args[0]) if len(args) == 1 else None
    if origin in (list, tuple) or (origin is not None and origin.__name__ in ("Sequence", "Iterator",
                                                                             "Iterable")):
        args = typing.get_args(hint)
        element = _from_hint(args[0]) if args else None
        return Ref("list", element) if element else None
    if isinstance(hint, type) and hint.__module__ != "builtins":
        return Ref("instance", hint)
    return None


def _is_protocol(cls) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


class ApiChecker:
    """Follows one notebook's code cells and records API problems."""

    def __init__(self, notebook: str):
        from smartos_lab.lab import Lab
        self.notebook = notebook
        self.env: dict[str, Ref] = {"lab": Ref("instance", Lab)}
        self.problems: list[str] = []
        self.cell = 0

    # -- driving --------------------------------------------------------------------
    def run(self, sources: list[str]) -> list[str]:
        for self.cell, source in enumerate(sources):
            self.block(ast.parse(source).body)
        return self.problems

    def problem(self, node: ast.AST, text: str) -> None:
        self.problems.append(f"{self.notebook} code cell {self.cell} line {node.lineno}: {text}")

    def block(self, statements) -> None:
        for stmt in statements:
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.ImportFrom):
            self.import_from(stmt)
        elif isinstance(stmt, ast.Import):
            self.import_(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            value = stmt.value
            ref = self.expr(value) if value is not None else None
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self.bind(target, ref)
        elif isinstance(stmt, ast.For):
            self.bind(stmt.target, self.element(self.expr(stmt.iter)))
            self.block(stmt.body)
            self.block(stmt.orelse)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            saved = dict(self.env)
            for arg in stmt.args.args + stmt.args.kwonlyargs:
                self.env.pop(arg.arg, None)
            self.block(stmt.body)
            self.env = saved
            self.env.pop(stmt.name, None)
        elif isinstance(stmt, ast.Try):
            self.block(stmt.body)
            for handler in stmt.handlers:
                if handler.type is not None:
                    self.expr(handler.type)
                if handler.name:
                    self.env.pop(handler.name, None)
                self.block(handler.body)
            self.block(stmt.orelse)
            self.block(stmt.finalbody)
        else:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.stmt):
                    self.statement(child)
                elif isinstance(child, ast.expr):
                    self.expr(child)

    def bind(self, target: ast.expr, ref: Ref | None) -> None:
        if isinstance(target, ast.Name):
            if ref is None:
                self.env.pop(target.id, None)
            else:
                self.env[target.id] = ref
        else:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    self.env.pop(name.id, None)
            self.expr(target)

    # -- imports --------------------------------------------------------------------
    def import_from(self, stmt: ast.ImportFrom) -> None:
        if not (stmt.module or "").startswith("smartos_lab") or stmt.level:
            for alias in stmt.names:
                self.env.pop(alias.asname or alias.name, None)
            return
        try:
            module = importlib.import_module(stmt.module)
        except ImportError as exc:
            self.problem(stmt, f"cannot import {stmt.module}: {exc}")
            return
        for alias in stmt.names:
            obj = self.member(module, alias.name)
            if obj is _MISSING:
                self.problem(stmt, f"{stmt.module} has no {alias.name}")
                self.env.pop(alias.asname or alias.name, None)
            else:
                self.env[alias.asname or alias.name] = _classify(obj)

    def import_(self, stmt: ast.Import) -> None:
        for alias in stmt.names:
            if alias.name.startswith("smartos_lab"):
                try:
                    module = importlib.import_module(alias.name)
                except ImportError as exc:
                    self.problem(stmt, f"cannot import {alias.name}: {exc}")
                    continue
                if alias.asname:
                    self.env[alias.asname] = Ref("module", module)
                else:
                    self.env["smartos_lab"] = Ref("module", importlib.import_module("smartos_lab"))
            else:
                self.env.pop(alias.asname or alias.name.split(".")[0], None)

    @staticmethod
    def member(module, name: str):
        if hasattr(module, name):
            return getattr(module, name)
        try:
            return importlib.import_module(f"{module.__name__}.{name}")
        except ImportError:
            return _MISSING

    # -- expressions ------------------------------------------------------------------
    def expr(self, node: ast.expr | None) -> Ref | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value)
            self.expr(node.slice)
            return base.obj if base is not None and base.kind == "list" else None
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)):
            saved = dict(self.env)
            for comp in node.generators:
                self.bind(comp.target, self.element(self.expr(comp.iter)))
                for cond in comp.ifs:
                    self.expr(cond)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            element = [self.expr(p) for p in parts][-1]
            self.env = saved
            return Ref("list", element) if element and isinstance(node, ast.ListComp) else None
        if isinstance(node, ast.Lambda):
            saved = dict(self.env)
            for arg in node.args.args:
                self.env.pop(arg.arg, None)
            self.expr(node.body)
            self.env = saved
            return None
        if isinstance(node, ast.NamedExpr):
            ref = self.expr(node.value)
            self.bind(node.target, ref)
            return ref
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
        return None

    @staticmethod
    def element(ref: Ref | None) -> Ref | None:
        return ref.obj if ref is not None and ref.kind == "list" else None

    def attribute(self, node: ast.Attribute) -> Ref | None:
        base = self.expr(node.value)
        if base is None:
            return None
        name = node.attr
        where = ast.unparse(node.value)
        if base.kind == "module":
            obj = self.member(base.obj, name)
            if obj is _MISSING:
                self.problem(node, f"module {base.obj.__name__} has no {name} ({where}.{name})")
                return None
            return _classify(obj)
        if base.kind == "class":
            if not _instance_has(base.obj, name):
                self.problem(node, f"{base.obj.__qualname__} has no {name} ({where}.{name})")
                return None
            return _classify(getattr(base.obj, name, None)) if hasattr(base.obj, name) else None
        if base.kind == "instance":
            return self.instance_attribute(node, base.obj, name, where)
        return None

    def instance_attribute(self, node, cls, name: str, where: str) -> Ref | None:
        if _is_protocol(cls):
            return None
        if not _instance_has(cls, name):
            self.problem(node, f"{cls.__qualname__} has no attribute {name} ({where}.{name})")
            return None
        static = inspect.getattr_static(cls, name, None)
        if isinstance(static, functools.cached_property):
            stand_in = _stand_in(cls)
            if stand_in is None:
                return None
            try:
                built = static.func(stand_in)
            except Exception as exc:
                self.problem(node, f"{cls.__qualname__}.{name} cannot be built: "
                                   f"{type(exc).__name__}: {exc}")
                return None
            return Ref("instance", type(built))
        if isinstance(static, property):
            return _from_hint(_hints(static.fget).get("return")) if static.fget else None
        if isinstance(static, staticmethod):
            return Ref("callable", static.__func__)
        if isinstance(static, classmethod):
            return Ref("callable", getattr(cls, name))
        if inspect.isfunction(static):
            return Ref("callable", static, drop_self=True)
        hint = _hints(cls).get(name)
        if hint is None and "__init__" in vars(cls):
            hint = _hints(cls.__init__).get(name)
        return _from_hint(hint) if hint is not None else None

    def call(self, node: ast.Call) -> Ref | None:
        target = self.expr(node.func)
        for arg in node.args:
            self.expr(arg.value if isinstance(arg, ast.Starred) else arg)
        for kw in node.keywords:
            self.expr(kw.value)
        if target is None:
            return None
        if target.kind == "class":
            self.check_arguments(node, target.obj, drop_self=False)
            return Ref("instance", target.obj)
        if target.kind == "callable":
            self.check_arguments(node, target.obj, drop_self=target.drop_self)
            return _from_hint(_hints(target.obj).get("return"))
        return None

    def check_arguments(self, node: ast.Call, func, *, drop_self: bool) -> None:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            return
        if drop_self:
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        try:
            sig.bind(*range(len(node.args)), **{k.arg: None for k in node.keywords})
        except TypeError as exc:
            self.problem(node, f"{ast.unparse(node.func)}(...) does not match "
                               f"{getattr(func, '__qualname__', func)}{sig}: {exc}")


_MISSING = object()


def _classify(obj) -> Ref | None:
    if isinstance(obj, types.ModuleType):
        return Ref("module", obj)
    if isinstance(obj, type):
        return Ref("class", obj)
    if callable(obj):
        return Ref("callable", obj)
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_uses_only_names_attributes_and_arguments_the_package_has(path):
    problems = ApiChecker(path.name).run(_code_cells(path))
    assert not problems, "\n".join(problems)


def test_the_api_check_catches_drift():
    checker = ApiChecker("drift.ipynb")
    problems = checker.run([(
        "from smartos_lab.notebook import Exercise, NoSuchHelper\n"
        "from smartos_lab.lab import Lab\n"
        "lab = Lab.up('x', imag='typo')\n"
        "lab.zfs.no_such_method()\n"
        "lab.no_such_attribute\n"
        "r = lab.sh('uname -v')\n"
        "r.stdout_text\n"
        "result = lab.dtrace.run('x', duration=1)\n"
        "agg = result.aggregation()\n"
        "agg.top(3, 4)\n"
        "for h in agg.histograms:\n"
        "    h.totl\n"),
    ])
    expected = ["has no NoSuchHelper", "unexpected keyword argument 'imag'",
                "Zfs has no attribute no_such_method", "Lab has no attribute no_such_attribute",
                "CommandResult has no attribute stdout_text", "too many positional arguments",
                "Histogram has no attribute totl"]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert len(problems) == len(expected), problems


def test_the_api_check_follows_what_a_magic_cells_out_variable_holds(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook
    path = tmp_path / "out.ipynb"
    nbformat.write(new_notebook(cells=[
        new_code_cell("%%dtrace --for 5s --out d\nBEGIN { exit(0); }"), new_code_cell("d.no_such_field"),
        new_code_cell("%%zone web01 --out r\nzonename"), new_code_cell("r.stdout_text")]), str(path))
    problems = ApiChecker(path.name).run(_code_cells(path))
    assert any("DTraceResult has no attribute no_such_field" in p for p in problems), problems
    assert any("CommandResult has no attribute stdout_text" in p for p in problems), problems


# ============================================================================ running 00


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_start_here_runs_for_real_without_a_smartos_image(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.delenv("SMARTOS_LAB_IMAGE", raising=False)
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path / "cache"))
    nb = _read(NOTEBOOK_DIR / "00-start-here.ipynb")
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    text = "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.outputs)
    assert "smartos-lab:" in text                      # the doctor's verdict
    assert "accelerator:" in text and "KVM brand:" in text
    assert "no images cached yet" in text and "No SmartOS image for this notebook" in text
    assert "download skipped" in text
    assert not [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
                if out.output_type == "error"]
