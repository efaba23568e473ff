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
