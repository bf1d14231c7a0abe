"""`audiobook` command-line errors: one line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT


def audiobook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def one_line_error(run: subprocess.CompletedProcess, expected: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"^audiobook( \w+)?: error: ", lines[0]), run.stderr
    assert expected in lines[0] and "Traceback" not in run.stderr


def test_missing_file(tmp_path: Path) -> None:
    one_line_error(audiobook("submit", str(tmp_path / "nope.txt")), "no such file")


def test_empty_book(tmp_path: Path) -> None:
    book = tmp_path / "empty.md"
    book.write_text("\n   \n# \n\n")
    one_line_error(audiobook("submit", str(book)), "empty.md")


def test_unreadable_epub(tmp_path: Path) -> None:
    book = tmp_path / "broken.epub"
    book.write_bytes(b"this is not a zip archive")
    one_line_error(audiobook("submit", str(book)), "broken.epub")


def test_unknown_format(tmp_path: Path) -> None:
    book = tmp_path / "b.md"
    book.write_text("# One\n\nText.\n")
    one_line_error(audiobook("submit", str(book), "--format", "ogg"), "unknown format 'ogg'")


def test_unknown_extension(tmp_path: Path) -> None:
    book = tmp_path / "b.pdf"
    book.write_text("x")
    one_line_error(audiobook("submit", str(book)), "b.pdf")


def test_unknown_command_and_bad_option() -> None:
    one_line_error(audiobook("frobnicate"), "invalid choice")
    one_line_error(audiobook("submit"), "the following arguments are required: path")


@pytest.mark.slow
def test_status_of_an_unknown_book(redis_url: str, tmp_path: Path) -> None:
    import os

    env = os.environ | {"CELERY_BROKER_URL": redis_url, "AUDIOBOOK_STORAGE_URL": str(tmp_path)}
    one_line_error(audiobook("status", "never-submitted", env=env), "no book with id 'never-submitted'")


@pytest.mark.slow
def test_submit_with_no_control_worker_says_it_is_queued(redis_url: str, tmp_path: Path) -> None:
    import os

    book = tmp_path / "b.md"
    book.write_text("# One\n\nText here.\n")
    env = os.environ | {"CELERY_BROKER_URL": redis_url, "AUDIOBOOK_STORAGE_URL": str(tmp_path)}
    one_line_error(audiobook("submit", str(book), "--timeout", "1", env=env), "is queued, but no control worker")
