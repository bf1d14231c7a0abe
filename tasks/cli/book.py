"""`audiobook submit PATH` and `audiobook status BOOK_ID`."""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from tasks.cli import CliError

if TYPE_CHECKING:
    from synth.ingest.model import Cover

OUTPUTS = ("m4b", "mp3", "flac")


def register(subparsers: argparse._SubParsersAction) -> None:
    submit = subparsers.add_parser("submit", help="submit a .txt/.md/.epub book for synthesis")
    submit.add_argument("path", type=Path)
    submit.add_argument("--title", help="book title (default: from the file)")
    submit.add_argument("--author", help="book author (default: from the file)")
    submit.add_argument("--cover", type=Path, help="JPEG or PNG cover art (default: an EPUB's own cover)")
    submit.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="client metadata kept with every chapter's usage (repeatable), e.g. customer=acme")
    submit.add_argument("--voice")
    submit.add_argument("--format", default="m4b", help="book file: m4b (default), mp3 or flac")
    submit.add_argument("--book-id", help="default: derived from the title and the text")
    submit.add_argument("--marker", help="chapter marker for text files (default: '#' headings)")
    submit.add_argument("--wait", action="store_true", help="show live progress until the book is done")
    submit.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a control worker")
    submit.set_defaults(func=run_submit)

    status = subparsers.add_parser("status", help="per-chapter state, durations and outputs of a book")
    status.add_argument("book_id")
    status.set_defaults(func=run_status)


def book_id_for(title: str, chapters: list[dict]) -> str:
    """A readable, stable id: the same book submitted again reuses its finished chapters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "book"
    digest = hashlib.sha256("\x00".join(c["text"] for c in chapters).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` options as a dict (the task validates sizes and characters)."""
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--metadata must be KEY=VALUE, not {pair!r}")
        metadata[key.strip()] = value
    return metadata


def read_cover(path: Path) -> Cover:
    from synth.images import image_type
    from synth.ingest.model import Cover

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read cover {path}: {exc.strerror or exc}") from None
    kind = image_type(data[:16])
    if kind is None:
        raise CliError(f"cover {path} is not a JPEG or PNG image")
    return Cover(data=data, kind=kind)


def submit_book(path: Path, *, title: str | None = None, author: str | None = None, voice: str | None = None,
                output: str = "m4b", book_id: str | None = None, marker: str | None = None,
                cover: Path | None = None, metadata: dict[str, str] | None = None,
                timeout: float = 30.0) -> dict:
    """Read the book, put its cover (`cover`, else the EPUB's) in storage, enqueue `audiobook.synthesize_book`,
    and return its submission result."""
    from celery.states import READY_STATES

    from synth.errors import IngestError
    from tasks import app
    from tasks.bookstatus import task_meta

    if output not in OUTPUTS:
        raise CliError(f"unknown format {output!r}; use one of {', '.join(OUTPUTS)}")
    try:
        from synth.ingest import read_book

        book = read_book(path, marker=marker)
    except IngestError as exc:
        raise CliError(str(exc)) from None
    chapters = book.chapter_payloads()
    title = title or book.title or path.stem
    art = read_cover(cover) if cover else book.cover
    kwargs = {"book_id": book_id or book_id_for(title, chapters), "title": title, "chapters": chapters,
              "output": output}
    kwargs |= {k: v for k, v in {"author": author or book.author, "voice": voice, "metadata": metadata}.items() if v}
    if art is not None and output != "none":
        from synth.errors import StorageError
        from tasks.runtime import get_storage

        key = f"{kwargs['book_id']}/cover{art.suffix}"
        try:
            get_storage().put_bytes(key, art.data, f"image/{art.kind}")
        except StorageError as exc:
            raise CliError(f"cannot store the cover: {exc}") from None
        kwargs["cover"] = key
    task_id = app.send_task("audiobook.synthesize_book", kwargs=kwargs, queue="control").id
    # Poll the backend rather than result.get(): no pub/sub subscription outlives the command.
    deadline = time.monotonic() + timeout
    while (state := task_meta(app, task_id))[0] not in READY_STATES:
        if time.monotonic() > deadline:
            raise CliError(f"book {kwargs['book_id']} is queued, but no control worker took it within {timeout:g} s "
                           "(is the system up? `make up`)")
        time.sleep(0.2)
    if state[0] != "SUCCESS":  # the task's error, e.g. InvalidPayload, in one line
        raise CliError(f"{type(state[1]).__name__}: {state[1]}")
    return state[1]


def run_submit(args: argparse.Namespace) -> int:
    submitted = submit_book(args.path, title=args.title, author=args.author, voice=args.voice, output=args.format,
                            book_id=args.book_id, marker=args.marker, cover=args.cover,
                            metadata=parse_metadata(args.metadata), timeout=args.timeout)
    print(submitted["book_id"])
    if args.wait:
        final = follow_book(submitted["book_id"])
        if final.error:
            raise CliError(f"book {final.book_id} failed: {final.error}")
        print((final.result or {}).get("book_uri") or (final.result or {}).get("manifest_uri"))
    return 0


def follow_book(book_id: str, console: Console | None = None, timeout: float | None = None):  # noqa: ANN201
    from settings import get_settings
    from tasks import app
    from tasks.bookstatus import book_status
    from tasks.progress import follow, pool_snapshot
    from tasks.runtime import get_storage

    storage = get_storage()
    return follow(lambda: book_status(app, storage, book_id), pool_snapshot(app, get_settings()),
                  console=console, timeout=timeout)


def run_status(args: argparse.Namespace) -> int:
    from settings import get_settings
    from tasks import app
    from tasks.bookstatus import book_status
    from tasks.poolhealth import chapter_label, pool_health, waiting_reason
    from tasks.runtime import get_storage

    status = book_status(app, get_storage(), args.book_id)
    if status is None:
        raise CliError(f"no book with id {args.book_id!r} was submitted")
    waiting = waiting_reason(pool_health(app, get_settings())) if not status.finished else None
    table = Table(title=f"{status.title or status.book_id} ({status.book_id})")
    for column in ("chapter", "title", "state", "progress", "audio s", "worker", "output"):
        table.add_column(column)
    for chapter in status.chapters:
        progress = f"{chapter.done}/{chapter.total}" if chapter.total else ""
        table.add_row(chapter.chapter_id, chapter.title or "", chapter_label(chapter.phase, waiting), progress,
                      f"{chapter.duration_s:.1f}" if chapter.duration_s else "", chapter.worker or "",
                      chapter.uri or chapter.error or "")
    console = Console(width=200) if not Console().is_terminal else Console()
    console.print(table)
    if waiting:
        console.print(f"[yellow]{waiting}[/] (see `audiobook scaler status`)")
    age = time.time() - status.submitted_at
    console.print(f"assembly: {status.assembly_state.lower()}   submitted {age:,.0f} s ago")
    if status.result:
        console.print(f"book: {status.result.get('book_uri') or '-'}\nmanifest: {status.result.get('manifest_uri')}")
    if status.error:
        console.print(f"[red]error: {status.error}[/]")
    return 1 if status.error else 0
