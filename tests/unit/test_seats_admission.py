"""Seat admission control and capacity arithmetic (no VM)."""
from __future__ import annotations

import pytest

from smartos_lab import seats
from smartos_lab.cli import main
from smartos_lab.errors import ConfigError, LabError


def test_capacity_counts_guest_ram_plus_qemu_overhead_against_available_times_ratio(monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_SEAT_OVERHEAD_MIB", "128")
    cap = seats.capacity(4096, ratio=0.9, available_mib=512 * 1024)
    assert (cap.per_seat_mib, cap.limit_mib, cap.seats) == (4224, 471859, 111)
    assert "111 seats of 4096 MiB fit" in cap.describe()


def test_admission_refuses_with_the_numbers(monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_SEAT_OVERHEAD_MIB", "100")
    seats.admit([256, 256], available_mib=800)
    with pytest.raises(LabError, match=r"starting 3 seat\(s\) needs 1068 MiB \(356 MiB each: "
                                       r"256 MiB guest RAM \+ 100 MiB QEMU\), but this host allows "
                                       r"800 MiB \(800 MiB available x ratio 1\): room for 2"):
        seats.admit([256, 256, 256], available_mib=800)
    seats.admit([256, 256, 256], available_mib=800, ratio=1.5)


def test_the_host_figure_comes_from_meminfo_unless_overridden(monkeypatch):
    monkeypatch.delenv("SMARTOS_LAB_MEMAVAILABLE_MIB", raising=False)
    assert seats.host_available_mib() > 0
    monkeypatch.setenv("SMARTOS_LAB_MEMAVAILABLE_MIB", "1234")
    assert seats.host_available_mib() == 1234
    monkeypatch.setenv("SMARTOS_LAB_MEMAVAILABLE_MIB", "lots")
    with pytest.raises(ConfigError, match="SMARTOS_LAB_MEMAVAILABLE_MIB='lots' is not a number"):
        seats.host_available_mib()
    with pytest.raises(ConfigError, match="ratio must be positive"):
        seats.capacity(256, ratio=0, available_mib=1000)


@pytest.mark.parametrize("count", ["0", "10000", "three"])
def test_the_command_line_refuses_bad_seat_counts(count, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["seats", "create", "golden", count])
    assert exit_.value.code == 2
    assert "seat count must be" in capsys.readouterr().err


def test_doctor_says_how_many_seats_fit(monkeypatch, capsys):
    monkeypatch.setenv("SMARTOS_LAB_MEMAVAILABLE_MIB", "10000")
    monkeypatch.setenv("SMARTOS_LAB_SEAT_OVERHEAD_MIB", "100")
    assert main(["doctor", "--seats", "2", "--seat-memory", "2G"]) == 0
    assert capsys.readouterr().out.startswith("ok: 2 seats asked; 4 seats of 2048 MiB fit")
    assert main(["doctor", "--seats", "5", "--seat-memory", "2G"]) == 1
    assert capsys.readouterr().out.startswith("NO: 5 seats asked")
