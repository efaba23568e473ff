"""The package as a user gets it: a wheel installed into a fresh venv, not this checkout.

The notebooks show published examples (``published_example("...")``); they
must come with the wheel as package data.  The wheel is built from a copy of
the sources (so the checkout gets no build/ or egg-info) and installed
without its dependencies into a venv that sees the system site-packages (for
them, offline); the test checks the module really comes from the venv.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"""published_example\(\s*["']([^"']+)["']\s*\)""")


def _examples_named_in_notebooks() -> list[str]:
    names = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                names.update(CALL.findall("".join(cell["source"])))
    return sorted(names)


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_notebooks_name_published_examples():
    assert len(_examples_named_in_notebooks()) >= 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_example_a_notebook_names_comes_with_the_installed_wheel(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "smartos_lab", source / "smartos_lab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
         cwd=tmp_path)
    (wheel,) = wheels.glob("smartos_lab-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
         cwd=tmp_path)
    shutil.rmtree(source)               # nothing left to import by accident

    names = _examples_named_in_notebooks()
    script = (
        "import json, sys, smartos_lab\n"
        "from smartos_lab.notebook import published_example\n"
        "out = {'file': smartos_lab.__file__, 'examples': {}}\n"
        "for name in sys.argv[1:]:\n"
        "    e = published_example(name)\n"
        "    out['examples'][name] = [e.source, e.command, len(e.text)]\n"
        "print(json.dumps(out))\n")
    # -I: no PYTHONPATH, no current directory, no user site: only what the venv sees
    result = _run([str(python), "-I", "-c", script, *names], cwd=tmp_path)
    found = json.loads(result.stdout)
    site = Path(found["file"]).resolve()
    assert site.is_relative_to(venv.resolve()), f"imported from {site}, not the venv"
    assert "site-packages" in site.parts
    assert sorted(found["examples"]) == names
    for name, (source_line, command, length) in found["examples"].items():
        assert source_line.startswith("github:") and command != "?" and length > 50, name
