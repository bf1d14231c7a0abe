"""The traces' shapes, from tables: volumes, the spike, the lull, seeds, and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.sim.traces import (
    HOUR,
    SPIKE_AT,
    SPIKE_CHAPTERS,
    SPIKE_SECONDS,
    TRACES,
    TraceError,
    diurnal,
    diurnal_rate,
    get_trace,
    save_trace,
)


@pytest.mark.parametrize(("name", "low", "high"), [
    ("trickle", 700, 1_600),  # ~2 books/h x 24 chapters x 24 h
    ("diurnal", 8_000, 13_000),  # ~18.5 books/h on average
    ("diurnal-spike", 18_000, 23_000),  # the day plus 10,000
    ("lull", 1_200, 3_000),  # 3 h + 3 h at 12 books/h, and one book of 3
])
def test_each_trace_has_a_day_of_plausible_volume(name: str, low: int, high: int) -> None:
    trace = get_trace(name, seed=1)
    assert trace.duration_s == 24 * HOUR
    assert low <= len(trace.chapters) <= high
    assert all(0 <= c.arrival_s < trace.duration_s for c in trace.chapters)
    assert [c.arrival_s for c in trace.chapters] == sorted(c.arrival_s for c in trace.chapters)
    assert all(c.chars > 0 and c.work_s > 0 for c in trace.chapters)


@pytest.mark.parametrize("name", list(TRACES))
def test_a_seed_gives_the_same_trace_and_another_seed_a_different_one(name: str) -> None:
    assert get_trace(name, 7) == get_trace(name, 7)
    assert get_trace(name, 7).chapters != get_trace(name, 8).chapters


def test_trickle_is_flat() -> None:
    hourly = get_trace("trickle", 1).hourly_chapters()
    assert max(hourly) <= 200  # a few books an hour, never a rush
    assert sum(1 for h in hourly if h > 0) >= 18  # something arrives in most hours


def test_diurnal_peaks_in_the_afternoon_and_is_quiet_at_night() -> None:
    hourly = diurnal(1).hourly_chapters()
    night, afternoon = sum(hourly[2:7]), sum(hourly[13:19])
    assert afternoon > 8 * night
    assert diurnal_rate(4 * HOUR) == pytest.approx(1.0) and diurnal_rate(16 * HOUR) == pytest.approx(36.0)


def test_the_spike_is_10000_chapters_within_five_minutes_on_top_of_the_day() -> None:
    day, spiked = get_trace("diurnal", 3), get_trace("diurnal-spike", 3)
    assert len(spiked.chapters) == len(day.chapters) + SPIKE_CHAPTERS
    day_books = {c.book for c in day.chapters}
    spike = [c for c in spiked.chapters if c.book not in day_books]
    assert len(spike) == SPIKE_CHAPTERS
    assert all(SPIKE_AT <= c.arrival_s < SPIKE_AT + SPIKE_SECONDS for c in spike)


def test_the_lull_is_long_and_nearly_empty() -> None:
    hourly = get_trace("lull", 1).hourly_chapters()
    assert sum(hourly[0:3]) > 200 and sum(hourly[21:24]) > 200
    assert sum(hourly[3:21]) == 3  # one book of three chapters in eighteen hours


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_saved_trace_loads_back_the_same(tmp_path: Path, suffix: str) -> None:
    trace = get_trace("lull", 2)
    path = tmp_path / f"day{suffix}"
    save_trace(trace, path)
    loaded = get_trace(str(path))
    assert loaded.chapters == trace.chapters
    assert loaded.name == "day"


def test_a_file_without_work_seconds_draws_them_from_the_characters(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("arrival_s,book,chars\n0,1,10000\n60,1,20000\n")
    trace = get_trace(str(path))
    assert [c.chars for c in trace.chapters] == [10_000, 20_000]
    assert 30 < trace.chapters[0].work_s < 70 and trace.chapters[1].work_s > trace.chapters[0].work_s / 2
    assert trace.duration_s == 60


@pytest.mark.parametrize(("name", "content", "message"), [
    ("nope", None, "unknown trace 'nope'"),
    ("missing.csv", None, "cannot read trace"),
    ("bad.csv", "arrival_s,book,chars\nsoon,1,100\n", "bad trace file"),
    ("neg.csv", "arrival_s,book,chars\n-5,1,100\n", "must be >= 0"),
    ("bad.json", '{"chapters": [{"arrival_s": 1}]}', "bad trace file"),
])
def test_bad_traces_are_refused_with_a_reason(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(TraceError, match=message):
        get_trace(str(path) if name.endswith((".csv", ".json")) else name)
