"""One exception family for everything a user can get wrong.

The CLI turns any :class:`FormcheckError` into one line on stderr and a
non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FormcheckError(Exception):
    """Base class: a problem the user can fix (bad input, missing model, ...)."""

    exit_code: int = 1


class InputError(FormcheckError):
    """The input file is missing, unreadable, not a video, or truncated."""

    exit_code = 2


class NoPersonError(FormcheckError):
    """No person (or too little of one) was found in the clip."""

    exit_code = 3


class ModelError(FormcheckError):
    """The pose model file is missing, corrupt, or cannot be fetched."""

    exit_code = 4


class CameraError(FormcheckError):
    """A camera that is not there, is busy, or cannot be opened."""

    exit_code = 5


class OutputError(FormcheckError):
    """An output path that cannot be written (permissions, full disk, ...)."""

    exit_code = 6


class SettingsError(FormcheckError):
    """A malformed settings file, an unknown key, or a value out of range."""

    exit_code = 7
