"""A whole GPU worker (main process and pool child) is SIGKILLed mid-chapter, as when a pod vanishes: its chapter
resumes from its checkpoint on another worker, on both brokers; on Redis long before the visibility timeout (4 h
here), because the dead worker's lease lapses and the reaper (beat, every 1.5 s here) puts the chapter back."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from celery import Celery

from tests.support.brokers import BOTH_BROKERS
from tests.support.processes import FAST_RECOVERY, wait_for

pytestmark = pytest.mark.slow

# Small batches make a chapter of many forward passes; a checkpoint after every window.
SMALL_BATCHES = {"AUDIOBOOK_MAX_BATCH_CHARS": "60", "AUDIOBOOK_MAX_CHUNK_CHARS": "40",
                 "AUDIOBOOK_CHECKPOINT_SECONDS": "0"}
TEXT = " ".join(f"Sentence number {n} is here." for n in range(1, 61))


@BOTH_BROKERS
def test_a_dead_workers_chapter_resumes_on_another_worker(start_worker, recovery_plane, client_app: Celery,
                                                          audio_dir: Path) -> None:
    gpus = [start_worker("gpu-long", name=f"gpu-{x}", env=FAST_RECOVERY | SMALL_BATCHES, wait=False) for x in "ab"]
    for worker in (*gpus, recovery_plane):
        worker.wait_ready(client_app)
    result = client_app.send_task("audiobook.synthesize_chapter", queue="gpu-long",
                                  kwargs={"book_id": "pod", "chapter_id": "c1", "text": TEXT, "seed": 3})

    chapter_dir = audio_dir / "pod" / "c1"

    def checkpointed() -> tuple[dict, dict] | None:
        meta = result.info if result.state == "PROGRESS" else None
        saved = [json.loads(p.read_text()) for p in chapter_dir.glob(".checkpoint/*/state.json")]
        return (meta, saved[0]) if meta and saved and saved[0]["next_chunk"] >= 6 else None

    meta, state = wait_for(checkpointed, 120, what="a chapter checkpoint")
    victim = next(w for w in gpus if w.hostname == meta["worker"])
    survivor = next(w for w in gpus if w is not victim)
    os.killpg(victim.proc.pid, signal.SIGKILL)  # main process and pool child at once: no goodbye to the broker

    final = result.get(timeout=120)  # the visibility timeout is 4 h: only the lease and reaper can do this
    assert final["usage"]["worker"] == survivor.hostname
    assert final["attempts"] == 2 and state["next_chunk"] <= final["resumed_from_chunk"] < meta["total"]
    assert [p.name for p in chapter_dir.glob("*.wav")] == [final["key"].rsplit("/", 1)[1]]  # one final object
    assert not (chapter_dir / ".checkpoint").exists()
