"""ANSI/VT100 stripping and terminal-query answers."""
from __future__ import annotations

import pytest

from smartos_lab.machine.ansi import AnsiStripper, TerminalResponder, strip_ansi

ESC = "\x1b"


@pytest.mark.parametrize("raw, text", [
    (f"{ESC}[31mred{ESC}[0m plain", "red plain"),
    (f"{ESC}[1;32;40mx{ESC}[m", "x"),
    (f"a{ESC}[2Kb{ESC}[10;20Hc{ESC}[?25ld{ESC}[?2004he", "abcde"),   # erase, move, modes
    (f"{ESC}]0;root@host: ~\x07prompt", "prompt"),                    # OSC title ended by BEL
    (f"{ESC}]2;title{ESC}\\prompt", "prompt"),                        # OSC ended by ST
    (f"{ESC}(Bx{ESC})0y{ESC}#8z", "xyz"),                              # charset selects, DEC test
    (f"{ESC}7save{ESC}8{ESC}=k{ESC}>{ESC}Mm", "savekm"),               # lone ESC-x
    (f"{ESC}Pq#0;2;0;0;0{ESC}\\after", "after"),                      # DCS
    ("bell\x07 nul\x00 si\x0e\x0f", "bell nul si"),                    # stray control bytes
    ("tab\tcr\r\nlf\n", "tab\tcr\r\nlf\n"),                            # whitespace and \r kept
    ("ümlaut ✓", "ümlaut ✓"),
])
def test_strip_ansi_removes_sequences_and_keeps_text(raw, text):
    assert strip_ansi(raw) == text


def test_strip_ansi_drops_an_unfinished_sequence_at_the_end():
    assert strip_ansi(f"ok{ESC}[3") == "ok"


SPLIT_CASES = [
    f"before{ESC}[31mred{ESC}[0mafter",
    f"x{ESC}]0;a title{ESC}\\y",
    f"x{ESC}]0;a title\x07y",
    f"p{ESC}(Bq{ESC}7r",
    f"a{ESC}Pdcs data{ESC}\\b",
    f"login: {ESC}[6n{ESC}[18t{ESC}[0cdone",
]


@pytest.mark.parametrize("raw", SPLIT_CASES)
def test_stripper_gives_the_same_text_wherever_the_stream_is_split(raw):
    expected = strip_ansi(raw)
    for cut in range(len(raw) + 1):
        s = AnsiStripper()
        assert s.feed(raw[:cut]) + s.feed(raw[cut:]) == expected, cut


def test_stripper_handles_one_character_chunks():
    raw = SPLIT_CASES[0] + SPLIT_CASES[1]
    s = AnsiStripper()
    assert "".join(s.feed(ch) for ch in raw) == strip_ansi(raw)


def test_stripper_holds_an_open_sequence_until_it_completes():
    s = AnsiStripper()
    assert s.feed(f"abc{ESC}[3") == "abc"
    assert s.feed("1mred") == "red"


def test_stripper_gives_up_on_a_runaway_sequence():
    s = AnsiStripper()
    s.feed(f"{ESC}]" + "t" * 5000)
    assert s.feed("visible") == "visible"


@pytest.mark.parametrize("query, reply", [
    (b"\x1b[6n", b"\x1b[24;1R"),
    (b"\x1b[18t", b"\x1b[8;25;80t"),
    (b"\x1b[0c", b"\x1b[?1;2c"),
    (b"\x1b[c", b"\x1b[?1;2c"),
    (b"\x1b[5n", b"\x1b[0n"),
])
def test_responder_answers_terminal_queries(query, reply):
    assert TerminalResponder().feed(b"text " + query + b" more") == reply


def test_responder_answers_several_queries_in_order():
    assert TerminalResponder().feed(b"\x1b[18t\x1b[0c") == b"\x1b[8;25;80t\x1b[?1;2c"


def test_responder_ignores_ordinary_sequences():
    assert TerminalResponder().feed(b"\x1b[31mred\x1b[0m\x1b[?25l\x1b[2J") == b""


@pytest.mark.parametrize("cut", range(1, 5))
def test_responder_answers_a_query_split_across_chunks_exactly_once(cut):
    query = b"\x1b[18t"
    r = TerminalResponder()
    replies = r.feed(b"abc" + query[:cut]) + r.feed(query[cut:] + b"xyz") + r.feed(b"more")
    assert replies == b"\x1b[8;25;80t"
