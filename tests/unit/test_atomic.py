"""Atomic writes: the old file or the whole new one, never a part; no temporary left behind."""
from __future__ import annotations

import json
import os
import stat

import pytest

from smartos_lab import atomic
from smartos_lab.atomic import open_atomic, replace_durably, staged_dir, write_atomic


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class Boom(Exception):
    pass


def test_write_replaces_the_whole_file_and_leaves_only_it(tmp_path):
    target = tmp_path / "lab.json"
    target.write_text("old")
    assert write_atomic(target, '{"new": "✓"}\n') == target
    assert target.read_text(encoding="utf-8") == '{"new": "✓"}\n'
    assert os.listdir(tmp_path) == ["lab.json"]
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"


@pytest.mark.parametrize("interrupt", [Boom("disk on fire"), KeyboardInterrupt()])
def test_a_failure_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, interrupt):
    target = tmp_path / "image.img"
    target.write_bytes(b"old contents")
    with pytest.raises(type(interrupt)):
        with open_atomic(target) as f:
            f.write(b"half of the new")
            f.flush()
            assert len(os.listdir(tmp_path)) == 2          # the temporary is there, hidden
            assert all(n == "image.img" or n.startswith(".image.img.")
                       for n in os.listdir(tmp_path))
            raise interrupt
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["image.img"]


def test_a_failure_inside_write_atomic_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "machine.json"
    target.write_text("old")

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["machine.json"]


def test_a_failing_rename_removes_the_temporary(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()                                 # a directory cannot be replaced by a file
    with pytest.raises(OSError):
        write_atomic(target, "data")
    assert os.listdir(tmp_path) == ["taken"]


def test_nothing_is_created_when_the_first_write_fails(tmp_path):
    with pytest.raises(Boom):
        with open_atomic(tmp_path / "new.bin"):
            raise Boom()
    assert os.listdir(tmp_path) == []


def test_a_secret_mode_is_set_before_any_data_lands(tmp_path):
    target = tmp_path / "root.password"
    with open_atomic(target, mode=0o600) as f:
        assert mode_of(f.fileno()) == 0o600          # the temporary, still empty
        f.write(b"s3cret")
    assert mode_of(target) == 0o600 and target.read_bytes() == b"s3cret"


def test_the_mode_is_exact_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "shared", "x", mode=0o644)
        write_atomic(tmp_path / "plain", "x")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "shared") == 0o644
    assert mode_of(tmp_path / "plain") == 0o600        # no mode: what open() would give


def test_without_a_mode_a_new_file_gets_what_open_gives(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a", "x")
        (tmp_path / "b").write_text("x")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "a") == mode_of(tmp_path / "b") == 0o644


def test_a_secret_replacing_an_open_file_is_never_readable_by_others(tmp_path):
    target = tmp_path / "key"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_atomic(target, "new", mode=0o600)
    assert mode_of(target) == 0o600


def test_the_stream_is_raw_with_buffering_0_so_holes_can_be_made(tmp_path):
    target = tmp_path / "sparse.img"
    with open_atomic(target, buffering=0) as f:
        assert f.write(b"head") == 4
        f.seek(1 << 20, os.SEEK_CUR)
        f.write(b"tail")
    data = target.read_bytes()
    assert len(data) == 4 + (1 << 20) + 4 and data[4:-4] == bytes(1 << 20)


def test_replace_durably_moves_a_finished_file_into_place(tmp_path):
    part = tmp_path / "img.part"
    part.write_text(json.dumps({"whole": True}))
    (tmp_path / "img").write_text("old")
    assert replace_durably(part, tmp_path / "img") == tmp_path / "img"
    assert json.loads((tmp_path / "img").read_text()) == {"whole": True}
    assert os.listdir(tmp_path) == ["img"]


def test_a_very_long_name_still_gets_a_temporary(tmp_path):
    target = tmp_path / ("n" * 250)
    write_atomic(target, "x")
    assert target.read_text() == "x"


def test_a_staged_directory_appears_whole(tmp_path):
    target = tmp_path / "platform"
    with staged_dir(target) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".platform.")
        (staging / "i86pc").mkdir()
        (staging / "i86pc" / "unix").write_bytes(b"\x7fELF")
        assert not target.exists()
    assert (target / "i86pc" / "unix").read_bytes() == b"\x7fELF"
    assert os.listdir(tmp_path) == ["platform"]


@pytest.mark.parametrize("interrupt", [Boom("no boot_archive"), KeyboardInterrupt()])
def test_a_failed_staged_directory_leaves_nothing(tmp_path, interrupt):
    with pytest.raises(type(interrupt)):
        with staged_dir(tmp_path / "platform") as staging:
            (staging / "unix").write_bytes(b"half")
            raise interrupt
    assert os.listdir(tmp_path) == []


def test_a_staged_directory_never_replaces_an_existing_one(tmp_path):
    (tmp_path / "direct" / "platform").mkdir(parents=True)
    with pytest.raises(OSError):
        with staged_dir(tmp_path / "direct") as staging:
            (staging / "platform").mkdir()
    assert os.listdir(tmp_path) == ["direct"] and os.listdir(tmp_path / "direct") == ["platform"]
