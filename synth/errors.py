"""Errors of the synthesis core. Callers catch SynthError; the subclasses say what went wrong."""


class SynthError(Exception):
    """Base of every synthesis error."""


class TextError(SynthError):
    """The text cannot be spoken as given (the message names the character or span)."""


class ModelLoadError(SynthError):
    """The model or its tokenizer could not be loaded from the hub id or directory."""


class StorageError(SynthError):
    """Reading or writing audio in storage failed; keeps the backend's message."""


class CheckpointError(SynthError):
    """A saved checkpoint does not match the chapter it is meant to resume."""


class IngestError(SynthError):
    """A book file cannot be read: missing, empty, unreadable or of an unknown kind (the message names it)."""


class EncodeError(SynthError):
    """Assembling or encoding a book file failed; keeps ffmpeg's own message."""


class ChapterPaused(SynthError):
    """Raised by a progress hook to stop a chapter at its last checkpoint on purpose; that delivery is not
    counted as an attempt, and the chapter resumes from the checkpoint when it is run again."""
