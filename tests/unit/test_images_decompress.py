"""gunzip(): streaming, sparse, atomic; truncated input leaves nothing behind."""
import gzip
import os

import pytest

from smartos_lab.errors import ImageError
from smartos_lab.images.decompress import gunzip


def sample() -> bytes:
    # mostly zeros, like a USB image: 8 MiB of zeros between small data runs
    return os.urandom(100_000) + bytes(8 << 20) + b"end" + bytes(70_000)


def test_round_trip_is_exact_and_zero_runs_become_holes(tmp_path):
    data = sample()
    src = tmp_path / "a.img.gz"
    src.write_bytes(gzip.compress(data, 1))
    out = gunzip(src, tmp_path / "a.img")
    assert out.read_bytes() == data
    assert out.stat().st_size == len(data)
    assert out.stat().st_blocks * 512 < 2 << 20    # the 8 MiB of zeros take no space
    assert sorted(os.listdir(tmp_path)) == ["a.img", "a.img.gz"]


def test_truncated_gzip_raises_and_leaves_no_half_file(tmp_path):
    blob = gzip.compress(sample(), 1)
    src = tmp_path / "t.img.gz"
    src.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        gunzip(src, tmp_path / "t.img")
    assert os.listdir(tmp_path) == ["t.img.gz"]


def test_corrupt_crc_is_detected(tmp_path):
    blob = bytearray(gzip.compress(b"hello" * 1000))
    blob[-8] ^= 0xFF                                   # CRC32 in the gzip trailer
    src = tmp_path / "c.gz"
    src.write_bytes(bytes(blob))
    with pytest.raises(ImageError, match="CRC"):
        gunzip(src, tmp_path / "c")
    assert os.listdir(tmp_path) == ["c.gz"]


def test_an_existing_destination_is_kept_until_the_new_one_is_complete(tmp_path):
    (tmp_path / "d.img").write_bytes(b"old")
    blob = gzip.compress(b"new" * 100000)
    (tmp_path / "d.img.gz").write_bytes(blob[:100])
    with pytest.raises(ImageError):
        gunzip(tmp_path / "d.img.gz", tmp_path / "d.img")
    assert (tmp_path / "d.img").read_bytes() == b"old"
