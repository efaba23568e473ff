"""The package's layers only use the layers below them (docs/ARCHITECTURE.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "smartos_lab"
BASE = {"atomic", "errors", "paths", "steps"}
ALLOWED = {
    "images": BASE,
    "machine": BASE,
    "parsers": BASE,
    "smartos": BASE | {"images", "machine"},
    "toolkits": BASE | {"machine", "parsers"},
}


def _internal_imports(path: Path) -> set[str]:
    """Top-level smartos_lab modules/packages that ``path`` imports (relative or absolute)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 2:
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and (node.module or "").startswith("smartos_lab."):
                found.add(node.module.split(".")[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer):
    bad = {f"{path.name}: {name}" for path in sorted((PACKAGE / layer).glob("*.py"))
           for name in _internal_imports(path) - ALLOWED[layer]}
    assert not bad, f"{layer} reaches up to: {sorted(bad)}"


# --- the notebook layer: the top of the stack ---------------------------------------------
NOTEBOOK_IMPORTERS = {"cli.py", "__init__.py"}      # besides the notebook package itself


def _imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved), lazy ones too."""
    package = ["smartos_lab", *path.relative_to(root).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_cli_and_the_package_init_import_the_notebook_layer():
    notebook = PACKAGE / "notebook"
    bad = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(notebook) or str(path.relative_to(PACKAGE)) in NOTEBOOK_IMPORTERS:
            continue
        for module in _imported_modules(path):
            if module == "smartos_lab.notebook" or module.startswith("smartos_lab.notebook."):
                bad.add(f"{path.relative_to(PACKAGE)}: {module}")
    assert not bad, f"only the CLI and smartos_lab/__init__.py may import the notebook layer: {sorted(bad)}"


def test_the_import_resolver_sees_relative_and_lazy_imports(tmp_path):
    fake = tmp_path / "smartos_lab"
    (fake / "toolkits").mkdir(parents=True)
    module = fake / "toolkits" / "x.py"
    module.write_text("def f():\n    from ..notebook import table\n    from . import zfs\n")
    found = _imported_modules(module, fake)
    assert {"smartos_lab.notebook", "smartos_lab.notebook.table", "smartos_lab.toolkits.zfs"} <= found
