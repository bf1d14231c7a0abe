"""A book through real workers to a book file: M4B chapter marks match the manifest, MP3 in the offline voice."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest
import soundfile as sf
from celery import Celery
from celery.result import AsyncResult

from synth.output import read_chapter_marks

pytestmark = pytest.mark.slow

CHAPTERS = [
    {"chapter_id": "c1", "title": "Loomings", "text": "Call me Ishmael. Some years ago I had little money."},
    {"chapter_id": "c2", "title": "The Carpet-Bag", "text": "I stuffed a shirt or two into my old carpet-bag."},
    {"chapter_id": "c3", "title": "The Spouter-Inn", "text": "Entering that gable-ended Spouter-Inn, you found "
                                                            "yourself in a wide, low, straggling entry."},
]


def submit(app: Celery, **kwargs: object) -> tuple[dict, dict]:
    """(what synthesize_book returned, the assembled manifest)."""
    started = app.send_task("audiobook.synthesize_book", queue="control", kwargs=kwargs).get(timeout=60)
    return started, AsyncResult(started["assembly_task_id"], app=app).get(timeout=240)


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def test_book_becomes_an_m4b_whose_chapter_marks_match_the_manifest(start_worker, client_app: Celery,
                                                                    audio_dir: Path) -> None:
    start_worker("gpu-long")
    start_worker("control", name="control")
    _, manifest = submit(client_app, book_id="moby", title="Moby-Dick", author="Herman Melville", chapters=CHAPTERS)

    assert manifest["book_format"] == "m4b" and manifest["book_key"] == "moby/book.m4b"
    book = local(manifest["book_uri"])
    assert book == audio_dir / "moby" / "book.m4b" and book.is_file()
    tags, marks = read_chapter_marks(book)
    assert (tags["title"], tags["artist"]) == ("Moby-Dick", "Herman Melville")
    assert [m.title for m in marks] == [c["title"] for c in CHAPTERS]
    for mark, chapter in zip(marks, manifest["chapters"], strict=True):
        assert abs(mark.start_ms - chapter["start_s"] * 1000) <= 10
        assert abs(mark.end_ms - (chapter["start_s"] + chapter["duration_s"]) * 1000) <= 10
        assert chapter["format"] == "flac" and local(chapter["uri"]).suffix == ".flac"  # lossless intermediate
        assert isinstance(chapter["loudness_lufs"], float) and isinstance(chapter["gain_db"], float)
    assert mutagen.File(book).info.length == pytest.approx(manifest["duration_s"], abs=0.1)
    on_disk = local(manifest["manifest_uri"]).read_text()
    assert '"book_uri"' in on_disk and '"loudness_lufs"' in on_disk


def test_offline_voice_book_as_mp3_and_a_book_without_a_file(start_worker, client_app: Celery) -> None:
    start_worker("gpu-long", env={"AUDIOBOOK_MODEL": "piper"})
    start_worker("control", name="control")
    started, manifest = submit(client_app, book_id="voice", title="Voice", chapters=CHAPTERS[:2], output="mp3")

    book = local(manifest["book_uri"])
    info = mutagen.File(book).info
    assert book.name == "book.mp3" and info.sample_rate == 44100 and round(info.bitrate, -3) == 192_000
    assert [m.title for m in read_chapter_marks(book)[1]] == [c["title"] for c in CHAPTERS[:2]]
    for task_id, entry in zip(started["chapter_task_ids"], manifest["chapters"], strict=True):
        assert AsyncResult(task_id, app=client_app).get(timeout=10)["model"] == "piper:en_US-joe-medium"
        assert sf.info(str(local(entry["uri"]))).samplerate == 22050

    _, plain = submit(client_app, book_id="plain", chapters=CHAPTERS[:1], output="none")
    assert "book_uri" not in plain and plain["chapters"][0]["format"] == "wav"
