"""`audiobook deadletter list|show|requeue|purge`: the messages workers could not read (tasks.deadletter)."""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("deadletter", help="messages no worker could read: list, requeue, purge",
                                   description="Messages taken off a queue because no worker could read them.")
    sub = parser.add_subparsers(dest="deadletter_command", required=True)
    listing = sub.add_parser("list", help="every dead letter, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line, body included")
    listing.set_defaults(func=run_list)
    show = sub.add_parser("show", help="one dead letter in full (JSON)")
    show.add_argument("letter_id")
    show.set_defaults(func=run_show)
    for name, helptext, func in (("requeue", "send dead letters to their queue again, byte for byte", run_requeue),
                                 ("purge", "delete dead letters for good", run_purge)):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("letter_ids", nargs="*", metavar="ID")
        command.add_argument("--all", action="store_true", help="every dead letter")
        command.set_defaults(func=func)


def _store():  # noqa: ANN202
    from tasks.deadletter import DeadLetterStore
    from tasks.runtime import get_storage

    return DeadLetterStore(get_storage())


def _chosen(args: argparse.Namespace) -> list:
    store = _store()
    if args.all == bool(args.letter_ids):
        raise CliError("name dead letters by id, or pass --all")
    if args.all:
        return store.list()
    letters = []
    for letter_id in args.letter_ids:
        letter = store.get(letter_id)
        if letter is None:
            raise CliError(f"no dead letter {letter_id!r} (see `audiobook deadletter list`)")
        letters.append(letter)
    return letters


def run_list(args: argparse.Namespace) -> int:
    letters = _store().list()
    if args.json:
        for letter in letters:
            print(json.dumps(letter.to_json(), sort_keys=True))
        return 0
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("id", "queue", "task", "task id", "problem", "received"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(letter.id, letter.queue or "", letter.task_name or "", letter.task_id or "", letter.problem,
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.received_at)))
    Console(width=200).print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    letter = _store().get(args.letter_id)
    if letter is None:
        raise CliError(f"no dead letter {args.letter_id!r} (see `audiobook deadletter list`)")
    print(json.dumps(letter.to_json(), indent=2, sort_keys=True))
    return 0


def run_requeue(args: argparse.Namespace) -> int:
    from tasks import app
    from tasks.deadletter import republish

    store = _store()
    letters = _chosen(args)
    with app.connection_for_write() as conn:
        for letter in letters:
            queue = app.amqp.queues.get(letter.queue) if letter.queue else None
            republish(conn, letter, queue)
            store.delete(letter.id)
            print(f"requeued {letter.id} to {letter.queue}")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    store = _store()
    for letter in _chosen(args):
        store.delete(letter.id)
        print(f"purged {letter.id}")
    return 0
