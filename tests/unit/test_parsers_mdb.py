"""``echo ::memstat | mdb -k`` parser, tested on real output from the SmartOS docs and on
Solaris 10/11 captures (tests/fixtures/mdb)."""
from __future__ import annotations

from pathlib import Path

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers.mdb import MemStatRow, parse_mdb_memstat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mdb"
HEADER = ("# source: ", "# command: ", "# note: ")
MIB = 1 << 20


def fixture(name: str) -> str:
    lines = (FIXTURES / name).read_text().split("\n")
    while lines and lines[0].startswith(HEADER):
        lines.pop(0)
    return "\n".join(lines)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.txt")), ids=lambda p: p.name)
def test_every_fixture_names_its_source_and_command(path):
    first, second = path.read_text().split("\n")[:2]
    assert first.startswith("# source: ") and second.startswith("# command: ")


def test_smartos_memstat_rows_have_pages_size_and_share():
    stat = parse_mdb_memstat(fixture("smartos_docs_memstat_smartosn2.txt"))
    assert stat.unit == "MB"
    assert stat["Kernel"] == MemStatRow("Kernel", 692333, 2704 * MIB, 19)
    assert stat["ZFS File Data"].pages == 1125020 and stat["ZFS File Data"].percent == 30
    assert stat["Free (freelist)"].mb == 847.0
    assert stat.total == MemStatRow("Total", 3690945, 14417 * MIB, None)
    assert stat.physical == MemStatRow("Physical", 3690944, 14417 * MIB, None)


def test_categories_come_in_printed_order():
    stat = parse_mdb_memstat(fixture("smartos_docs_memstat_node1.txt"))
    assert [row.name for row in stat.rows] == ["Kernel", "ZFS File Data", "Anon", "Exec and libs",
                                               "Page cache", "Free (cachelist)", "Free (freelist)"]
    assert stat.percentages() == {"Kernel": 36, "ZFS File Data": 4, "Anon": 55, "Exec and libs": 0,
                                  "Page cache": 2, "Free (cachelist)": 1, "Free (freelist)": 2}
    assert sum(row.pages for row in stat.rows) == 12076923       # the categories add up to Total


def test_missing_rows_and_total_without_a_blank_line():
    stat = parse_mdb_memstat(fixture("solaris10_memstat_ufs.txt"))
    assert "ZFS File Data" not in stat
    assert stat.physical is None
    assert stat.total.pages == 3670016 and stat.total.mb == 28672.0


def test_bytes_column_layout_with_size_suffixes():
    stat = parse_mdb_memstat(fixture("solaris11_memstat_bytes.txt"))
    assert stat.unit == "Bytes"
    assert stat["Kernel"].pages == 99811
    assert stat["Kernel"].mb == pytest.approx(389.8)
    assert stat["Free (freelist)"].bytes == 1 << 30
    assert stat["ZFS Metadata"].percent == 2
    assert stat.total.bytes == int(1.9 * (1 << 30))


def test_output_without_the_header_raises():
    with pytest.raises(ParseError) as caught:
        parse_mdb_memstat("mdb: failed to initialize target: No such file or directory\n")
    assert caught.value.command == "echo ::memstat | mdb -k"


def test_the_command_label_is_the_form_the_smartos_docs_run():
    """mdb(1) (illumos-joyent usr/src/man/man1/mdb.1): ``mdb [-k] [-e expr] [object [core]]``;
    ``mdb -k ::memstat`` would open ``::memstat`` as an object file."""
    from smartos_lab.parsers.mdb import MEMSTAT

    for name in ("smartos_docs_memstat_node1.txt", "smartos_docs_memstat_smartosn2.txt"):
        assert (FIXTURES / name).read_text().split("\n")[1] == f"# command: {MEMSTAT}"


def test_truncated_output_without_total_raises():
    text = fixture("smartos_docs_memstat_smartosn2.txt").split("\n\nTotal")[0]
    with pytest.raises(ParseError, match="no Total line") as caught:
        parse_mdb_memstat(text)
    assert caught.value.line.startswith("Free (freelist)")


def test_row_with_a_non_number_raises_naming_the_line():
    text = fixture("smartos_docs_memstat_smartosn2.txt").replace("1624164", "16241x4")
    with pytest.raises(ParseError) as caught:
        parse_mdb_memstat(text, command="echo ::memstat | mdb -k")
    assert caught.value.command == "echo ::memstat | mdb -k"
    assert caught.value.line.startswith("Anon") and caught.value.lineno == 5


def test_size_suffix_under_the_mb_header_raises():
    text = fixture("smartos_docs_memstat_smartosn2.txt").replace("   2704   19%", "   2.6G   19%")
    with pytest.raises(ParseError, match="MB column"):
        parse_mdb_memstat(text)
