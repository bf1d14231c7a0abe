"""`audiobook preview "text"`: enqueue a preview by task name, wait for it, write the clip, print its path."""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview", help="speak the first seconds of a text",
        description="Enqueue audiobook.synthesize_preview, wait for it and write the clip to a file. Long "
                    "text is cut at a sentence to fit PREVIEW_MAX_SECONDS.")
    parser.add_argument("text", help="the text to read; '-' reads standard input")
    parser.add_argument("--voice", help="voice name (default: the model's first)")
    parser.add_argument("--format", choices=["wav", "flac"], default="wav")
    parser.add_argument("--requester", default="cli", help="who is asking, for the per-requester rate limit")
    parser.add_argument("--book-id", help="book the text comes from (recorded in the result)")
    parser.add_argument("--chapter-id", help="chapter the text comes from (needs --book-id)")
    parser.add_argument("-o", "--output", type=Path,
                        help="file to write (default: AUDIOBOOK_DOWNLOADS_DIR/previews/<hash>.<format>)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the result")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celery.exceptions import TimeoutError as ResultTimeout

    from settings import QUEUE_PREVIEW, get_settings
    from tasks import app

    text = sys.stdin.read() if args.text == "-" else args.text
    kwargs: dict[str, Any] = {"text": text, "requester": args.requester, "format": args.format}
    for name in ("voice", "book_id", "chapter_id"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    result = app.send_task("audiobook.synthesize_preview", kwargs=kwargs, queue=QUEUE_PREVIEW)
    try:
        value = result.get(timeout=args.timeout, propagate=False)
    except ResultTimeout:
        raise CliError(f"no preview within {args.timeout:g} s (is a worker consuming the "
                       f"'{QUEUE_PREVIEW}' queue?)") from None
    if result.failed():
        raise CliError(f"{type(value).__name__}: {value}")
    name = f"{value['key'].rsplit('/', 1)[-1][:12]}.{value['format']}"
    target = args.output or Path(get_settings().downloads_dir) / "previews" / name
    write_clip(value, target)
    print(target)
    return 0


def write_clip(result: dict[str, Any], target: Path) -> None:
    """The clip from a preview result: inline base64 when present, else fetched from its uri."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if "audio_b64" in result:
        target.write_bytes(base64.b64decode(result["audio_b64"]))
        return
    parts = urlsplit(result["uri"])
    if parts.scheme == "file":
        shutil.copyfile(unquote(parts.path), target)
    elif parts.scheme == "s3":
        from synth.storage.s3 import S3Storage

        if not S3Storage(parts.netloc).get_file(parts.path.lstrip("/"), target):
            raise CliError(f"{result['uri']} does not exist")
    else:
        raise CliError(f"cannot fetch {result['uri']}")
