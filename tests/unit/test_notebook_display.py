"""Which progress display ``progress=True`` gets: the notebook widget in a Jupyter kernel only.

Each case runs in a fresh interpreter (what is imported is the point).  The
"kernel" is a real IPython InteractiveShell given a ``kernel`` attribute, as
ipykernel's shell has; ipykernel itself is imported as a kernel process would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


REPORT = (
    "import json, sys\n"
    "from smartos_lab import steps\n"
    "before = sorted(m for m in sys.modules if m.startswith(('smartos_lab.notebook', 'ipywidgets')))\n"
    "shown = steps.default_display()\n"
    "print(json.dumps({'before': before, 'display': type(shown).__name__,\n"
    "                  'module': getattr(shown, '__module__', '')}))\n")


def test_plain_python_gets_printed_lines_and_imports_no_ipython():
    found = _python("import sys, smartos_lab\n"
                    "assert 'IPython' not in sys.modules and 'ipywidgets' not in sys.modules\n"
                    + REPORT)
    assert found["display"] == "function" and found["module"] == "smartos_lab.steps"


def test_ipython_without_a_kernel_gets_printed_lines():
    found = _python("from IPython.core.interactiveshell import InteractiveShell\n"
                    "InteractiveShell.instance()\n"
                    "import smartos_lab\n" + REPORT)
    assert found["module"] == "smartos_lab.steps"


def test_a_kernel_gets_the_widget_and_the_notebook_layer_is_imported_only_when_used():
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    found = _python("import ipykernel\n"
                    "from IPython.core.interactiveshell import InteractiveShell\n"
                    "InteractiveShell.instance().kernel = object()\n"
                    "import smartos_lab\n" + REPORT)
    assert found["before"] == []
    assert found["display"] == "StepDisplay" and found["module"] == "smartos_lab.notebook.progress"


def test_importing_the_notebook_layer_in_a_kernel_installs_its_display():
    pytest.importorskip("ipywidgets")
    found = _python("from IPython.core.interactiveshell import InteractiveShell\n"
                    "InteractiveShell.instance().kernel = object()\n"
                    "import smartos_lab.notebook\n" + REPORT)
    assert found["display"] == "StepDisplay"
