"""The usage ledger: what a chapter bills, once, and the totals finance reads by customer and date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from synth.storage.local import LocalStorage
from synth.usage import (
    ChapterUsage,
    book_usage,
    ledger_key,
    parse_time,
    read_ledger,
    record_usage,
    totals,
    usd_for,
)


def usage(book: str, chapter: str, *, chars: int = 1000, audio: float = 70.0, compute: float = 36.0,
          price: float | None = 2.0, customer: str | None = "acme", at: str = "2025-03-01T10:00:00+00:00",
          ) -> ChapterUsage:
    return ChapterUsage(book_id=book, chapter_id=chapter, characters=chars, audio_seconds=audio,
                        compute_seconds=compute, usd_per_hour=price, worker="gpu@host", task_id=f"t-{chapter}",
                        metadata={"customer": customer} if customer else {}, finished_at=at)


@pytest.mark.parametrize("compute,price,expected", [
    (3600.0, 0.34, 0.34), (36.0, 2.0, 0.02), (0.0, 5.0, 0.0), (10.0, None, None), (1.0, 0.0, 0.0),
])
def test_usd_is_compute_time_at_the_workers_price(compute: float, price: float | None,
                                                   expected: float | None) -> None:
    assert usd_for(compute, price) == expected


def test_a_chapter_is_billed_once_and_a_lost_record_is_billed_when_found_missing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = "moby/c1/0123abcd.flac"
    first = record_usage(storage, key, usage("moby", "c1"), cached=False)
    assert first.compute_seconds == 36.0 and first.usd == 0.02
    assert storage.list("_usage/") == [ledger_key(key)] == ["_usage/moby/c1/0123abcd.json"]
    # the same chapter again, returned from storage: no new bill, and still one record
    again = record_usage(storage, key, usage("moby", "c1"), cached=True)
    assert again.compute_seconds == 0.0 and again.usd == 0.0 and len(read_ledger(storage)) == 1
    # redelivered and synthesized again (the same content key): the record is replaced, not added to
    record_usage(storage, key, usage("moby", "c1", compute=40.0), cached=False)
    assert [u.compute_seconds for u in read_ledger(storage)] == [40.0]
    # the run that made the audio died before its record: the cached return bills it
    storage.delete(storage.list("_usage/"))
    found = record_usage(storage, key, usage("moby", "c1"), cached=True)
    assert found.compute_seconds == 36.0 and len(read_ledger(storage)) == 1


def test_totals_by_customer_and_since(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    rows = [usage("moby", "c1"), usage("moby", "c2", compute=72.0),
            usage("emma", "c1", customer="globex", price=3.6, at="2025-03-02T09:00:00+00:00"),
            usage("walk", "c1", customer=None, price=None, at="2025-02-01T00:00:00+00:00")]
    for i, row in enumerate(rows):
        record_usage(storage, f"{row.book_id}/{row.chapter_id}/{i:08x}.flac", row, cached=False)
    ledger = read_ledger(storage)
    by_customer = {t.group: t for t in totals(ledger, "customer")}
    assert set(by_customer) == {"acme", "globex", "(none)"}
    acme = by_customer["acme"]
    assert (acme.books, acme.chapters, acme.characters) == (1, 2, 2000)
    assert acme.gpu_hours == pytest.approx(108 / 3600) and acme.usd == pytest.approx(0.06)
    assert acme.audio_hours == pytest.approx(140 / 3600)
    assert by_customer["globex"].usd == pytest.approx(0.036)
    assert by_customer["(none)"].unpriced_chapters == 1 and by_customer["(none)"].usd == 0.0
    [everything] = totals(ledger)
    assert everything.chapters == 4 and everything.books == 3
    assert everything.usd == pytest.approx(sum(t.usd for t in by_customer.values()))
    since = read_ledger(storage, parse_time("2025-03-01"))
    assert sorted(u.book_id for u in since) == ["emma", "moby", "moby"]
    assert read_ledger(storage, datetime(2030, 1, 1, tzinfo=UTC)) == []


def test_naive_dates_are_utc() -> None:
    assert parse_time("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("last tuesday")


def test_book_usage_sums_its_chapters() -> None:
    chapters = [usage("b", "c1").to_json(), usage("b", "c2", compute=0.0).to_json(),
                usage("b", "c3", price=None).to_json()]
    summed = book_usage(chapters)
    assert summed == {"characters": 3000, "audio_seconds": 210.0, "compute_seconds": 72.0, "usd": 0.02,
                      "unpriced_chapters": 1}
