"""Every ``smartos-lab ...`` command line the docs show is one the CLI accepts.

The markdown files (and the notebooks' cells: markdown, and ``!`` shell escapes) are scanned for command
lines in code blocks and in inline code; each one is parsed with the real
parser (``smartos_lab.cli.build_parser()``), after placeholders such as NAME,
FILE, UUID or ``<TS>`` are replaced by sample values.  A synopsis with optional
parts (``[--memory 4G]``) is checked with them left out and with them given
(the first of ``a | b`` alternatives).  The parser is built fresh, so a new
subcommand is checked as soon as the docs show it.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from smartos_lab.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "build", "dist", ".pytest_cache", ".ipynb_checkpoints"}

# placeholder word -> sample value (whole shell words only)
PLACEHOLDERS = {
    "NAME": "lab1", "CKPT": "before-test", "CHECKPOINT": "before-test", "N": "2", "CMD": "uname",
    "FILE": "/tmp/smartos.img.gz", "F": "/tmp/smartos.img.gz", "TS": "20250724T001011Z",
    "UUID": "2f1dc911-6401-4fa4-8e9d-67ea2e39c271", "MANIFEST": "/tmp/manifest.json",
    "RELEASE": "20250724T001011Z", "PATH": "/tmp/smartos.img.gz", "DIR": "/tmp/dir",
}
# placeholders inside words, e.g. platform-<TS>.tgz or <uuid>/manifest.json
INLINE_PLACEHOLDERS = {"<TS>": "20250724T001011Z", "<uuid>": "2f1dc911-6401-4fa4-8e9d-67ea2e39c271",
                       "<UUID>": "2f1dc911-6401-4fa4-8e9d-67ea2e39c271", "<name>": "lab1"}

_COMMAND = re.compile(r"(?:^|(?<=[\s;&(|`]))smartos-lab(?=\s|$)")
_INLINE_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class DocCommand:
    file: str
    line: int
    text: str          # the command as the docs show it, from "smartos-lab" on

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def _commands_in(fragment: str) -> list[str]:
    """The ``smartos-lab ...`` commands in a shell fragment: a comment is cut
    off, and each part between ``&&``, ``||``, ``;`` and ``|`` is one command."""
    fragment = re.sub(r"(^|\s)#.*", "", fragment)
    commands = []
    for part in re.split(r"&&|\|\||;|\|", fragment):
        match = _COMMAND.search(part)
        if match:
            command = re.split(r"\s[12]?>|`", part[match.start():])[0]
            commands.append(" ".join(command.split()).rstrip(".,:"))
    return commands


def commands_in_markdown(text: str, file: str, *, code: bool = False) -> list[DocCommand]:
    """Command lines in fenced code blocks (one per line, ``\\`` continuations
    joined) and in inline code spans; ``code``: all of ``text`` is a code block."""
    found: list[DocCommand] = []
    in_block = code
    pending = ""
    pending_line = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            if pending:
                line, number = pending + " " + line.strip(), pending_line
                pending = ""
            if line.rstrip().endswith("\\"):
                pending, pending_line = line.rstrip()[:-1], number
                continue
            stripped = line.strip()
            if stripped.startswith("#"):
                continue
            found += [DocCommand(file, number, c) for c in _commands_in(stripped)]
        else:
            for span in _INLINE_CODE.findall(line):
                found += [DocCommand(file, number, c) for c in _commands_in(span)]
    return found


def markdown_sources(root: Path = REPO) -> list[tuple[str, str, bool]]:
    """(relative file name, text, whether it is all code) for every .md file and
    every notebook cell (of a code cell, its ``!`` shell escapes)."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]      # never walk into a venv or .git
        files += [Path(folder, n) for n in names if n.endswith((".md", ".ipynb"))]
    sources: list[tuple[str, str, bool]] = []
    for path in sorted(files, key=lambda p: (p.suffix, p)):
        name = str(path.relative_to(root))
        if path.suffix == ".md":
            sources.append((name, path.read_text(encoding="utf-8"), False))
        else:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            for i, cell in enumerate(cells):
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else source
                code = cell.get("cell_type") == "code"
                if code:                                  # its shell escapes: !smartos-lab ...
                    text = "\n".join(line.lstrip()[1:] if line.lstrip().startswith("!") else ""
                                     for line in text.splitlines())
                sources.append((f"{name} (cell {i})", text, code))
    return sources


def doc_commands(root: Path = REPO) -> list[DocCommand]:
    return [c for name, text, code in markdown_sources(root)
            for c in commands_in_markdown(text, name, code=code)]


