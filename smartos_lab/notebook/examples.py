"""Real command output as published in illumos/SmartOS documentation, shipped with the package.

The files live in ``smartos_lab/examples/<family>/<name>.txt`` (package data,
read with :mod:`importlib.resources`, so they are there after a plain
``pip install``).  Each starts with ``# source:`` / ``# command:`` (and
optional ``# note:``) lines naming where it was published.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

EXAMPLES = "examples"


@dataclass(frozen=True)
class PublishedExample:
    """Real command output as published in illumos/SmartOS documentation."""

    source: str             # where it was published
    command: str            # the command that printed it
    text: str               # the output, verbatim

    def __str__(self) -> str:
        return f"$ {self.command}\n{self.text}\n(source: {self.source})"


def example_names() -> list[str]:
    """Every published example shipped, as ``family/name.txt``."""
    root = resources.files("smartos_lab") / EXAMPLES
    if not root.is_dir():
        return []
    return sorted(f"{family.name}/{item.name}" for family in root.iterdir() if family.is_dir()
                  for item in family.iterdir() if item.name.endswith(".txt"))


def published_example(relpath: str) -> PublishedExample:
    """The published example ``relpath`` (e.g. ``"dtrace/guide_quantize_writetime.txt"``)."""
    resource = resources.files("smartos_lab") / EXAMPLES
    for part in relpath.split("/"):
        resource = resource / part
    if ".." in relpath.split("/") or not resource.is_file():
        raise FileNotFoundError(f"no published example {relpath!r}; the package ships: "
                                + (", ".join(example_names()) or "none (a broken install?)"))
    lines = resource.read_text(encoding="utf-8").splitlines(keepends=True)
    meta: dict[str, str] = {}
    while lines and lines[0].startswith("# ") and ":" in lines[0]:
        key, _, value = lines.pop(0)[2:].partition(":")
        meta.setdefault(key.strip(), value.strip())
    return PublishedExample(meta.get("source", "?"), meta.get("command", "?"), "".join(lines))
