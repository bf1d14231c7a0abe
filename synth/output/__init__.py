"""Book files (M4B, MP3, FLAC) from chapter audio: loudness matched, chapter-marked, streamed through ffmpeg."""

from synth.output.assemble import BOOK_FORMATS, assemble_book_file
from synth.output.book import BookFile, BookOptions, ChapterAudio, write_book
from synth.output.ffmpeg import ChapterMark, read_chapter_marks
from synth.output.loudness import Loudness, measure_file

__all__ = ["BOOK_FORMATS", "BookFile", "BookOptions", "ChapterAudio", "ChapterMark", "Loudness",
           "assemble_book_file", "measure_file", "read_chapter_marks", "write_book"]