def _substitute(word: str) -> str:
    if word in PLACEHOLDERS:
        return PLACEHOLDERS[word]
    for placeholder, value in INLINE_PLACEHOLDERS.items():
        word = word.replace(placeholder, value)
    return word


def argv_variants(command: str) -> list[list[str]]:
    """The argument lists a shown command stands for: without its ``[optional]``
    parts and with all of them (first alternative of ``a | b``)."""
    words = shlex.split(command)
    words = words[words.index("smartos-lab") + 1:]   # drop VAR=value assignments and the name
    if "[" not in command:
        return [[_substitute(w) for w in words]]
    bare: list[str] = []
    full: list[str] = []
    depth = 0
    skipping_alternative = False
    for word in words:
        opens, closes = word.count("["), word.count("]")
        word = word.replace("[", "").replace("]", "")
        depth += opens
        if depth == 0:
            bare.append(word)
            full.append(word)
        elif word == "|":
            skipping_alternative = True
        elif word and not skipping_alternative:
            full.append(word)
        depth -= closes
        if depth == 0:
            skipping_alternative = False
    return [[_substitute(w) for w in bare], [_substitute(w) for w in full]]


def parse_error(argv: list[str]) -> str | None:
    """argparse's message when the CLI rejects ``argv``, else None."""
    parser = build_parser()
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue() else f"exit {exc.code}"
    return None


# ----------------------------------------------------------------------------- the specs

def test_every_command_line_in_the_docs_is_accepted_by_the_cli():
    commands = doc_commands()
    failures = [f"{c.where()}\n    argv {argv}: {error}"
                for c in commands for argv in argv_variants(c.text)
                if (error := parse_error(argv))]
    assert not failures, "commands shown in the docs that the CLI rejects:\n" + "\n".join(failures)


def test_the_scan_finds_the_commands_the_docs_are_known_to_show():
    shown = {(c.file, c.text) for c in doc_commands()}
    assert ("README.md", "smartos-lab images fetch [latest]") in shown
    assert any(f == "kernel/README.md" and t.startswith("smartos-lab up ") for f, t in shown)
    assert any(f == "vm-images/README.md" and "images zone fetch" in t for f, t in shown)
    assert len(shown) >= 20


def test_a_rejected_command_is_reported_with_its_file_and_line():
    text = "intro\n\n```\nsmartos-lab up --name build   # old syntax\n```\n\nor `smartos-lab ps --all`.\n"
    commands = commands_in_markdown(text, "x.md")
    assert [(c.line, c.text) for c in commands] == [(4, "smartos-lab up --name build"),
                                                     (7, "smartos-lab ps --all")]
    assert "unrecognized arguments: --name" in parse_error(argv_variants(commands[0].text)[0])
    assert parse_error(argv_variants(commands[1].text)[0]) is None


@pytest.mark.parametrize(("shown", "variants"), [
    ("smartos-lab up [NAME] [--image F | --platform F] [--cpus 2]",
     [["up"], ["up", "lab1", "--image", "/tmp/smartos.img.gz", "--cpus", "2"]]),
    ("SMARTOS_LAB_MIRROR=http://x/ smartos-lab images zone fetch <uuid>",
     [["images", "zone", "fetch", "2f1dc911-6401-4fa4-8e9d-67ea2e39c271"]]),
    ("smartos-lab up mykernel --platform output/platform-<TS>/",
     [["up", "mykernel", "--platform", "output/platform-20250724T001011Z/"]]),
])
def test_synopses_and_placeholders_become_sample_argument_lists(shown, variants):
    assert argv_variants(shown) == variants


def test_continuations_comments_and_shell_separators_are_not_part_of_a_command():
    text = ("```sh\n$ smartos-lab up lab1 \\\n    --memory 8G  # comment\n"
            "smartos-lab down lab1 && smartos-lab up lab1\n```\n")
    assert [(c.line, c.text) for c in commands_in_markdown(text, "x.md")] == [
        (2, "smartos-lab up lab1 --memory 8G"), (4, "smartos-lab down lab1"), (4, "smartos-lab up lab1")]


def test_notebook_cells_are_scanned_and_virtualenvs_are_not(tmp_path):
    cells = [{"cell_type": "markdown", "source": ["Stop it: `smartos-lab down NAME`."]},
             {"cell_type": "code", "source": ["x = 1\n", "!smartos-lab ps --all\n"]}]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells}))
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "README.md").write_text("`smartos-lab bogus`\n")
    assert [(c.file, c.line, c.text) for c in doc_commands(tmp_path)] == [
        ("nb.ipynb (cell 0)", 1, "smartos-lab down NAME"), ("nb.ipynb (cell 1)", 2, "smartos-lab ps --all")]
