"""`audiobook inspect PATH`: chapters, characters, audio length, GPU-hours, USD and wall time before submitting.

Nothing is submitted and no model is loaded. Prices and the pool size come from the scaler's last decision
record (what it last saw), else from the provider's own price; the output says which, or that it could not.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="estimate a book's audio length, GPU-hours, USD and wall time before submitting it",
        description="Read a .txt/.md/.epub book as `audiobook submit` would and estimate its audio length "
                    "(PREVIEW_SECONDS_PER_CHAR), GPU time (SCALER_SECONDS_PER_CHAR), cost at the GPU price, and "
                    "wall time at the current pool size (from the scaler's last decision record).")
    parser.add_argument("path", type=Path)
    parser.add_argument("--marker", help="chapter marker for text files (default: '#' headings)")
    parser.add_argument("--usd-per-hour", type=float, help="price of one GPU worker (default: the scaler's)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class PoolView:
    """What the CLI knows of the pool: workers, the price of the next one, the work queued, and from where."""

    workers: int | None = None
    usd_per_hour: float | None = None
    gpu_type: str | None = None
    queued_chars: int | None = None
    pending: int | None = None
    source: str = ""
    price_source: str = ""


def pool_from_record(record: dict[str, Any]) -> PoolView:
    """The pool as the scaler's last decision record saw it."""
    observation = record.get("observation") or {}
    serving = [w for w in observation.get("workers") or [] if w.get("state") in ("idle", "busy", "booting")]
    offers = observation.get("offers") or []
    workers = None
    if observation.get("workers_known"):
        workers = len(serving) + len(observation.get("unmanaged") or [])
    first = offers[0] if offers else {}
    return PoolView(workers=workers, usd_per_hour=first.get("usd_per_hour"), gpu_type=first.get("gpu_type"),
                    queued_chars=observation.get("queued_chars"), pending=observation.get("pending"),
                    source=f"the scaler's decision record of {record.get('at')}",
                    price_source=f"{first.get('gpu_type')} in the scaler's record" if first else "")


def read_pool(settings: Any) -> PoolView:
    """The scaler's last record, or a PoolView saying why there is none."""
    from scaler.tick import state_store
    from tasks import app

    try:
        records = state_store(app, settings).records(1)
    except Exception as exc:  # noqa: BLE001 - redis and config errors: reported, the estimate goes on
        return PoolView(source=f"the scaler's state is unreachable ({type(exc).__name__}: {exc})")
    if not records:
        return PoolView(source="the scaler has recorded no decision yet")
    return pool_from_record(records[0].to_dict())


def provider_price(settings: Any) -> tuple[float | None, str]:
    """The configured provider's price of its first GPU type, and where it came from."""
    from scaler.errors import ScalerError
    from scaler.providers import build_provider

    try:
        provider = build_provider(settings)
        gpu_type = provider.gpu_types()[0]
        return provider.price(gpu_type), f"the {provider.name} provider's price of {gpu_type}"
    except (ScalerError, IndexError) as exc:
        return None, f"unknown ({settings.scaler_provider} price: {exc})"


def run(args: argparse.Namespace) -> int:
    from scaler.estimate import EstimateInputs, estimate_book, workers_at_cap
    from settings import SettingsError, get_settings
    from synth.errors import IngestError
    from synth.ingest import read_book

    try:
        s = get_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    if args.usd_per_hour is not None and not 0 <= args.usd_per_hour < float("inf"):
        raise CliError(f"--usd-per-hour must be a finite number >= 0, not {args.usd_per_hour}")
    try:
        book = read_book(args.path, marker=args.marker)
    except IngestError as exc:
        raise CliError(str(exc)) from None

    pool = read_pool(s)
    price, price_source = pool.usd_per_hour, pool.price_source
    if args.usd_per_hour is not None:
        price, price_source = args.usd_per_hour, "--usd-per-hour"
    elif price is None:
        price, price_source = provider_price(s)
    queued = None if pool.queued_chars is None else pool.queued_chars * s.scaler_seconds_per_char
    cap = workers_at_cap(s.scaler_max_workers, s.scaler_max_usd_per_hour, price)
    inputs = EstimateInputs(gpu_seconds_per_char=s.scaler_seconds_per_char,
                            spoken_seconds_per_char=s.preview_seconds_per_char, usd_per_hour=price,
                            workers=pool.workers, max_workers=cap, queued_gpu_s=queued, boot_s=s.scaler_boot_s)
    chapters = book.chapter_payloads()
    estimate = estimate_book([len(c["text"]) for c in chapters], inputs)
    if args.json:
        print(json.dumps({
            "path": str(args.path), "title": book.title, "author": book.author, "chapters": [
                {"chapter_id": c["chapter_id"], "title": c["title"], "characters": len(c["text"]),
                 "audio_s": round(a, 1), "gpu_s": round(g, 1)}
                for c, a, g in zip(chapters, estimate.chapter_audio_s, estimate.chapter_gpu_s, strict=True)],
            "estimate": estimate.to_json(), "usd_per_hour": price, "price_source": price_source,
            "pool": {"workers": pool.workers, "pending": pool.pending, "queued_chars": pool.queued_chars,
                     "source": pool.source},
            "settings": {"SCALER_SECONDS_PER_CHAR": s.scaler_seconds_per_char,
                         "PREVIEW_SECONDS_PER_CHAR": s.preview_seconds_per_char}}, indent=2))
        return 0
    _print(book, chapters, estimate, price, price_source, pool, s)
    return 0


def clock(seconds: float) -> str:
    """`1h02m03s` / `4m05s` / `6s`."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _print(book, chapters, estimate, price, price_source, pool, s) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    table = Table(title=f"{book.title or '-'}" + (f" by {book.author}" if book.author else ""))
    for column in ("chapter", "title", "characters", "audio", "GPU"):
        table.add_column(column, justify="right" if column in ("characters", "audio", "GPU") else "left")
    for chapter, audio, gpu in zip(chapters, estimate.chapter_audio_s, estimate.chapter_gpu_s, strict=True):
        table.add_row(chapter["chapter_id"], chapter["title"] or "", f"{len(chapter['text']):,}", clock(audio),
                      clock(gpu))
    console.print(table)
    lines = [f"{len(chapters)} chapters, {estimate.characters:,} characters",
             f"audio: about {clock(estimate.audio_s)} (PREVIEW_SECONDS_PER_CHAR={s.preview_seconds_per_char:g})",
             f"GPU: {estimate.gpu_hours:.3f} GPU-hours (SCALER_SECONDS_PER_CHAR={s.scaler_seconds_per_char:g})"]
    if estimate.usd is None:
        lines.append(f"cost: unknown, no price: {price_source or 'none recorded'} (pass --usd-per-hour)")
    else:
        lines.append(f"cost: {estimate.usd:.2f} USD at {price:g} USD/hour ({price_source})")
    if pool.workers is None:
        lines.append(f"pool: size unknown: {pool.source}")
    else:
        lines.append(f"pool: {pool.workers} workers now ({pool.source})")
    if pool.queued_chars:
        lines.append(f"queued ahead: {pool.queued_chars:,} characters")
    elif pool.pending:
        lines.append(f"queued ahead: {pool.pending} chapters (their length is not recorded; not counted)")
    if estimate.wall_s_now is not None:
        lines.append(f"wall time at the current pool size ({pool.workers}): about {clock(estimate.wall_s_now)}")
    lines.append(f"wall time with the pool at its cap ({estimate.workers_at_cap} workers): about "
                 f"{clock(estimate.wall_s_at_cap)}")
    console.print("\n".join(lines), highlight=False)
