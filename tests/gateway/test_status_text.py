"""How `signalfire gateway status` words times and errors for an operator."""

from __future__ import annotations

from signalfire.gateway.cli import _ago, _last_error

NOW = 1_800_000_000.0


def test_ages_in_units_an_operator_reads_at_a_glance() -> None:
    assert _ago(None, NOW) == "never"
    assert _ago(NOW - 5, NOW) == "5 s ago"
    assert _ago(NOW - 600, NOW) == "10 min ago"
    assert _ago(NOW - 5 * 3600, NOW) == "5 h ago"
    assert _ago(NOW - 9 * 86400, NOW) == "9 days ago"
    assert _ago(NOW + 0.5, NOW) == "0 s ago"  # the same second, read by another process


def test_a_time_in_the_future_points_at_the_clock() -> None:
    # A Pi without a clock battery, off NTP, boots in the past: earlier entries are "later".
    assert _ago(NOW + 3 * 86400, NOW) == "3 days in the future (check the clock)"
    assert _ago(NOW + 90, NOW) == "90 s in the future (check the clock)"


def test_the_last_error_says_whether_the_uplink_worked_since() -> None:
    assert _last_error({}, NOW) == "-"
    failing = {"last_error": "not reachable", "last_error_at": NOW - 30, "last_success": NOW - 90}
    assert _last_error(failing, NOW) == "not reachable (30 s ago)"
    recovered = failing | {"last_success": NOW - 2}
    assert _last_error(recovered, NOW) == "not reachable (30 s ago, then recovered)"
