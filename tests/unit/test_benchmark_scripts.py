"""The benchmark scripts only use names the package has (CI does not run them: they boot guests).

A name that moved (e.g. a private helper folded into another module) must fail here, not
when someone next runs the benchmark.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.py"))


def package_modules_bound(tree: ast.Module) -> dict[str, object]:
    """Names the script binds to smartos_lab modules (``from smartos_lab import x``, ``import
    smartos_lab.x as y``)."""
    bound: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("smartos_lab"):
            parent = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(parent, alias.name, None)
                if value is None:
                    try:
                        value = importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        pytest.fail(f"{node.module} has no {alias.name!r}")
                if isinstance(value, type(importlib)):
                    bound[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("smartos_lab") and alias.asname:
                    bound[alias.asname] = importlib.import_module(alias.name)
    return bound


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_every_package_attribute_a_benchmark_uses_exists(script):
    tree = ast.parse(script.read_text(), filename=str(script))
    modules = package_modules_bound(tree)
    missing = sorted(f"{node.value.id}.{node.attr} (line {node.lineno})"
                     for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                     and node.value.id in modules and not hasattr(modules[node.value.id], node.attr))
    assert not missing, f"{script.name} uses names the package does not have: {missing}"


def test_the_check_sees_the_benchmarks():
    assert {"bench_lab.py", "bench_seats.py", "run_all.py"} <= {p.name for p in BENCHMARKS}
