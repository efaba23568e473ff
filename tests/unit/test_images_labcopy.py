"""copy_for_lab(): a per-lab copy of a big sparse image, original untouched."""
import hashlib
import os

import pytest

from smartos_lab.errors import ImageError
from smartos_lab.images.labcopy import copy_for_lab


def make_sparse(path, size=64 << 20):
    with open(path, "wb") as f:
        f.write(b"head" * 1000)
        f.seek(32 << 20)
        f.write(b"middle")
        f.truncate(size)
    return path


def test_copy_has_the_same_bytes_and_stays_sparse(tmp_path):
    src = make_sparse(tmp_path / "src.img")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dst = copy_for_lab(src, tmp_path / "lab" / "disk.img")
    assert dst.stat().st_size == src.stat().st_size
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == digest
    assert dst.stat().st_blocks * 512 < 4 << 20
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_writing_the_copy_does_not_change_the_original(tmp_path):
    src = make_sparse(tmp_path / "src.img")
    before = src.read_bytes()
    dst = copy_for_lab(src, tmp_path / "copy.img")
    with open(dst, "r+b") as f:
        f.write(b"CHANGED")
    assert src.read_bytes() == before


def test_an_existing_destination_is_not_overwritten_unless_asked(tmp_path):
    src = make_sparse(tmp_path / "src.img", 1 << 20)
    (tmp_path / "dst.img").write_bytes(b"mine")
    with pytest.raises(ImageError, match="already exists"):
        copy_for_lab(src, tmp_path / "dst.img")
    assert (tmp_path / "dst.img").read_bytes() == b"mine"
    copy_for_lab(src, tmp_path / "dst.img", overwrite=True)
    assert (tmp_path / "dst.img").stat().st_size == 1 << 20


def test_a_missing_source_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="not a file"):
        copy_for_lab(tmp_path / "nope", tmp_path / "dst")
    assert not os.path.exists(tmp_path / "dst")
