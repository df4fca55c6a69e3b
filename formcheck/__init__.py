"""formcheck: rep-by-rep form checks for single-leg dips and squats from video."""

from formcheck.errors import FormcheckError

__version__ = "0.1.0"

__all__ = ["FormcheckError", "__version__"]
