"""formcheck: rep-by-rep form checks for single-leg dips and squats from video.

>>> import formcheck
>>> result = formcheck.analyze("clip.mp4")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from formcheck.errors import FormcheckError

__version__ = "0.1.0"

__all__ = ["Analysis", "FormcheckError", "__version__", "analyze"]

if TYPE_CHECKING:
    from formcheck.analysis import Analysis, analyze


def __getattr__(name: str):
    # Lazy: importing formcheck (e.g. for its CLI's --help) does not load MediaPipe.
    if name in ("analyze", "Analysis"):
        from formcheck import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'formcheck' has no attribute {name!r}")
