"""Repetitions from a depth signal: offline segmentation and a live counter.

The input is one number per frame, the **depth**: the hip centre's drop below
its standing height over the standing leg length (hip to stance ankle). 0 =
standing tall, ~0.15-0.35 for a single-leg dip to chair height, 0.35-0.6 for a
deep squat, NaN where no person was found. A ratio of two lengths in the same
image, it needs no calibration and works in any view; :func:`depth_signal`
builds it from pixels.

A rep is one excursion of the smoothed depth (centred moving median over
``smoothing_s``), found with hysteresis: it is armed at ``min_depth``; with P
its peak, it ends at the first sample back at or below ``start_fraction * P``
and starts at the last such sample before the peak (so start/end are these
crossings, later/earlier than the first/last visible movement). Two dips with
a valley between them of at most ``split_fraction`` of both peaks are two
reps, split at the valley. The bottom is the middle of the frames within
``bottom_fraction`` of P (the middle of a pause at the bottom).

NaN gaps up to ``max_gap_s`` are skipped; longer ones split the signal. Reps
cut by a gap ("person lost") or the clip's ends, longer than
``max_duration_s``, or below ``partial_fraction`` of the typical peak of the
complete reps ("shallow": the median of the peaks not shallow next to the deepest) have ``partial=True`` and a ``reason`` and are not
counted; excursions shorter than ``min_duration_s`` are dropped.

:func:`segment_reps` (offline) and :class:`RepCounter` (live) run the same
code one sample at a time (live waits half the median window), so they find
the same reps. Only "shallow" differs: offline compares with all the set's
complete reps, live with those of the set so far, this one included (so a
first rep is never shallow live; :meth:`RepCounter.new_set` starts a set).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from dataclasses import dataclass, fields, replace

import numpy as np

from formcheck.errors import SettingsError

SHALLOW = "shallow"
CUT_AT_START = "cut off by the start of the clip"
CUT_AT_END = "cut off by the end of the clip"
PERSON_LOST = "person lost"
TOO_LONG = "too long for a rep (a hold?)"

# Slack on window edges, s: 10 fps timestamps like 0.30000000000000004 must still
# fall inside a +-0.1 s window.
_EPS_S = 1e-6


class RepSettingsError(SettingsError, ValueError):
    """A rep setting out of range (a ValueError and a FormcheckError)."""


@dataclass(frozen=True)
class RepSettings:
    """How reps are found. Depths are fractions of the standing leg length; times in s."""

    # Arming depth: above standing noise (+-0.02) and walking wiggles (+-0.03).
    min_depth: float = 0.06
    # Start/end level, x own peak (0.03 of a 0.15 dip): clear of noise and of a bent knee.
    start_fraction: float = 0.2
    # A valley <= this x both peaks splits two reps (half way up); a bottom wobble doesn't.
    split_fraction: float = 0.5
    # Bottom = middle of frames within 5 % of the peak: <= 2.5 frames off at 0.005 noise.
    bottom_fraction: float = 0.05
    # Shorter is a glitch: the fastest labelled real rep (labels_reps.tsv) takes 1.1 s.
    min_duration_s: float = 0.5
    # Longer is a hold (wall sit), not a rep: the slowest labelled real rep takes 4.7 s.
    max_duration_s: float = 12.0
    # Below this x the typical peak of complete reps is "shallow": half way is not a rep.
    partial_fraction: float = 0.5
    # Median window: >= 3 samples at 10-12 fps, short against a >= 0.5 s descent.
    smoothing_s: float = 0.2
    # Longer NaN gaps split the signal; shorter detector drop-outs are skipped.
    max_gap_s: float = 0.5
    # depth_signal closing window: fills dips shorter than it (slowest real rep 4.7 s).
    standing_window_s: float = 6.0

    def __post_init__(self) -> None:
        rules = {
            "min_depth": (lambda v: 0 < v < 1, "in (0, 1)"),
            "start_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
            "split_fraction": (lambda v: self.start_fraction < v < 1, "in (start_fraction, 1)"),
            "bottom_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
            "min_duration_s": (lambda v: v >= 0, ">= 0"),
            "max_duration_s": (lambda v: v > self.min_duration_s, "> min_duration_s"),
            "partial_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
            "smoothing_s": (lambda v: v >= 0, ">= 0"),
            "max_gap_s": (lambda v: v > 0, "> 0"),
            "standing_window_s": (lambda v: v > 0, "> 0"),
        }
        for f in fields(self):
            value = getattr(self, f.name)
            ok, rule = rules[f.name]
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or not ok(value)):
                raise RepSettingsError(
                    f"rep setting {f.name} must be a finite number {rule}, got {value!r}")


@dataclass(frozen=True)
class Rep:
    """One repetition. Indices point into the caller's arrays (live: update calls).

    ``depth`` is the peak of the smoothed depth. ``partial`` reps are not counted;
    ``reason`` says why (one of the module's reason strings), "" for full reps.
    """

    start_s: float
    bottom_s: float
    end_s: float
    start_index: int
    bottom_index: int
    end_index: int
    depth: float
    partial: bool = False
    reason: str = ""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def descent_s(self) -> float:
        """Start crossing to bottom (middle of any bottom pause)."""
        return self.bottom_s - self.start_s

    @property
    def ascent_s(self) -> float:
        return self.end_s - self.bottom_s


def depth_signal(hip_y_px: np.ndarray, ankle_y_px: np.ndarray, times_s: np.ndarray,
                 settings: RepSettings | None = None, *,
                 scale_px: np.ndarray | None = None) -> np.ndarray:
    """Depth per frame: ``1 - L / L_standing``, with L = ankle_y - hip_y (pixels, y down).

    Args:
        hip_y_px: (T,) hip centre y; NaN where missing.
        ankle_y_px: (T,) stance ankle y (bilateral exercises: mean of both ankles).
        times_s: (T,) strictly increasing frame times.
        scale_px: (T,) optional: a body length a squat does not change (the trunk,
            hip centre to shoulder centre), to tell the clip's ends apart (below).

    ``L_standing`` follows the camera's scale: a morphological *closing* of L
    (after a ``smoothing_s`` moving median against noise and glitches): the
    maximum over a centred ``standing_window_s`` window, then the minimum of
    that. It fills every dip shorter than the window (reps, held bottoms) to
    the level around it, and passes monotonic changes (walking to the camera)
    and steps (zoom jumps between reps) unchanged, up to the clip's ends
    (padded with their end values). An end is padded with the largest L of its
    half window instead when L grows towards that end by more than
    ``_END_DIP`` while ``scale_px`` does not grow alike (at most a third as
    much): the clip starts (or ends) inside a rep, which is then cut off (and
    not counted), not a camera coming closer. Limits: a zoom *during* a rep
    gives it the lower of the levels before and after; a dip longer than the
    window (a wall sit) counts as standing; walking away and back within it
    looks like a dip; without ``scale_px`` a clip that starts at the bottom
    looks like one that starts standing.
    The envelope rides on the noise: standing depth sits ~2 sd of the smoothed
    L noise above 0 (~0.01 at 1 % noise). Frames with L missing or <= 0 are NaN.
    """
    settings = settings or RepSettings()
    t = np.asarray(times_s, dtype=np.float64)
    hip = np.asarray(hip_y_px, dtype=np.float64)
    ankle = np.asarray(ankle_y_px, dtype=np.float64)
    _check_times(t)
    if hip.shape != t.shape or ankle.shape != t.shape:
        raise ValueError(f"hip_y_px {hip.shape}, ankle_y_px {ankle.shape} and times_s "
                         f"{t.shape} must have the same (T,) shape")
    leg = ankle - hip
    with np.errstate(invalid="ignore"):
        leg = np.where(leg > 0, leg, np.nan)
    ok = np.isfinite(leg)
    if not ok.any():
        return np.full(t.shape, np.nan)
    tv, raw = t[ok], leg[ok].tolist()
    half = settings.smoothing_s / 2 + _EPS_S
    lo = np.searchsorted(tv, tv - half, side="left").tolist()
    hi = np.searchsorted(tv, tv + half, side="right").tolist()
    lv = np.array([_centred_median(raw, i, a, b) for i, (a, b) in enumerate(zip(lo, hi))])
    # Hold the end values for a window beyond each end, at the median frame
    # interval: a monotonic L stays monotonic, so the closing is exact to the edges.
    window = settings.standing_window_s
    dt = float(np.median(np.diff(tv))) if tv.size > 1 else window
    pad = dt * np.arange(1, int(np.ceil(window / dt)) + 1)
    tp = np.concatenate([tv[0] - pad[::-1], tv, tv[-1] + pad])
    sv = None
    if scale_px is not None:
        scale = np.asarray(scale_px, dtype=np.float64)
        if scale.shape != t.shape:
            raise ValueError(f"scale_px {scale.shape} and times_s {t.shape} must have the same shape")
        sv = scale[ok]
    first, last = (_end_level(tv, lv, sv, window / 2, at_end) for at_end in (False, True))
    lp = np.concatenate([np.full(pad.size, first), lv, np.full(pad.size, last)])
    dilated = _sliding(tp, lp, window / 2 + _EPS_S, np.max)
    closed = _sliding(tp, dilated, window / 2 + _EPS_S, np.min)[pad.size:pad.size + tv.size]
    standing = np.full(t.shape, np.nan)
    standing[ok] = closed
    return 1.0 - leg / standing


_END_DIP = 0.1  # L growing this much (relative) into the clip from an end: maybe a rep under way


def _end_level(tv: np.ndarray, lv: np.ndarray, sv: np.ndarray | None, half_s: float,
               at_end: bool) -> float:
    """The level to pad an end of the smoothed leg length ``lv`` with (see depth_signal)."""
    edge = lv[-1] if at_end else lv[0]
    if sv is None:
        return float(edge)
    near = tv >= tv[-1] - half_s if at_end else tv <= tv[0] + half_s
    idx = np.flatnonzero(near)
    top = int(idx[np.argmax(lv[idx])])
    grew = lv[top] / edge - 1.0
    s_edge = np.nanmedian(sv[idx[-3:]] if at_end else sv[idx[:3]])
    s_top = np.nanmedian(sv[max(top - 1, 0):top + 2])
    if grew > _END_DIP and np.isfinite(s_edge) and np.isfinite(s_top) and s_edge > 0 \
            and s_top / s_edge - 1.0 < grew / 3.0:
        return float(lv[top])  # the legs straighten, the body does not come closer: a rep
    return float(edge)


def segment_reps(times_s: np.ndarray, depth: np.ndarray,
                 settings: RepSettings | None = None) -> list[Rep]:
    """All reps of a clip, in time order, partial ones included (see the module doc)."""
    settings = settings or RepSettings()
    t = np.asarray(times_s, dtype=np.float64)
    d = np.asarray(depth, dtype=np.float64)
    _check_times(t)
    if d.shape != t.shape:
        raise ValueError(f"depth {d.shape} and times_s {t.shape} must have the same (T,) shape")
    stream = _Stream(settings)
    found: list[Rep] = []
    for ti, di in zip(t.tolist(), d.tolist()):
        found += stream.push(ti, di)
    found += stream.finish()
    peaks = [r.depth for r in found if not r.partial]
    return [_judge_depth(r, peaks, settings) for r in found]


class RepCounter:
    """Live rep counter: feed one frame at a time with :meth:`update`.

    A rep is returned by the update at which it completes (depth back past its
    end level), ``smoothing_s / 2`` after that frame (the centred median waits
    for it). If one update completes two reps (rare: a long gap right after a
    rep), the second comes with the next update. Call :meth:`finish` at the end
    of the stream for a rep cut off there, and :meth:`reset` for a new clip.
    """

    def __init__(self, settings: RepSettings | None = None) -> None:
        self.settings = settings or RepSettings()
        self.reset()

    def reset(self) -> None:
        self._stream = _Stream(self.settings)
        self._reps: list[Rep] = []
        self._peaks: list[float] = []
        self._queue: deque[Rep] = deque()

    def new_set(self, first: Rep | None = None) -> Rep | None:
        """A new set begins (the other leg): later reps are judged "shallow" only
        against this set's reps, as the file analysis does per set. The count
        and the reps so far are kept.

        ``first``: the rep (already returned) that showed the new set began; it
        starts the set, judged again on its own (so never shallow, as a first
        rep). Returns it as judged now.
        """
        self._peaks = []
        if first is None:
            return None
        if first.reason == SHALLOW:
            first = replace(first, partial=False, reason="")
            self._reps = [first if r.end_index == first.end_index and r.start_index == first.start_index
                          else r for r in self._reps]
        if not first.partial:
            self._peaks.append(first.depth)
        return first

    def update(self, t_s: float, depth: float) -> Rep | None:
        """Feed one frame (time in s, strictly increasing; depth or NaN)."""
        for rep in self._stream.push(float(t_s), float(depth)):
            self._accept(rep)
        return self._queue.popleft() if self._queue else None

    def finish(self) -> list[Rep]:
        """End of the stream: every rep not yet returned, the one cut off included."""
        for rep in self._stream.finish():
            self._accept(rep)
        out = list(self._queue)
        self._queue.clear()
        return out

    @property
    def count(self) -> int:
        """Full (non-partial) reps so far."""
        return sum(not r.partial for r in self._reps)

    @property
    def in_rep(self) -> bool:
        """True while a rep is under way (as of ``smoothing_s / 2`` ago)."""
        return self._stream.machine.in_rep

    @property
    def reps(self) -> list[Rep]:
        """Every rep completed so far, partial ones included."""
        return list(self._reps)

    def _accept(self, rep: Rep) -> None:
        if not rep.partial:
            self._peaks.append(rep.depth)
        rep = _judge_depth(rep, self._peaks, self.settings)
        self._reps.append(rep)
        self._queue.append(rep)


def _judge_depth(rep: Rep, peaks: list[float], settings: RepSettings) -> Rep:
    """Mark a complete rep shallow when below partial_fraction of the typical peak.

    The typical peak is the median of the peaks that are not themselves
    shallow next to the deepest (``>= partial_fraction * max``): small dips
    while walking a bar out and back, settling, or turning must not pull the
    reference down until they pass as reps (one heavy single among two
    re-rack dips was three reps against a plain median).
    """
    if rep.partial or not peaks:
        return rep
    f = settings.partial_fraction
    deepest = max(peaks)
    typical = statistics.median(p for p in peaks if p >= f * deepest)
    if rep.depth < f * typical:
        return replace(rep, partial=True, reason=SHALLOW)
    return rep


def _check_times(t: np.ndarray) -> None:
    if t.ndim != 1:
        raise ValueError(f"times_s must be one-dimensional, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or (t.size > 1 and not np.all(np.diff(t) > 0)):
        raise ValueError("times_s must be finite and strictly increasing")


def _sliding(t: np.ndarray, x, half_s: float, reduce) -> np.ndarray:
    """``reduce`` of x over the samples with |t_j - t_i| <= half_s, at every t_i."""
    lo = np.searchsorted(t, t - half_s, side="left").tolist()
    hi = np.searchsorted(t, t + half_s, side="right").tolist()
    return np.array([reduce(x[a:b]) for a, b in zip(lo, hi)], dtype=np.float64)


def _centred_median(x: list[float], i: int, lo: int, hi: int) -> float:
    """Median of x[lo:hi] around x[i], cut to as many samples on each side of i
    (at the ends and at gaps, so that a ramp is not biased there)."""
    k = min(i - lo, hi - 1 - i)
    return statistics.median(x[i - k:i + k + 1])


class _Stream:
    """Gaps, centred median smoothing and the state machine, one sample at a time."""

    def __init__(self, settings: RepSettings) -> None:
        self.settings, self.machine = settings, _Machine(settings)
        self.index, self.t0 = -1, math.nan           # samples pushed - 1, first time
        self.last_t = self.last_valid_t = -math.inf
        self.open = self.opened_before = False       # a segment (no long gap) is open
        self._reset_segment()

    def _reset_segment(self) -> None:
        """Valid samples of the open segment (index, time, depth); ``next``: the
        first not yet smoothed and fed; ``lo``: the first a window still needs."""
        self.seg_i, self.seg_t, self.seg_d = [], [], []
        self.next = self.lo = 0

    def push(self, t: float, d: float) -> list[Rep]:
        if not math.isfinite(t) or t <= self.last_t:
            raise ValueError(f"times must be finite and strictly increasing, got {t!r} "
                             f"after {self.last_t!r}")
        self.index += 1
        self.last_t = t
        self.t0 = t if self.index == 0 else self.t0
        out: list[Rep] = []
        gap = self.settings.max_gap_s
        if self.open and t - self.last_valid_t > gap:
            out += self._close(PERSON_LOST)
        if math.isfinite(d):
            if not self.open:
                first = not self.opened_before and t - self.t0 <= gap
                self.machine.begin(CUT_AT_START if first else PERSON_LOST)
                self.open = self.opened_before = True
            self.seg_i.append(self.index)
            self.seg_t.append(t)
            self.seg_d.append(d)
            self.last_valid_t = t
            out += self._feed(ready_until=t)
        return out

    def finish(self) -> list[Rep]:
        return self._close(CUT_AT_END) if self.open else []

    def _close(self, reason: str) -> list[Rep]:
        out = self._feed(ready_until=math.inf)
        rep = self.machine.end(reason)
        self.open = False
        self._reset_segment()
        return out + ([rep] if rep else [])

    def _feed(self, ready_until: float) -> list[Rep]:
        """Smooth and feed every sample whose median window is complete."""
        half = self.settings.smoothing_s / 2 + _EPS_S
        out: list[Rep] = []
        while self.next < len(self.seg_t):
            tau = self.seg_t[self.next]
            if tau + half > ready_until:
                break
            while self.seg_t[self.lo] < tau - half:
                self.lo += 1
            hi = bisect.bisect_right(self.seg_t, tau + half, lo=self.next)
            s = _centred_median(self.seg_d, self.next, self.lo, hi)
            rep = self.machine.feed(self.seg_i[self.next], tau, s)
            out += [rep] if rep else []
            self.next += 1
        if self.lo > 512:  # forget samples no window needs any more
            del self.seg_i[:self.lo], self.seg_t[:self.lo], self.seg_d[:self.lo]
            self.next -= self.lo
            self.lo = 0
        return out


class _Machine:
    """The hysteresis state machine over smoothed valid samples of one segment.

    Keeps the samples since the last possible rep start (``_i, _t, _s``) so that
    a completed rep's start and bottom can be found looking back.
    """

    def __init__(self, settings: RepSettings) -> None:
        self.settings = settings
        self.begin(CUT_AT_START)

    def begin(self, reason: str) -> None:
        """Start a segment; ``reason`` marks a rep already under way at its start."""
        self._i: list[int] = []
        self._t: list[float] = []
        self._s: list[float] = []
        self._floor_reason: str | None = reason
        self.in_rep = False
        self._peak, self._peak_pos = 0.0, 0
        self._valley: float | None = None
        self._valley_pos = 0

    def feed(self, i: int, t: float, s: float) -> Rep | None:
        st = self.settings
        self._i.append(i)
        self._t.append(t)
        self._s.append(s)
        pos = len(self._s) - 1
        if not self.in_rep:
            if s <= st.start_fraction * st.min_depth:  # every rep's start lies here or later
                self._rebase(pos)
            elif t - self._t[0] > 2 * st.max_duration_s:  # bound the history
                self._rebase(bisect.bisect_left(self._t, t - st.max_duration_s))
            if s >= st.min_depth:
                self.in_rep = True
                self._peak, self._peak_pos, self._valley = s, pos, None
            return None
        if (self._valley is not None and s >= st.min_depth
                and self._valley <= st.split_fraction * min(self._peak, s)):
            valley_pos = self._valley_pos
            rep = self._rep(valley_pos, None)
            self._rebase(valley_pos)
            after = self._s[1:]
            k = 1 + int(np.argmax(after))
            self._peak, self._peak_pos, self._valley = after[k - 1], k, None
            if k < len(self._s) - 1:
                j = k + 1 + int(np.argmin(self._s[k + 1:]))
                self._valley, self._valley_pos = self._s[j], j
            return rep
        if s > self._peak:
            self._peak, self._peak_pos, self._valley = s, pos, None
        elif s <= st.start_fraction * self._peak:
            rep = self._rep(pos, None)
            self._rebase(pos)
            self.in_rep = False
            return rep
        elif self._valley is None or s < self._valley:
            self._valley, self._valley_pos = s, pos
        return None

    def end(self, reason: str) -> Rep | None:
        """End of the segment: a rep under way is cut off for ``reason``."""
        rep = self._rep(len(self._s) - 1, reason) if self.in_rep else None
        self.begin(reason)
        return rep

    def _rebase(self, pos: int) -> None:
        """Forget the samples before ``pos``; the history now starts after a rep or standing."""
        del self._i[:pos], self._t[:pos], self._s[:pos]
        self._peak_pos -= pos
        self._valley_pos -= pos
        self._floor_reason = None

    def _rep(self, end: int, end_reason: str | None) -> Rep | None:
        st = self.settings
        s = np.asarray(self._s[:end + 1])
        t = self._t
        peak, pp = self._peak, self._peak_pos
        below = np.flatnonzero(s[:pp + 1] <= st.start_fraction * peak)
        start, start_reason = (int(below[-1]), None) if below.size else (0, self._floor_reason)
        plateau = start + np.flatnonzero(s[start:] >= peak * (1 - st.bottom_fraction))
        first, last = int(plateau[0]), int(plateau[-1])
        middle = (t[first] + t[last]) / 2  # the sample nearest it; a tie goes to the later one
        offsets = np.abs(np.asarray(t[first:last + 1]) - middle)
        bottom = last - int(np.argmin(offsets[::-1]))
        duration = t[end] - t[start]
        if duration < st.min_duration_s:
            return None
        reason = start_reason or end_reason or (TOO_LONG if duration > st.max_duration_s else "")
        return Rep(start_s=t[start], bottom_s=t[bottom], end_s=t[end],
                   start_index=self._i[start], bottom_index=self._i[bottom],
                   end_index=self._i[end], depth=float(peak), partial=bool(reason),
                   reason=reason)
