"""`audiobook resume BOOK_ID` and `audiobook cancel BOOK_ID` (tasks.lifecycle)."""

from __future__ import annotations

import argparse
import json

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    resume = subparsers.add_parser(
        "resume", help="send again every chapter of a book that has not finished, then assemble it",
        description="Re-enqueue what the broker lost (e.g. a Redis restarted empty): chapters without a final "
                    "object in storage, then the assembly. Finished chapters are not synthesized again.")
    resume.add_argument("book_id")
    resume.add_argument("--force", action="store_true", help="even if some chapters are reported running")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(func=run_resume)
    cancel = subparsers.add_parser(
        "cancel", help="stop a book: queued chapters leave the queue, running ones are terminated")
    cancel.add_argument("book_id")
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(func=run_cancel)


def run_resume(args: argparse.Namespace) -> int:
    from tasks import app
    from tasks.errors import BookInProgress
    from tasks.lifecycle import NoSuchBook, resume_book
    from tasks.runtime import get_storage

    try:
        report = resume_book(app, get_storage(), args.book_id, force=args.force)
    except (NoSuchBook, BookInProgress) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        print(f"book {report.book_id}: {len(report.requeued)} chapter(s) sent again, {len(report.finished)} already "
              f"finished; assembly {report.assembly_task_id}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from tasks import app
    from tasks.lifecycle import NoSuchBook, cancel_book
    from tasks.runtime import get_storage

    try:
        report = cancel_book(app, get_storage(), args.book_id)
    except NoSuchBook as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        print(f"book {report.book_id} cancelled: {report.unqueued} queued chapter(s) taken off the queue, "
              f"{len(report.revoked)} task(s) revoked")
    return 0
