"""What the notebooks say about SmartOS matches the real sources (review findings of issue 7)."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def cells(name: str, kind: str) -> list[str]:
    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == kind]


def test_notebook_01_cites_the_file_that_prints_the_kernel_banner():
    """illumos usr/src/uts/common/os/logsubr.c, log_init: printf("\\rSunOS Release %s Version %s
    %u-bit\\n", ...); there is no log.c printing it."""
    rows = [line for text in cells("01-boot-smartos.ipynb", "markdown")
            for line in text.splitlines() if "SunOS Release" in line]
    assert rows and all("usr/src/uts/common/os/logsubr.c" in row for row in rows), rows


def test_notebook_02_says_the_file_vdevs_use_the_zones_pool():
    """/var is the dataset zones/var: smartos_prompt_config.sh setup_datasets creates
    ${SYS_ZPOOL}/var, fs-joyent mounts it on /var."""
    text = "\n".join(cells("02-zfs.ipynb", "markdown"))
    assert "never touched" not in text and "untouched" not in text
    assert "`zones/var`" in text


def test_notebook_02_sizes_the_file_vdevs_from_the_free_space_of_zones_var():
    code = "\n".join(cells("02-zfs.ipynb", "code"))
    assert 'lab.zfs.get("zones/var", "available")' in code
    assert "mkfile 256m" not in code and "mkfile {size_mib}m" in code


def test_notebook_02_makes_only_the_files_its_mirror_uses():
    (cell,) = [c for c in cells("02-zfs.ipynb", "code") if 'create_pool("tank"' in c]
    tree = ast.parse(cell)
    made = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", "") == "files")
    count = next(n for n in ast.walk(made) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", "") == "range").args[0].value
    pool = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "create_pool")
    assert count == 2 and ast.unparse(pool.args[1]) == "files"
    prose = "\n".join(cells("02-zfs.ipynb", "markdown"))
    assert "four\n256 MB files" not in prose and "two\nfiles (`mkfile` makes them)" in prose
