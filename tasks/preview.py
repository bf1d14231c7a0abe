"""`audiobook.synthesize_preview`: a short reading from the cache, the serverless endpoint, or this worker.

In order: validate; rate-limit the requester (PREVIEW_RATE_PER_MINUTE, shared in Redis); cut the text at a
sentence to fit PREVIEW_MAX_SECONDS; look in the cache (same normalised text, voice, model and format);
then, with RUNPOD_PREVIEW_ENDPOINT_ID, call the endpoint under the spend limits (tasks.preview_spend),
or without it (the embedded default) synthesize here with the same handler code. torch is imported only
for that local fallback; the endpoint path needs only runpod.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from typing import Any

from celery import Task
from celery.signals import worker_process_init

from settings import QUEUE_PREVIEW, Settings, get_settings
from synth.audio import FORMATS
from synth.errors import TextError
from synth.preview import cache_key, fit_text
from synth.storage import Storage
from tasks import app
from tasks.errors import InvalidPayload, PreviewFailed, PreviewRefused
from tasks.limits import RateLimiter, key_prefix, limits_redis
from tasks.payloads import PreviewRequest, validate
from tasks.preview_spend import SWEEP_BUDGET_S, preview_spend
from tasks.runtime import consumes, get_engine, get_storage

log = logging.getLogger(__name__)

# Results live in the result backend (Redis): clips up to this size also come back inline, larger by uri.
INLINE_MAX_BYTES = 256 * 1024
_CONTRACT = ("format", "sample_rate", "duration_s", "characters")


def _time_limit(s: Settings) -> float:
    """Every attempt may run to its timeout, plus HTTP calls, the longest backoff and a sweep of open jobs."""
    return (s.preview_max_retries + 1) * (s.preview_timeout_s + 25) + 30 + SWEEP_BUDGET_S + 10


_settings = get_settings()


@app.task(name="audiobook.synthesize_preview", bind=True, acks_late=False,
          soft_time_limit=_time_limit(_settings), time_limit=_time_limit(_settings) + 30)
def synthesize_preview_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    s = get_settings()
    request = validate(PreviewRequest, self.name, args, kwargs, max_chars=s.max_chapter_chars)
    _check_rate(request.requester, s)
    try:
        fitted = fit_text(request.text, s.preview_max_seconds, s.preview_seconds_per_char, s.max_chunk_chars)
    except TextError as exc:
        raise InvalidPayload(f"{self.name}: text: {exc}") from None
    storage = get_storage()
    key = cache_key(fitted.text, request.voice, s.model, request.format)
    summary = {"requester": request.requester, "book_id": request.book_id, "chapter_id": request.chapter_id,
               "voice": request.voice or "default", "model": s.model, "characters_in": fitted.characters_in,
               "cut": fitted.cut, "text": fitted.text, "key": key}

    hit = _cached(storage, key)
    if hit is not None:
        entry, data = hit
        return summary | entry | _inline(data) | {"cached": True, "backend": "cache", "delay_ms": 0,
                                                  "execution_ms": 0, "cost_usd": 0.0, "attempts": 0, "job_id": None}
    job_input = {"text": fitted.text, "voice": request.voice, "format": request.format}
    if s.runpod_preview_endpoint_id:
        output, usage = _on_endpoint(job_input, request.requester)
    else:
        output, usage = _locally(job_input)
    entry, data = _store(storage, key, output)
    log.info("preview %s", json.dumps({"task_id": self.request.id, "requester": request.requester, **usage,
                                       "duration_s": entry["duration_s"], "characters": entry["characters"]}))
    return summary | entry | _inline(data) | usage | {"cached": False}


def _check_rate(requester: str, s: Settings) -> None:
    limiter = RateLimiter(limits_redis(), s.preview_rate_per_minute, key_prefix() + "rate:")
    verdict = limiter.acquire(requester)
    if not verdict.allowed:
        raise PreviewRefused(
            f"rate limit: requester {requester!r} may ask for {s.preview_rate_per_minute} previews per minute "
            f"(PREVIEW_RATE_PER_MINUTE); retry in {math.ceil(verdict.retry_after_s * 10) / 10:g} s")


def _cached(storage: Storage, key: str) -> tuple[dict[str, Any], bytes | None] | None:
    entry = storage.get_json(key + ".json")
    if entry is None:
        return None
    audio_key = entry.pop("audio_key", None)
    if audio_key is None:
        return entry, None  # the endpoint stored the audio itself: its uri is the answer
    data = storage.get_bytes(audio_key) if entry.get("bytes", 0) <= INLINE_MAX_BYTES else None
    if data is None and not storage.exists(audio_key):
        return None
    return entry, data


def _store(storage: Storage, key: str, output: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """Keep the clip (when it came inline) and its cache entry; returns the entry and the clip's bytes."""
    missing = [name for name in _CONTRACT if name not in output]
    fmt = output.get("format")
    if missing or fmt not in FORMATS or not ("audio_b64" in output or "uri" in output):
        raise PreviewFailed(f"the preview endpoint broke the handler contract: missing {missing or 'audio'} "
                            f"or bad format {fmt!r} in {sorted(output)}")
    entry = {name: output[name] for name in _CONTRACT}
    data = None
    audio_key = None
    if "audio_b64" in output:
        try:
            data = base64.b64decode(output["audio_b64"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise PreviewFailed(f"the preview endpoint returned bad base64 audio: {exc}") from None
        audio_key = f"{key}.{fmt}"
        uri = storage.put_bytes(audio_key, data, FORMATS[fmt][2])
    else:
        uri = output["uri"]
    entry |= {"uri": uri, "bytes": None if data is None else len(data)}
    storage.put_json(key + ".json", entry | {"audio_key": audio_key})
    return entry, data


def _inline(data: bytes | None) -> dict[str, str]:
    if data is None or len(data) > INLINE_MAX_BYTES:
        return {}
    return {"audio_b64": base64.b64encode(data).decode("ascii")}


def _locally(job_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """No endpoint configured: the handler's own code on this worker's engine (loads torch on first use)."""
    from synth.serverless import ClipLimits, InvalidInput, run_preview

    started = time.perf_counter()
    try:
        engine = get_engine()
        output = run_preview(job_input, engine, ClipLimits.from_settings(get_settings(), engine))
    except InvalidInput as exc:
        raise InvalidPayload(f"audiobook.synthesize_preview: {exc}") from None
    execution_ms = round((time.perf_counter() - started) * 1000)
    return output, {"backend": "local", "delay_ms": 0, "execution_ms": execution_ms, "cost_usd": 0.0,
                    "attempts": 1, "job_id": None}


def _on_endpoint(job_input: dict[str, Any], requester: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """On the serverless endpoint, under the spend limits (jobs whose bill was left open are re-read first)."""
    spend = preview_spend()
    spend.settle_open()
    outcome, cost_usd = spend.call(job_input, requester)
    return outcome.output, {"backend": "runpod", "delay_ms": outcome.delay_ms, "execution_ms": outcome.execution_ms,
                            "cost_usd": cost_usd, "attempts": len(outcome.attempts), "job_id": outcome.job_id}


@worker_process_init.connect
def _warm_endpoint(**_: object) -> None:
    """Import runpod (about a second) and open the client at start, not in the first preview."""
    if consumes(QUEUE_PREVIEW) and get_settings().runpod_preview_endpoint_id:
        try:
            preview_spend()
        except Exception:  # the first preview reports it
            log.exception("preview endpoint client failed at worker start")
