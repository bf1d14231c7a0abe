"""What a book will cost and how long it will take, before it is submitted. Pure: numbers in, numbers out.

GPU time is characters x SCALER_SECONDS_PER_CHAR (the backlog policy's own figure); audio length is characters
x PREVIEW_SECONDS_PER_CHAR. Wall time: the work already queued shares the pool, then the book's chapters run
one per worker, longest first (how Celery hands them out is close to that, since each worker takes one at a
time).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EstimateInputs:
    gpu_seconds_per_char: float
    spoken_seconds_per_char: float
    #: USD/hour of one worker (None: unknown).
    usd_per_hour: float | None
    #: Workers serving or booting now (None: unknown).
    workers: int | None
    #: Most workers the caps allow at that price.
    max_workers: int
    #: Seconds of GPU work already queued ahead of the book (None: unknown).
    queued_gpu_s: float | None = None
    boot_s: float = 0.0


@dataclass(frozen=True)
class BookEstimate:
    characters: int
    audio_s: float
    gpu_s: float
    usd: float | None
    #: Wall time with the workers there now (None when unknown or none), and with the pool at its cap.
    wall_s_now: float | None
    wall_s_at_cap: float
    workers_at_cap: int
    chapter_gpu_s: tuple[float, ...]
    chapter_audio_s: tuple[float, ...]

    @property
    def gpu_hours(self) -> float:
        return self.gpu_s / 3600

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"gpu_hours": round(self.gpu_hours, 6)}


def makespan(durations: Sequence[float], workers: int) -> float:
    """Finish time of `durations` on `workers` machines, longest first, each to the least loaded one."""
    if not durations:
        return 0.0
    loads = [0.0] * max(1, min(workers, len(durations)))
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def workers_at_cap(max_workers: int, max_usd_per_hour: float, usd_per_hour: float | None) -> int:
    """The pool size the caps allow for workers at `usd_per_hour` (at least 1)."""
    by_price = math.floor(max_usd_per_hour / usd_per_hour + 1e-9) if usd_per_hour else max_workers
    return max(1, min(max_workers, by_price))


def wall_time(chapter_gpu_s: Sequence[float], workers: int, queued_gpu_s: float) -> float:
    """Queued work spread over the pool, then the book's chapters."""
    return queued_gpu_s / workers + makespan(chapter_gpu_s, workers)


def estimate_book(chapter_chars: Sequence[int], inputs: EstimateInputs) -> BookEstimate:
    gpu = tuple(chars * inputs.gpu_seconds_per_char for chars in chapter_chars)
    audio = tuple(chars * inputs.spoken_seconds_per_char for chars in chapter_chars)
    total_gpu = sum(gpu)
    queued = inputs.queued_gpu_s or 0.0
    now = (wall_time(gpu, inputs.workers, queued) if inputs.workers else None)
    cap = inputs.max_workers
    # From an empty pool the first workers must boot; a running pool grows while the first chapters run.
    at_cap = wall_time(gpu, cap, queued) + (inputs.boot_s if not inputs.workers else 0.0)
    usd = None if inputs.usd_per_hour is None else total_gpu / 3600 * inputs.usd_per_hour
    return BookEstimate(characters=sum(chapter_chars), audio_s=sum(audio), gpu_s=total_gpu, usd=usd,
                        wall_s_now=now, wall_s_at_cap=at_cap, workers_at_cap=cap, chapter_gpu_s=gpu,
                        chapter_audio_s=audio)
