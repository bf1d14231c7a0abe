"""Start Flower behind basic auth: refuses to start without FLOWER_BASIC_AUTH.

The credentials travel in the environment (Flower reads FLOWER_* variables itself), never on the command
line where `ps` would show them.
"""

from __future__ import annotations

import os
import sys

from settings import get_settings


def auth_problem(secret: str) -> str | None:
    """What is wrong with a FLOWER_BASIC_AUTH value (None when it is usable); never echoes the value."""
    if not all(":" in pair and pair.split(":", 1)[0] and pair.split(":", 1)[1] for pair in secret.split(",")):
        return "FLOWER_BASIC_AUTH must be set to user:password (comma-separate several)"
    return None


def main(argv: list[str] | None = None) -> int:
    auth = get_settings().flower_basic_auth
    secret = auth.get_secret_value() if auth else ""
    problem = auth_problem(secret)
    if problem:
        print(f"flower: {problem}; refusing to serve Flower without auth", file=sys.stderr)
        return 2
    os.environ["FLOWER_BASIC_AUTH"] = secret
    os.environ.setdefault("FLOWER_ADDRESS", "127.0.0.1")
    os.environ.setdefault("FLOWER_PORT", "5555")
    args = [sys.executable, "-m", "celery", "-A", "tasks", "flower", *(argv if argv is not None else sys.argv[1:])]
    os.execv(sys.executable, args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
