"""ZoneImageCache.fetch against a real HTTP server on 127.0.0.1 that serves the IMGAPI
paths ``/images/<uuid>`` and ``/images/<uuid>/file`` (tests/images_support/http_server.py,
with injected faults).  The manifest is the real GetImage example from the sdc-imgapi docs
with files[0] describing the random test bytes served as the file (test data, not an
image).  Nothing here talks to images.smartos.org.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from smartos_lab.errors import ChecksumMismatch, DownloadError
from smartos_lab.images.zone_images import OFFLINE_HINT, ZoneImageCache
from tests.images_support.http_server import FaultyServer
from tests.images_support.net import unanswered_port  # noqa: F401  (fixture)
from tests.unit._parser_fixtures import fixture

UUID = "01b2c898-945f-11e1-a523-af1afbe22822"
DATA = os.urandom(2 << 20) + bytes(1 << 20)           # 3 MiB of test bytes


def manifest_for(data: bytes, **file_changes) -> str:
    manifest = json.loads(fixture("imgapi/get_image_smartos_1.6.3.txt"))
    manifest["files"][0].update(sha1=hashlib.sha1(data).hexdigest(), size=len(data), **file_changes)
    return json.dumps(manifest, indent=2)


class Recorder:
    def __init__(self):
        self.labels = []

    def start(self, label, total): self.labels.append((label, total))
    def update(self, done): pass
    def finish(self): pass


@pytest.fixture
def server():
    with FaultyServer() as s:
        yield s


def test_fetch_gets_manifest_and_file_checks_sha1_and_caches_the_pair(server, tmp_path):
    text = manifest_for(DATA)
    server.serve(f"/images/{UUID}", text)
    server.serve(f"/images/{UUID}/file", DATA)
    cache = ZoneImageCache(tmp_path, source=server.base)
    progress = Recorder()
    image = cache.fetch(UUID, progress=progress)
    assert image.file_path == tmp_path / UUID / f"{UUID}.zfs.bz2"
    assert image.file_path.read_bytes() == DATA and image.verified and image.size == len(DATA)
    assert image.manifest_path.read_text() == text                     # as served
    assert ("downloading smartos 1.6.3 (" + f"{UUID}.zfs.bz2)", len(DATA)) in progress.labels
    assert ("verifying sha1 of " + f"{UUID}.zfs.bz2.part", len(DATA)) in progress.labels
    assert cache.list() == [image]
    served = len(server.requests)
    assert cache.fetch(UUID) == image and len(server.requests) == served   # no second download


def test_a_file_whose_sha1_differs_from_the_manifest_leaves_nothing(server, tmp_path):
    server.serve(f"/images/{UUID}", manifest_for(DATA))
    server.serve(f"/images/{UUID}/file", b"X" + DATA[1:])
    cache = ZoneImageCache(tmp_path, source=server.base)
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        cache.fetch(UUID)
    assert cache.list() == [] and cache.get(UUID) is None
    assert not (tmp_path / UUID).exists() and not (tmp_path / ".incoming" / UUID).exists()


def test_a_broken_transfer_is_resumed_and_still_verified(server, tmp_path):
    server.serve(f"/images/{UUID}", manifest_for(DATA))
    server.serve(f"/images/{UUID}/file", DATA, cut_after=1_000_000)
    image = ZoneImageCache(tmp_path, source=server.base).fetch(UUID)
    assert image.file_path.read_bytes() == DATA
    assert server.ranges(f"/images/{UUID}/file") == [None, "bytes=1000000-"]


def test_an_unknown_image_is_a_404_that_names_the_uuid_and_leaves_nothing(server, tmp_path):
    cache = ZoneImageCache(tmp_path, source=server.base)
    with pytest.raises(DownloadError, match=f"no image {UUID} on {server.base} .*HTTP 404") as err:
        cache.fetch(UUID)
    assert err.value.http_status == 404
    assert cache.list() == [] and not (tmp_path / UUID).exists()
    assert [r.path for r in server.requests] == [f"/images/{UUID}"]


def test_a_missing_file_after_a_good_manifest_leaves_nothing(server, tmp_path):
    server.serve(f"/images/{UUID}", manifest_for(DATA))
    cache = ZoneImageCache(tmp_path, source=server.base)
    with pytest.raises(DownloadError, match="HTTP 404"):
        cache.fetch(UUID)
    assert not (tmp_path / UUID).exists() and not (tmp_path / ".incoming" / UUID).exists()


def test_a_server_that_is_not_an_image_server_is_named(server, tmp_path):
    server.serve(f"/images/{UUID}", "<html>hello</html>")
    with pytest.raises(DownloadError, match="is not an image manifest.*an image server"):
        ZoneImageCache(tmp_path, source=server.base).fetch(UUID)


def test_an_unreachable_server_fails_within_seconds_with_the_offline_hint(unanswered_port,  # noqa: F811
                                                                          tmp_path):
    cache = ZoneImageCache(tmp_path, source=f"http://127.0.0.1:{unanswered_port}")
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="cannot reach .* timed out") as err:
        cache.fetch(UUID)
    assert time.monotonic() - t0 < 8          # the default connect timeout is 5 s
    assert OFFLINE_HINT in str(err.value) and "images zone add" in str(err.value)
    assert cache.list() == [] and not (tmp_path / UUID).exists()


def test_a_refused_connection_fails_at_once_with_the_offline_hint(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                   # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="cannot reach") as err:
        ZoneImageCache(tmp_path, source=f"http://127.0.0.1:{port}").fetch(UUID)
    assert time.monotonic() - t0 < 2 and "ZoneImageCache().add" in str(err.value)
