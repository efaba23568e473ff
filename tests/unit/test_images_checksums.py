"""Checksum files as published next to SmartOS releases (smartos-live tools/generate-sums)."""
import hashlib

import pytest

from smartos_lab.errors import ImageError
from smartos_lab.images.checksums import Checksum, hash_file, parse_sums

MD5_A = "12f00ff447098e789dcf762df37d2d7a"
MD5_B = "64ec3efb00910a24817c5031055d4ce9"


def test_generate_sums_format_hash_space_name_is_parsed():
    # The two example lines in tools/generate-sums' header comment.
    text = (f"{MD5_A} SINGLE_USER_ROOT_PASSWORD.txt\n"
            f"{MD5_B} boot-release-20250724-20250724T001011Z.tgz\n")
    sums = parse_sums(text, "md5")
    assert sums == {
        "SINGLE_USER_ROOT_PASSWORD.txt": Checksum("md5", MD5_A),
        "boot-release-20250724-20250724T001011Z.tgz": Checksum("md5", MD5_B),
    }


def test_coreutils_two_space_and_binary_star_forms_are_accepted():
    sha = "a" * 64
    text = f"{sha}  smartos-20250724T001011Z.iso\n{sha.upper()} *smartos-20250724T001011Z-USB.img.gz\n"
    sums = parse_sums(text, "sha256")
    assert set(sums) == {"smartos-20250724T001011Z.iso", "smartos-20250724T001011Z-USB.img.gz"}
    assert sums["smartos-20250724T001011Z-USB.img.gz"].hex == sha  # lower-cased


def test_blank_lines_comments_and_crlf_are_ignored():
    text = f"# made by hand\r\n\r\n{MD5_A} a.txt\r\n"
    assert parse_sums(text, "md5") == {"a.txt": Checksum("md5", MD5_A)}


def test_a_line_with_a_hash_of_the_wrong_length_names_the_line():
    with pytest.raises(ImageError, match=r"line 2 .*'deadbeef x.tgz'"):
        parse_sums(f"{MD5_A} a\ndeadbeef x.tgz\n", "md5")


def test_md5_lines_are_rejected_when_sha256_is_expected():
    with pytest.raises(ImageError, match="sha256sums.txt line 1"):
        parse_sums(f"{MD5_A} a\n", "sha256")


def test_checksum_rejects_unknown_algorithms_and_malformed_digests():
    with pytest.raises(ImageError, match="unsupported"):
        Checksum("crc32", "00000000")
    with pytest.raises(ImageError, match="not a sha256 digest"):
        Checksum("sha256", "xyz")


def test_checksum_matches_case_insensitively():
    assert Checksum("md5", MD5_A).matches(MD5_A.upper())
    assert not Checksum("md5", MD5_A).matches(MD5_B)


def test_hash_file_reports_progress_and_gives_the_hex_digest(tmp_path):
    data = b"x" * (3 << 20)
    f = tmp_path / "f"
    f.write_bytes(data)
    seen = []

    class Rec:
        def start(self, label, total): seen.append(("start", label, total))
        def update(self, done): seen.append(("update", done))
        def finish(self): seen.append(("finish",))

    assert hash_file(f, "sha256", progress=Rec(), chunk_size=1 << 20) == hashlib.sha256(data).hexdigest()
    assert seen[0] == ("start", "verifying sha256 of f", 3 << 20)
    assert [s for s in seen if s[0] == "update"][-1] == ("update", 3 << 20)
    assert seen[-1] == ("finish",)
