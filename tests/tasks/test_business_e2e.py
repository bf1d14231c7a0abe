"""The business around a book, through real workers and the `audiobook` command as an operator runs it:
voices that may be sold, an estimate before, a bill per customer and the finished file after.

The voice is a tiny random-weight copy of the default model's architecture (VITS over espeak-ng phonemes);
two GPU workers carry different prices, as the scaler gives each pod its own.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest
from celery import Celery
from celery.result import AsyncResult
from ebooklib import epub

from scaler.estimate import makespan
from settings import WORKER_PRICE_ENV
from synth.output import read_chapter_marks
from synth.output.ffmpeg import decode_blocks, ffmpeg_exe
from synth.storage import open_storage
from tests.support.processes import ROOT

pytestmark = pytest.mark.slow

PRICES = {"gpu-cheap": 1.2, "gpu-dear": 3.6}
SECONDS_PER_CHAR = 0.01
EPUB_CHAPTERS = [
    ("The Light", "The lighthouse keeper had counted the ships for 31 years. On the night of the 3rd of March he "
                  "counted one too many. It came in without lights."),
    ("The Village", "He went down the 114 steps and along the harbour wall to the village. Mrs. Pryce was still "
                    "awake; she always was."),
    ("The Boat", "At first light a small boat left the ship and rowed toward the harbour."),
]
STORY = ("---\ntitle: ignored, the flags win\n---\n\n# Morning\n\nThe harbour was quiet at dawn. A single gull "
         "watched the boats.\n\n# Evening\n\nThe boats came home one by one, and the gull flew out to meet them.\n")


@pytest.fixture(scope="module")
def ljs_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth.engines.random_vits import build_random_vits

    return build_random_vits(tmp_path_factory.mktemp("models") / "tiny-ljs", front_end="phonemes")


def image(path: Path, color: str) -> Path:
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", f"color=c={color}:s=48x48",
                    "-frames:v", "1", "-y", str(path)], check=True)
    return path


def build_epub(path: Path, cover: bytes) -> Path:
    book = epub.EpubBook()
    book.set_identifier("ship-without-lights")
    book.set_title("The Ship Without Lights")
    book.set_language("en")
    book.add_author("Ann Author")
    book.set_cover("cover.jpg", cover)
    pages = [epub.EpubHtml(title=title, file_name=f"c{i}.xhtml",
                           content=f"<html><body><h1>{title}</h1><p>{text}</p></body></html>")
             for i, (title, text) in enumerate(EPUB_CHAPTERS, start=1)]
    for page in pages:
        book.add_item(page)
    book.toc = [epub.Link(f"c{i}.xhtml", t, f"c{i}") for i, (t, _) in enumerate(EPUB_CHAPTERS, start=1)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *pages]
    epub.write_epub(str(path), book)
    return path


def audiobook(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "tasks.cli", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def wait_book(app: Celery, env: dict[str, str], book_id: str) -> dict:
    record = open_storage(env["AUDIOBOOK_STORAGE_URL"]).get_json(f"{book_id}/submission.json")
    return AsyncResult(record["assembly_task_id"], app=app).get(timeout=240)


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_voices_estimate_bill_and_file_through_real_workers(start_worker, client_app: Celery, worker_env: dict,
                                                            ljs_model: Path, audio_dir: Path,
                                                            tmp_path: Path) -> None:
    env = worker_env | {"AUDIOBOOK_MODEL": str(ljs_model), "AUDIOBOOK_DOWNLOADS_DIR": str(tmp_path / "downloads"),
                        "SCALER_SECONDS_PER_CHAR": str(SECONDS_PER_CHAR), "SCALER_NAME_PREFIX": "e2e-gpu"}
    for name, price in PRICES.items():
        start_worker("gpu-long", name=name, env=env | {WORKER_PRICE_ENV: str(price)})
    start_worker("control,preview", name="control", env=env)
    cover_jpg = image(tmp_path / "cover.jpg", "red").read_bytes()
    book_path = build_epub(tmp_path / "ship.epub", cover_jpg)

    # --- voices: the configured model, loaded as a worker loads it -----------------------------------------
    voices = json.loads(audiobook(env, "voices", "--json").stdout)
    assert voices["voices"] == ["default"] and voices["sample_rate"] == 22050
    assert voices["sellable"] is None  # a local directory: not a model anyone has cleared
    models = {m["model"]: m for m in json.loads(audiobook(env, "voices", "--models", "--json").stdout)}
    assert models["kakao-enterprise/vits-ljs"]["sellable"] and not models["facebook/mms-tts-eng"]["sellable"]

    # --- inspect, before anything is submitted, with the scaler's record of the real pool --------------------
    audiobook(env, "scaler", "tick", "--dry-run", "--json")
    estimate = json.loads(audiobook(env, "inspect", str(book_path), "--json").stdout)
    chars = [c["characters"] for c in estimate["chapters"]]
    assert [c["title"] for c in estimate["chapters"]] == [t for t, _ in EPUB_CHAPTERS]
    assert estimate["pool"]["workers"] == 2 and "decision record" in estimate["pool"]["source"]
    assert estimate["usd_per_hour"] == 0.0 and "scaler's record" in estimate["price_source"]  # local workers
    assert estimate["estimate"]["gpu_s"] == pytest.approx(sum(chars) * SECONDS_PER_CHAR)
    assert estimate["estimate"]["audio_s"] == pytest.approx(sum(chars) * 0.07)
    assert estimate["estimate"]["wall_s_now"] == pytest.approx(makespan([c * SECONDS_PER_CHAR for c in chars], 2))
    assert open_storage(env["AUDIOBOOK_STORAGE_URL"]).list("ship") == []  # nothing was submitted

    # --- two customers' books, and one chapter a service sends directly ---------------------------------------
    audiobook(env, "submit", str(book_path), "--book-id", "ship", "--metadata", "customer=acme")
    story = tmp_path / "story.md"
    story.write_text(STORY)
    cover_png = image(tmp_path / "cover.png", "blue").read_bytes()
    audiobook(env, "submit", str(story), "--book-id", "story", "--title", "Two Tides", "--author", "B. Writer",
              "--cover", str(tmp_path / "cover.png"), "--format", "mp3", "--metadata", "customer=globex")
    direct = client_app.send_task("audiobook.synthesize_chapter", queue="gpu-long", kwargs={
        "book_id": "memo", "chapter_id": "c1", "text": "A note for the harbour master.",
        "metadata": {"customer": "acme"}})
    ship, story_manifest = wait_book(client_app, env, "ship"), wait_book(client_app, env, "story")
    direct_usage = direct.get(timeout=120)["usage"]

    # --- the bill: each chapter at its worker's price, the manifest sums them ----------------------------------
    billed = []
    for manifest in (ship, story_manifest):
        for task_id in open_storage(env["AUDIOBOOK_STORAGE_URL"]).get_json(
                f"{manifest['book_id']}/submission.json")["chapters"]:
            billed.append(AsyncResult(task_id["task_id"], app=client_app).get(timeout=10)["usage"])
    billed.append(direct_usage)
    for usage in billed:
        price = PRICES[usage["worker"].split("@")[0]]
        assert usage["usd_per_hour"] == price and usage["compute_seconds"] > 0
        assert usage["usd"] == pytest.approx(usage["compute_seconds"] * price / 3600, abs=1e-6)
    assert ship["metadata"] == {"customer": "acme"} and ship["finished_at"]
    assert ship["usage"]["usd"] == pytest.approx(sum(u["usd"] for u in billed[:3]), abs=1e-5)
    assert ship["usage"]["unpriced_chapters"] == 0

    # --- usage by customer, from storage ----------------------------------------------------------------------
    report = json.loads(audiobook(env, "usage", "--by", "customer", "--json").stdout)
    groups = {g["group"]: g for g in report["groups"]}
    assert set(groups) == {"acme", "globex"}
    acme = groups["acme"]
    assert (acme["books"], acme["chapters"]) == (2, 4)
    assert acme["characters"] == sum(chars) + len("A note for the harbour master.")
    assert acme["usd"] == pytest.approx(sum(u["usd"] for u in billed[:3]) + direct_usage["usd"], abs=1e-5)
    assert acme["gpu_hours"] == pytest.approx((sum(u["compute_seconds"] for u in billed[:3])
                                               + direct_usage["compute_seconds"]) / 3600, abs=1e-6)
    assert groups["globex"]["chapters"] == 2 and groups["globex"]["audio_hours"] == pytest.approx(
        story_manifest["usage"]["audio_seconds"] / 3600, abs=1e-6)
    assert report["total"]["usd"] == pytest.approx(sum(u["usd"] for u in billed), abs=1e-5)
    assert json.loads(audiobook(env, "usage", "--since", "2999-01-01", "--json").stdout)["total"]["chapters"] == 0
    assert "acme" in audiobook(env, "usage", "--by", "customer").stdout

    # --- the files: tags and cover from the EPUB and from the flags, peaks and loudness as promised --------------
    m4b = local(ship["book_uri"])
    tags, marks = read_chapter_marks(m4b)
    assert (tags["title"], tags["artist"]) == ("The Ship Without Lights", "Ann Author")
    assert [m.title for m in marks] == [t for t, _ in EPUB_CHAPTERS]
    assert [bytes(p) for p in mutagen.File(m4b).tags["covr"]] == [cover_jpg]
    mp3 = local(story_manifest["book_uri"])
    tags, _ = read_chapter_marks(mp3)
    assert (tags["title"], tags["artist"]) == ("Two Tides", "B. Writer")
    assert [frame.data for frame in mutagen.File(mp3).tags.getall("APIC")] == [cover_png]
    for book in (m4b, mp3):
        audio = np.concatenate(list(decode_blocks(book, sample_rate=44100))).astype(np.float64)
        assert 20 * math.log10(float(np.max(np.abs(audio)))) <= -3.0
        assert abs(pyloudnorm.Meter(44100).integrated_loudness(audio) - (-20.0)) <= 1.0
    umask = os.umask(0)
    os.umask(umask)
    for path in (m4b, mp3, local(ship["manifest_uri"]), local(ship["chapters"][0]["uri"])):
        assert mode(path) == 0o666 & ~umask, path  # 0644 under the usual umask 022

    # --- fetch: the finished file, to a predictable place or where asked --------------------------------------
    fetched = Path(audiobook(env, "fetch", "ship").stdout.strip())
    assert fetched == tmp_path / "downloads" / "books" / "ship.m4b"
    assert fetched.read_bytes() == m4b.read_bytes() and mode(fetched) == 0o666 & ~umask
    (tmp_path / "out").mkdir()
    assert audiobook(env, "fetch", "story", "--out", str(tmp_path / "out")).stdout.strip() == str(
        tmp_path / "out" / "story.mp3")
    missing = audiobook(env, "fetch", "never-made", check=False)
    assert missing.returncode == 2 and "has no manifest yet" in missing.stderr

    # --- a preview lands in the downloads directory, not wherever the command ran -----------------------------
    clip = Path(audiobook(env, "preview", "A short preview of the voice.").stdout.strip())
    assert clip.parent == tmp_path / "downloads" / "previews" and clip.suffix == ".wav" and clip.stat().st_size
