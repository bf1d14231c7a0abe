"""`audiobook usage [--since DATE] [--by KEY]`: characters, audio hours, GPU hours and USD from storage."""

from __future__ import annotations

import argparse
import json

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "usage", help="totals of characters, audio hours, GPU hours and USD, by a metadata key",
        description="Read every chapter's usage record from storage (AUDIOBOOK_STORAGE_URL) and total them, "
                    "optionally since a date and grouped by a key of the `metadata` clients set (e.g. customer).")
    parser.add_argument("--since", help="count chapters finished at or after this date or time (ISO 8601, UTC)")
    parser.add_argument("--by", help="group by this metadata key (chapters without it are under '(none)')")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from settings import SettingsError, get_settings
    from synth.errors import StorageError
    from synth.storage import open_storage
    from synth.usage import parse_time, read_ledger, total, totals

    since = None
    if args.since:
        try:
            since = parse_time(args.since)
        except ValueError:
            raise CliError(f"--since must be an ISO 8601 date or time (e.g. 2025-01-31), not {args.since!r}") from None
    if args.by is not None and not args.by.strip():
        raise CliError("--by needs a metadata key")
    try:
        records = read_ledger(open_storage(get_settings().storage_uri), since)
    except (SettingsError, StorageError) as exc:
        raise CliError(str(exc)) from None
    groups = totals(records, args.by)
    overall = total("total", records)
    if args.json:
        print(json.dumps({"since": since.isoformat() if since else None, "by": args.by,
                          "groups": [g.to_json() for g in groups], "total": overall.to_json()}, indent=2))
        return 0
    rows = [(args.by or "", "books", "chapters", "characters", "audio h", "GPU h", "USD", "unpriced")]
    for row in [*groups, overall] if args.by else [overall]:
        rows.append((row.group, f"{row.books}", f"{row.chapters}", f"{row.characters:,}", f"{row.audio_hours:.3f}",
                     f"{row.gpu_hours:.4f}", f"{row.usd:.4f}", f"{row.unpriced_chapters}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                       strict=True))))
    if since:
        print(f"since {since.isoformat()}")
    return 0
