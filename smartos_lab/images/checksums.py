"""Published checksums: parse ``md5sums.txt`` / ``sha256sums.txt`` and hash files.

The SmartOS release tooling (smartos-live ``tools/generate-sums``) writes one
``<hash> <filename>`` line per file.  We also accept the coreutils forms
``<hash>  <filename>`` and ``<hash> *<filename>`` so a hand-made file works.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ImageError

if TYPE_CHECKING:
    from .progress import Progress

HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64}
_LINE = re.compile(r"^(?P<hex>[0-9a-fA-F]+)\s+\*?(?P<name>\S.*?)\s*$")


@dataclass(frozen=True)
class Checksum:
    """A digest a file must have: ``Checksum("sha256", "ab12...")``."""

    algo: str
    hex: str

    def __post_init__(self):
        if self.algo not in HEX_LENGTH:
            raise ImageError(f"unsupported checksum algorithm {self.algo!r} "
                             f"(expected one of {', '.join(HEX_LENGTH)})")
        if not re.fullmatch(f"[0-9a-fA-F]{{{HEX_LENGTH[self.algo]}}}", self.hex):
            raise ImageError(f"not a {self.algo} digest: {self.hex!r}")
        object.__setattr__(self, "hex", self.hex.lower())

    def matches(self, actual_hex: str) -> bool:
        return hmac.compare_digest(self.hex, actual_hex.lower())

    def __str__(self) -> str:
        return f"{self.algo}:{self.hex}"


def parse_sums(text: str, algo: str) -> dict[str, Checksum]:
    """Map file name -> Checksum for every line of a ``<algo>sums.txt`` file.

    Blank lines and ``#`` comments are skipped; a line that is not
    ``<hash> <name>`` with a hash of the right length raises ImageError
    naming the line.
    """
    sums: dict[str, Checksum] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line.strip())
        if not m or len(m["hex"]) != HEX_LENGTH[algo]:
            raise ImageError(f"{algo}sums.txt line {lineno} is not '<{algo} hash> <file name>': {line!r}")
        sums[Path(m["name"]).name] = Checksum(algo, m["hex"])
    return sums


def hash_file(path: Path, algo: str, *, progress: Progress | None = None,
              chunk_size: int = 1 << 20, label: str = "verifying") -> str:
    """Hex digest of a file, read in chunks (reports progress as ``"<label> <algo> of <name>"``)."""
    h = hashlib.new(algo)
    total = Path(path).stat().st_size
    done = 0
    if progress:
        progress.start(f"{label} {algo} of {Path(path).name}", total)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress.update(done)
    if progress:
        progress.finish()
    return h.hexdigest()
