"""Gap filling and One Euro smoothing of a :class:`~formcheck.pose.PoseSequence`.

Offline (files): :func:`smooth` fills short gaps (:func:`fill_gaps`), then runs
the One Euro filter forward and backward in time and averages the two passes,
which cancels the filter's lag. Live mode cannot see the future: it feeds one
:class:`OneEuroFilter` per array (``xyz``, ``world``) one frame at a time,
forward only (``OneEuroFilter.from_settings``); :func:`smooth_online` does the
same over a whole sequence, to preview what live mode shows. Short gaps are not
filled live (that needs the frame after the gap).

Every function is pure and returns a new sequence; the caller keeps the raw one.
Times always come from ``timestamps_ms``, so variable frame rates work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from formcheck.errors import SettingsError
from formcheck.pose import PoseSequence

# After a landmark has been missing this long, the filter forgets it and restarts
# from the next sample instead of dragging the old state across the gap.
DEFAULT_RESET_AFTER_S = 0.5


class SmoothingSettingsError(SettingsError, ValueError):
    """A smoothing setting out of range (a ValueError and a FormcheckError)."""


@dataclass(frozen=True)
class SmoothingSettings:
    """How landmarks are smoothed. Units: Hz, Hz per (unit/s), ms.

    The same settings apply to ``xyz`` (normalised image units, 1 = frame size)
    and ``world`` (metres): a person is ~0.5-0.9 frame heights and ~1.7 m tall,
    so the two units are within a factor of ~3 and one tuning fits both.
    """

    # Cutoff at rest. 1 Hz: One Euro paper's suggested starting point; with the
    # forward-backward pass it cuts still-landmark jitter >3x (tests).
    min_cutoff_hz: float = 1.0
    # Cutoff rise per unit/s of speed. beta is unit-dependent: MediaPipe's own
    # pose filter uses beta 80 (landmarks per body size) and 40 (world metres)
    # (pose_landmark_filtering.pbtxt), not the 0.007 tuned for mouse pixels. A
    # knee moving 0.25-0.5 frame/s then opens the cutoff to ~3-6 Hz; with beta
    # 0.3 a 2 s squat rep's peaks came out 17% flat, with 10 within 5% (tests).
    beta: float = 10.0
    # Cutoff of the speed estimate: One Euro paper and MediaPipe default.
    d_cutoff_hz: float = 1.0
    # Gaps up to this long are interpolated (~7 frames at 30 fps): short
    # detector drop-outs, not a person leaving the frame.
    max_gap_ms: float = 250.0
    enabled: bool = True

    def __post_init__(self) -> None:
        checks = (
            ("min_cutoff_hz", self.min_cutoff_hz, lambda v: v > 0, "> 0"),
            ("beta", self.beta, lambda v: v >= 0, ">= 0"),
            ("d_cutoff_hz", self.d_cutoff_hz, lambda v: v > 0, "> 0"),
            ("max_gap_ms", self.max_gap_ms, lambda v: v >= 0, ">= 0"),
        )
        for name, value, ok, rule in checks:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
                raise SmoothingSettingsError(
                    f"smoothing setting {name} must be a finite number {rule}, got {value!r}")
        if not isinstance(self.enabled, bool):
            raise SmoothingSettingsError(f"smoothing setting enabled must be true or false, "
                                         f"got {self.enabled!r}")


class OneEuroFilter:
    """One Euro filter (Casiez, Roussel & Vogel, CHI 2012), elementwise over any shape.

    A first-order low-pass whose cutoff rises with speed:
    ``cutoff = min_cutoff_hz + beta * |speed|``, the speed itself low-passed at
    ``d_cutoff_hz``. Each element (e.g. each of (33, 3)) keeps its own state and
    its own last time, so a landmark missing in some frames does not disturb the
    others. A NaN element returns NaN and leaves its state untouched; after
    ``reset_after_s`` without a sample the element restarts from the new value.
    """

    def __init__(self, min_cutoff_hz: float = SmoothingSettings.min_cutoff_hz,
                 beta: float = SmoothingSettings.beta,
                 d_cutoff_hz: float = SmoothingSettings.d_cutoff_hz,
                 reset_after_s: float = DEFAULT_RESET_AFTER_S) -> None:
        SmoothingSettings(min_cutoff_hz=min_cutoff_hz, beta=beta, d_cutoff_hz=d_cutoff_hz)
        if not reset_after_s > 0:
            raise SmoothingSettingsError(f"reset_after_s must be > 0, got {reset_after_s!r}")
        self.min_cutoff_hz = float(min_cutoff_hz)
        self.beta = float(beta)
        self.d_cutoff_hz = float(d_cutoff_hz)
        self.reset_after_s = float(reset_after_s)
        self.reset()

    @classmethod
    def from_settings(cls, settings: SmoothingSettings,
                      reset_after_s: float = DEFAULT_RESET_AFTER_S) -> "OneEuroFilter":
        return cls(settings.min_cutoff_hz, settings.beta, settings.d_cutoff_hz, reset_after_s)

    def reset(self) -> None:
        """Forget everything; the next sample is passed through unchanged."""
        self._x: np.ndarray | None = None    # filtered value
        self._dx: np.ndarray | None = None   # filtered speed, units/s
        self._t: np.ndarray | None = None    # last time each element had a sample, s
        self._last_t_s = -math.inf

    @staticmethod
    def _alpha(dt_s: np.ndarray, cutoff_hz: np.ndarray | float) -> np.ndarray:
        r = 2.0 * math.pi * cutoff_hz * dt_s
        return r / (r + 1.0)

    def __call__(self, t_s: float, x: np.ndarray) -> np.ndarray:
        """Filter one sample taken at ``t_s`` seconds; returns the filtered sample."""
        x = np.asarray(x, dtype=np.float64)
        if not t_s > self._last_t_s:
            raise ValueError(f"OneEuroFilter: time {t_s} s is not after the previous {self._last_t_s} s")
        self._last_t_s = t_s
        if self._x is None or self._x.shape != x.shape:
            self._x = np.full(x.shape, np.nan)
            self._dx = np.zeros(x.shape)
            self._t = np.full(x.shape, np.nan)
        assert self._dx is not None and self._t is not None
        valid = ~np.isnan(x)
        with np.errstate(invalid="ignore"):
            dt = t_s - self._t                      # NaN where never seen
            fresh = valid & ~(dt <= self.reset_after_s)
        upd = valid & ~fresh
        self._x[fresh] = x[fresh]
        self._dx[fresh] = 0.0
        if upd.any():
            d = dt[upd]
            x_prev = self._x[upd]
            speed = (x[upd] - x_prev) / d
            dx = self._dx[upd] + self._alpha(d, self.d_cutoff_hz) * (speed - self._dx[upd])
            cutoff = self.min_cutoff_hz + self.beta * np.abs(dx)
            self._x[upd] = x_prev + self._alpha(d, cutoff) * (x[upd] - x_prev)
            self._dx[upd] = dx
        self._t[valid] = t_s
        return np.where(valid, self._x, np.nan)


def _filter_array(times_s: np.ndarray, values: np.ndarray, settings: SmoothingSettings,
                  backward: bool = False) -> np.ndarray:
    """Run a fresh One Euro filter over (T, ...) ``values``; backward runs in reverse time."""
    filt = OneEuroFilter.from_settings(settings)
    out = np.empty_like(values)
    order = range(len(times_s) - 1, -1, -1) if backward else range(len(times_s))
    for i in order:
        out[i] = filt(-times_s[i] if backward else times_s[i], values[i])
    return out


def fill_gaps(seq: PoseSequence, max_gap_ms: float) -> PoseSequence:
    """Linearly interpolate (in time) short runs of missing values.

    Each element of ``xyz``, ``world`` and ``visibility`` is treated on its own,
    so a landmark missing in an otherwise detected frame is filled too. A run is
    filled when it has a valid sample on both sides and lasts at most
    ``max_gap_ms``, measured from its first missing frame to the frame where the
    value returns (5 missing frames at 30 fps = 167 ms). Longer runs and
    leading/trailing runs stay NaN. A filled frame's visibility is the lower of
    the two ends' visibilities: an interpolated point is no more trustworthy
    than its weaker neighbour.
    """
    if max_gap_ms < 0:
        raise SmoothingSettingsError(f"max_gap_ms must be >= 0, got {max_gap_ms!r}")
    t = seq.timestamps_ms
    return seq.with_arrays(xyz=_fill(t, seq.xyz, max_gap_ms, "linear"),
                           world=_fill(t, seq.world, max_gap_ms, "linear"),
                           visibility=_fill(t, seq.visibility, max_gap_ms, "min"))


def _fill(t: np.ndarray, values: np.ndarray, max_gap_ms: float, how: str) -> np.ndarray:
    """Fill short NaN runs of each column of (T, ...) ``values``; see :func:`fill_gaps`."""
    n = len(t)
    flat = values.reshape(n, -1)
    out = flat.copy()
    missing = np.isnan(flat)
    if n < 3 or not missing.any():
        return out.reshape(values.shape)
    idx = np.arange(n)[:, None]
    # Index of the last valid row at or before each row (-1: none), and of the
    # first valid row at or after it (n: none).
    prev = np.maximum.accumulate(np.where(missing, -1, idx), axis=0)
    nxt = np.minimum.accumulate(np.where(missing, n, idx)[::-1], axis=0)[::-1]
    fill = missing & (prev >= 0) & (nxt < n)
    p, q = np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1)
    first_missing = np.clip(p + 1, 0, n - 1)
    fill &= (t[q] - t[first_missing]) <= max_gap_ms
    y0 = np.take_along_axis(flat, p, axis=0)
    y1 = np.take_along_axis(flat, q, axis=0)
    if how == "min":
        guess = np.minimum(y0, y1)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            w = (t[:, None] - t[p]) / (t[q] - t[p])
        guess = y0 + w * (y1 - y0)
    out[fill] = guess[fill]
    return out.reshape(values.shape)


def smooth(seq: PoseSequence, settings: SmoothingSettings = SmoothingSettings()) -> PoseSequence:
    """Offline, zero-lag smoothing: :func:`fill_gaps`, then One Euro forward and backward, averaged.

    Applies to ``xyz`` and ``world``; ``visibility`` is only gap-filled. Frames
    still missing after gap filling stay NaN. With ``settings.enabled`` false
    the sequence is returned unchanged.
    """
    if not settings.enabled or len(seq) == 0:
        return seq
    filled = fill_gaps(seq, settings.max_gap_ms)
    raw = np.stack([filled.xyz, filled.world], axis=1)        # (T, 2, 33, 3): one pass for both
    forward = _filter_array(filled.times_s, raw, settings)
    backward = _filter_array(filled.times_s, raw, settings, backward=True)
    both = 0.5 * (forward + backward)
    return filled.with_arrays(xyz=both[:, 0], world=both[:, 1])


def smooth_online(seq: PoseSequence, settings: SmoothingSettings = SmoothingSettings()) -> PoseSequence:
    """What live mode shows: One Euro forward only, frame by frame, no gap filling.

    It lags the movement (a few frames); use :func:`smooth` for files.
    """
    if not settings.enabled or len(seq) == 0:
        return seq
    both = _filter_array(seq.times_s, np.stack([seq.xyz, seq.world], axis=1), settings)
    return seq.with_arrays(xyz=both[:, 0], world=both[:, 1])
