"""`audiobook up` and `audiobook down`: the whole system on this machine, in the background (tasks/localstack.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tasks.cli import CliError

DEFAULT_RUN_DIR = Path(__file__).resolve().parents[2] / "var" / "up"


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "up", help="start control, beat, Flower and the local scaler in the background",
        description="Start the whole system on this machine on the embedded defaults (a private redis-server "
                    "if no Redis answers; the scaler starts GPU-queue workers as chapters arrive). "
                    "Flower's generated password is shown once.")
    up.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="where logs and stack.json go")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the processes to serve")
    up.set_defaults(func=run_up)
    down = subparsers.add_parser("down", help="stop everything `up` started, scaler-started workers included")
    down.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    down.add_argument("--grace", type=float, default=30.0,
                      help="seconds a running chapter gets to finish before it goes back to the queue")
    down.set_defaults(func=run_down)


def _say(message: str) -> None:
    print(f"up: {message}", flush=True)


def run_up(args: argparse.Namespace) -> int:
    from settings import SettingsError
    from tasks.localstack import HONCHO_COMMAND, StackError, up

    try:
        stack, password = up(args.run_dir.resolve(), os.environ, _say, timeout=args.timeout)
    except (StackError, SettingsError) as exc:
        raise CliError(str(exc)) from None
    print(f"up: `{HONCHO_COMMAND}` is running in the background (logs: {stack.log}); the local scaler starts "
          "GPU-queue workers as chapters arrive")
    print(f"  broker   {stack.broker}")
    print(f"  model    {stack.model}")
    shown = f"password {password}  (shown only now)" if password else "password from FLOWER_BASIC_AUTH"
    print(f"  Flower   {stack.flower_url}  user {stack.flower_user}  {shown}")
    print("next: .venv/bin/audiobook submit samples/book.md --wait    stop: make down (.venv/bin/audiobook down)")
    return 0


def run_down(args: argparse.Namespace) -> int:
    from tasks.localstack import StackError, down

    try:
        down(args.run_dir.resolve(), lambda message: print(f"down: {message}", flush=True), grace=args.grace)
    except StackError as exc:
        raise CliError(str(exc)) from None
    return 0
