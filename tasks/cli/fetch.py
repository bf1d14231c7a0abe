"""`audiobook fetch BOOK_ID [--out PATH]`: the finished book file, downloaded, or a presigned URL on S3."""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fetch", help="download a finished book file (or print a presigned URL when storage is S3)",
        description="Read BOOK_ID's manifest from storage and download its book file to --out (default: "
                    "AUDIOBOOK_DOWNLOADS_DIR/books/BOOK_ID.<format>). With S3 storage and no --out, print a "
                    "presigned URL instead.")
    parser.add_argument("book_id")
    parser.add_argument("--out", type=Path, help="file (or existing directory) to write the book to")
    parser.add_argument("--expires", type=int, default=3600, help="seconds a presigned URL stays valid (S3)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from settings import SettingsError, get_settings
    from synth.errors import StorageError
    from synth.storage import open_storage
    from tasks.payloads import Identifier

    try:
        TypeAdapter(Identifier).validate_python(args.book_id)
    except ValidationError as exc:
        raise CliError(f"BOOK_ID {args.book_id!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if not 1 <= args.expires <= 7 * 24 * 3600:
        raise CliError(f"--expires must be between 1 and 604800 seconds, not {args.expires}")
    try:
        s = get_settings()
        storage = open_storage(s.storage_uri)
        manifest = storage.get_json(f"{args.book_id}/manifest.json")
        if manifest is None:
            raise CliError(f"book {args.book_id!r} has no manifest yet: is it finished? (audiobook status "
                           f"{args.book_id})")
        key = manifest.get("book_key")
        if not key:
            raise CliError(f"book {args.book_id!r} was made without a book file (output none): its chapters are "
                           "listed in its manifest")
        if args.out is None:
            url = storage.share_url(key, args.expires)
            if url is not None:
                print(url)
                return 0
        target = args.out or Path(s.downloads_dir) / "books" / f"{args.book_id}.{manifest.get('book_format')}"
        if target.is_dir():
            target = target / f"{args.book_id}.{manifest.get('book_format')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        try:
            if not storage.get_file(key, partial):
                raise CliError(f"the manifest of {args.book_id!r} names {key!r}, which is missing from storage")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    except (SettingsError, StorageError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.out or 'the book'}: {exc.strerror or exc}") from None
    print(target)
    return 0
