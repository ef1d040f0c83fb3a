"""The soak script, scaled down: 100 streams open at once, a third cancelled mid-stream."""

from __future__ import annotations

from benchmarks.soak import run


def test_soak_100_streams_leaves_nothing_behind() -> None:
    figures = run(streams=100)
    assert figures.open_at_once == 100
    assert figures.cancelled == 33 and figures.completed == 67 and figures.failed == 0
    assert figures.lost_tokens == 0
    assert figures.acquired_connections_after == 0
    assert figures.fds_after == figures.fds_before
    assert figures.pending_tasks_after == 0
