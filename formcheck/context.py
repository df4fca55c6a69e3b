"""Camera view, exercise and stance leg, inferred from a :class:`PoseSequence`.

The form rules need to know what they are looking at: knee valgus (FPPA) is
meaningful only in a front or back view, 2D trunk lean only in a side view,
and a single-leg dip is judged on its stance leg. This module infers that
context from the landmarks alone; every function is pure (arrays in, values
out) and never raises on missing data: it answers ``UNKNOWN`` with confidence 0.

Conventions:

* **yaw_deg**: where the camera stands around the subject, degrees, -180..180.
  0 = the subject faces the camera (front view), 180 = back to the camera,
  +90 = the subject's LEFT side faces the camera (the subject faces image
  left), -90 = the RIGHT side faces the camera (faces image right). The same
  angle as the synthetic ground truth's ``camera.yaw`` (wrapped: 270 -> -90).
* **facing**: +1 = the subject faces image right, -1 = image left, 0 = not a
  side-ish view (as ``facing`` in :mod:`formcheck.geometry`).
* "Lift" of a foot: how much higher it is than the other foot, over the leg
  length (hip-knee-ankle), unitless.

Cues, as measured with raw MediaPipe (full model) on the 11 synthetic dev
clips and on the 32 real clips labelled by eye (``shared/clips``):

* View: the yaw of the shoulder line, of the hip line (world landmarks, x-z
  plane) and of the nose direction (nose minus shoulder centre), fused as unit
  vectors. Each is within ~8 deg of the true yaw on the dev clips (the hip line
  is the noisiest: 10 % of the back view's frames off by > 35 deg). MediaPipe
  did NOT mislabel the synthetic back view: the image shoulder order reversed
  and the nose was 0.2 m farther from the camera than the shoulders (0.2 m
  nearer in front views).
  Nose visibility is ~1.0 in every view, so it cannot tell front from back.
  The image shoulder-width / torso-length ratio is 0.66-0.84 frontal, 0.03-0.07
  side, 0.51 at 45 deg: too person-dependent to classify with, so it only
  lowers the confidence when it disagrees with the world yaw.
* Facing: world yaw, nose ahead of the shoulders and toes ahead of the heels
  (image x) vote; right on all 13 real side/oblique clips with a label.
* Stance: foot heights along the body's "up" (the standing trunk, which removes
  the camera's pitch). The dev clips' free foot is 0.13-0.29 leg lengths up;
  MediaPipe puts the two feet of a real two-footed squat up to ~0.12 apart in
  oblique views, hence ``lift_on`` 0.14 on a 1 s rolling median.
"""

from __future__ import annotations

import enum
import math
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from formcheck.errors import SettingsError
from formcheck.geometry import knee_flexion_deg
from formcheck.pose import Landmark as Lm
from formcheck.pose import LEG, PoseSequence, Side

__all__ = [
    "ClipContext",
    "ContextSettings",
    "Exercise",
    "SetSegment",
    "View",
    "ViewEstimate",
    "ViewSegment",
    "estimate_context",
    "estimate_exercise",
    "estimate_sets",
    "estimate_view",
    "facing_series",
    "foot_lift_series",
    "stance_series",
    "yaw_series",
]


class ContextSettingsError(SettingsError, ValueError):
    """A context setting out of range (a ValueError and a FormcheckError)."""


class View(str, enum.Enum):
    FRONT = "front"
    BACK = "back"
    SIDE = "side"
    OBLIQUE = "oblique"
    UNKNOWN = "unknown"


class Exercise(str, enum.Enum):
    SINGLE_LEG_SQUAT = "single_leg_squat"
    SQUAT = "squat"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ContextSettings:
    """Thresholds of the context inference. Angles in degrees, times in seconds,
    lifts and separations in leg lengths."""

    # FRONT/BACK within this of 0/180 deg. The synthetic ground truth's fppa_valid
    # uses 20 deg; the estimate's error on the dev clips is ~5 deg, so the
    # boundary sits a little outside.
    frontal_tol_deg: float = 22.5
    # SIDE within this of +-90 deg (the ground truth's lean2d_valid uses 20).
    side_tol_deg: float = 22.5
    # Landmarks below this visibility are not used as view cues.
    min_visibility: float = 0.5
    # Feet below this visibility are not judged. Lower than min_visibility: in
    # side and oblique views the far ankle scores 0.3-0.5 yet is placed well.
    min_foot_visibility: float = 0.2
    # Frames whose feet cannot be judged keep the stance around them when the
    # gap is shorter than this (occlusion at the bottom of a rep).
    max_gap_s: float = 1.0
    # Shortest stretch of one view in ``per_segment`` (a clip whose camera
    # changes); shorter stretches merge into their neighbours.
    segment_s: float = 2.0
    # One foot is "off the floor" when its lift (rolling median over lift_window_s)
    # exceeds this (enter) ... MediaPipe's world feet of a two-footed squat seen
    # obliquely differ by up to ~0.10-0.12 leg lengths (real clips); the dev
    # clips' free foot is 0.2-0.3 leg lengths up (ground truth 0.18 m).
    lift_on: float = 0.14
    # ... and back on the floor when it falls below this (hysteresis).
    lift_off: float = 0.09
    lift_window_s: float = 1.0
    # A stance run shorter than this is merged into its neighbours (no flicker).
    min_stance_s: float = 0.6
    # Single-leg exercise when one foot is off the floor for this share of the
    # active (moving) frames.
    single_leg_share: float = 0.6
    # A raised foot this far BEHIND the stance foot (leg lengths, horizontal) is
    # resting on a bench: a (Bulgarian) split squat, not a single-leg squat.
    split_rear_foot: float = 0.72
    # A raised foot this far AHEAD of the other with its knee bent past
    # bent_knee_deg rests on a box or step (a step-up), not held in the air.
    step_foot_ahead: float = 0.3
    # The "held straight out in front" free leg of a single-leg dip: at least
    # step_foot_ahead in front, knee flexion below straight_knee_deg, while the
    # stance knee bends past bent_knee_deg.
    straight_knee_deg: float = 30.0
    bent_knee_deg: float = 45.0
    # Feet this far apart front-to-back (median, leg lengths) without a single-leg
    # stance: a lunge or split squat (Exercise.UNKNOWN).
    split_stance: float = 0.35
    # Between two runs on the same leg, a two-feet pause shorter than this
    # stays in the set; longer (or a change of leg) starts a new set.
    set_gap_s: float = 3.0
    # "A free foot rides with the hips": over a rolling window (+- follow_window_s)
    # in which the hips move up and down by at least follow_min_hip leg lengths,
    # a foot whose image height follows the hips' (slope >= follow_slope, over
    # the other foot's by as much, correlation >= follow_corr) is off the floor,
    # whatever MediaPipe's world heights say. A planted foot's slope is ~0
    # (-0.15..+0.16 median on the 20 real two-footed clips); the dev renders'
    # free foot follows at 0.21-0.46, the pistol squat's at 0.46. This is what
    # finds the stance leg in back views, where MediaPipe puts a foot raised
    # behind (towards the camera) back on the floor. A riding foot more than
    # split_stance behind the other is a lunge's rear foot (it pivots), not free.
    follow_window_s: float = 1.5
    follow_min_hip: float = 0.08
    follow_slope: float = 0.2
    follow_corr: float = 0.8
    # ... and a free leg is held: its image knee angle changes by at most this over
    # the window (dev renders 1-5, the pistol squat 7), while a lunge's or split
    # squat's rear knee bends with the front one (40-66 on the real clips).
    follow_knee_range_deg: float = 20.0

    def __post_init__(self) -> None:
        for name in ("frontal_tol_deg", "side_tol_deg"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v < 45):
                raise ContextSettingsError(f"context setting {name} must be in (0, 45), got {v!r}")
        for name in ("min_visibility", "min_foot_visibility", "single_leg_share"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ContextSettingsError(f"context setting {name} must be in [0, 1], got {v!r}")
        for name in ("segment_s", "max_gap_s", "lift_on", "lift_off", "lift_window_s", "min_stance_s", "split_rear_foot",
                     "step_foot_ahead", "straight_knee_deg", "bent_knee_deg", "split_stance",
                     "set_gap_s", "follow_window_s", "follow_min_hip", "follow_slope", "follow_corr",
                     "follow_knee_range_deg"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ContextSettingsError(f"context setting {name} must be > 0, got {v!r}")
        if self.lift_off > self.lift_on:
            raise ContextSettingsError("lift_off must not exceed lift_on (hysteresis)")


DEFAULT_SETTINGS = ContextSettings()


class ViewSegment(NamedTuple):
    """A stretch of a clip seen from one view."""

    start_s: float
    end_s: float
    view: View
    confidence: float


@dataclass(frozen=True)
class ViewEstimate:
    """The camera view of a clip (the view of most of its time) and its segments."""

    view: View
    yaw_deg: float
    confidence: float
    facing: int
    per_segment: list[ViewSegment] = field(default_factory=list)

    @property
    def frontal(self) -> bool:
        """True for FRONT or BACK: knee valgus (FPPA) can be judged."""
        return self.view in (View.FRONT, View.BACK)

    @property
    def sagittal(self) -> bool:
        """True for SIDE: 2D trunk lean can be judged."""
        return self.view is View.SIDE


# -- helpers ------------------------------------------------------------------------
def _nanmedian(x: np.ndarray) -> float:
    """Median of the finite values; NaN (without a warning) when there are none."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _is(labels: np.ndarray, *values) -> np.ndarray:
    """Elementwise ``label in values`` by identity (numpy compares str enums as str)."""
    return np.fromiter((x in values for x in labels), bool, len(labels))


def _runs(labels: np.ndarray):
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    return list(zip(starts, np.r_[starts[1:], len(labels)]))


def _debounce(labels: np.ndarray, t: np.ndarray, min_s: float) -> np.ndarray:
    """Replace runs shorter than ``min_s`` by a neighbour's label, shortest first."""
    labels = labels.copy()
    while True:
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        ends = np.r_[starts[1:], len(labels)]
        if len(starts) <= 1:
            return labels
        dur = np.array([t[e - 1] - t[b] for b, e in zip(starts, ends)])
        k = int(np.argmin(dur))
        if dur[k] >= min_s:
            return labels
        b, e = starts[k], ends[k]
        labels[b:e] = labels[b - 1] if b > 0 else labels[e]


def _rolling_median(x: np.ndarray, t: np.ndarray, window_s: float) -> np.ndarray:
    """Centred rolling median over ``window_s`` seconds, ignoring NaN (NaN stays NaN)."""
    out = np.full(len(x), np.nan)
    lo = np.searchsorted(t, t - window_s / 2)
    hi = np.searchsorted(t, t + window_s / 2, side="right")
    for i in np.flatnonzero(np.isfinite(x)):
        out[i] = _nanmedian(x[lo[i]:hi[i]])
    return out



# -- view ---------------------------------------------------------------------------
def _wrap(deg):
    return (np.asarray(deg, float) + 180.0) % 360.0 - 180.0


def _vis(seq: PoseSequence, lm: Lm) -> np.ndarray:
    return np.nan_to_num(seq.visibility[:, int(lm)], nan=0.0)


def _line_yaw(seq: PoseSequence, left: Lm, right: Lm, s: ContextSettings):
    """Yaw from the subject's left-right line in world x-z, and its weight per frame."""
    v = seq.world[:, int(left)] - seq.world[:, int(right)]
    # Front: left is at +x (image right); left side to the camera: left nearer (-z).
    yaw = np.degrees(np.arctan2(-v[:, 2], v[:, 0]))
    horiz = np.hypot(v[:, 0], v[:, 2])
    w = np.minimum(_vis(seq, left), _vis(seq, right))
    ok = np.isfinite(yaw) & (horiz > 0.05) & (w >= s.min_visibility)
    return np.where(ok, yaw, np.nan), np.where(ok, w, 0.0)


def _nose_yaw(seq: PoseSequence, s: ContextSettings):
    """Yaw from the direction the nose points from the shoulder centre (world x-z)."""
    sc = (seq.world[:, Lm.LEFT_SHOULDER] + seq.world[:, Lm.RIGHT_SHOULDER]) / 2
    d = seq.world[:, Lm.NOSE] - sc
    # The subject faces (-sin yaw, -cos yaw) in camera (x, z).
    yaw = np.degrees(np.arctan2(-d[:, 0], -d[:, 2]))
    horiz = np.hypot(d[:, 0], d[:, 2])
    w = _vis(seq, Lm.NOSE)
    ok = np.isfinite(yaw) & (horiz > 0.04) & (w >= s.min_visibility)
    return np.where(ok, yaw, np.nan), np.where(ok, w, 0.0)


def yaw_series(seq: PoseSequence, settings: ContextSettings = DEFAULT_SETTINGS):
    """Per-frame camera yaw (deg, convention in the module docstring) and cue agreement.

    Fuses three world-landmark cues as unit vectors: the shoulder line, the hip
    line and the nose direction. Returns ``(yaw_deg (T,), agreement (T,))``;
    agreement is the length of the mean unit vector (1 = the cues agree, 0 =
    no cue); yaw is NaN where no cue is available (no person).
    """
    cues = [_line_yaw(seq, Lm.LEFT_SHOULDER, Lm.RIGHT_SHOULDER, settings),
            _line_yaw(seq, Lm.LEFT_HIP, Lm.RIGHT_HIP, settings),
            _nose_yaw(seq, settings)]
    z = np.zeros(len(seq), complex)
    wsum = np.zeros(len(seq))
    for yaw, w in cues:
        z += np.where(w > 0, w * np.exp(1j * np.radians(np.nan_to_num(yaw))), 0)
        wsum += w
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.where(wsum > 0, np.abs(z) / wsum, 0.0)
    yaw = np.where(wsum > 0, np.degrees(np.angle(z)), np.nan)
    return yaw, agree


def _torso_px(seq: PoseSequence) -> np.ndarray:
    px = seq.pixels()
    sc = (px[:, Lm.LEFT_SHOULDER] + px[:, Lm.RIGHT_SHOULDER]) / 2
    hc = (px[:, Lm.LEFT_HIP] + px[:, Lm.RIGHT_HIP]) / 2
    return np.linalg.norm(sc - hc, axis=1)


def facing_series(seq: PoseSequence, settings: ContextSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """Per frame, which way the subject faces in the image: +1 right, -1 left, NaN unknown.

    Votes of the world yaw (-sin yaw), the nose ahead of the shoulder centre
    and the toes ahead of the heels (image x, over the torso length). Only
    meaningful in side and oblique views; in a front view it is noise.
    """
    yaw, _ = yaw_series(seq, settings)
    px = seq.pixels()
    torso = _torso_px(seq)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN feet give NaN
        nose = (px[:, Lm.NOSE, 0] - (px[:, Lm.LEFT_SHOULDER, 0] + px[:, Lm.RIGHT_SHOULDER, 0]) / 2) / torso
        toes = np.nanmean(np.stack([px[:, Lm.LEFT_FOOT_INDEX, 0] - px[:, Lm.LEFT_HEEL, 0],
                                    px[:, Lm.RIGHT_FOOT_INDEX, 0] - px[:, Lm.RIGHT_HEEL, 0]]),
                          axis=0) / torso if len(seq) else np.zeros(0)
    votes = np.stack([-np.sin(np.radians(yaw)), np.tanh(nose / 0.1), np.tanh(toes / 0.1)])
    total = np.nansum(votes, axis=0)
    known = np.isfinite(votes).any(axis=0) & (total != 0)
    return np.where(known, np.sign(total), np.nan)


def _classify(yaw: float, s: ContextSettings) -> tuple[View, float]:
    """View class of a yaw and the angular margin (deg) to the nearest class boundary."""
    if not np.isfinite(yaw):
        return View.UNKNOWN, 0.0
    a = abs(float(_wrap(yaw)))
    lo, side_lo, side_hi, hi = (s.frontal_tol_deg, 90 - s.side_tol_deg,
                                90 + s.side_tol_deg, 180 - s.frontal_tol_deg)
    if a <= lo:
        return View.FRONT, lo - a
    if a >= hi:
        return View.BACK, a - hi
    if side_lo <= a <= side_hi:
        return View.SIDE, min(a - side_lo, side_hi - a)
    return View.OBLIQUE, min(a - lo, side_lo - a) if a < 90 else min(a - side_hi, hi - a)


def _circ_median(yaw: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted circular median (deg) and resultant length (0..1) of angles."""
    ok = np.isfinite(yaw) & (w > 0)
    if not ok.any():
        return math.nan, 0.0
    y, w = yaw[ok], w[ok]
    zz = np.sum(w * np.exp(1j * np.radians(y))) / np.sum(w)
    centre = np.degrees(np.angle(zz))
    dev = _wrap(y - centre)
    order = np.argsort(dev)
    cum = np.cumsum(w[order])
    med = dev[order][np.searchsorted(cum, cum[-1] / 2)]
    return float(_wrap(centre + med)), float(abs(zz))


def _rolling_circular_mean(yaw: np.ndarray, w: np.ndarray, t: np.ndarray,
                           window_s: float) -> np.ndarray:
    """Weighted circular mean of angles (deg) over a centred window of ``window_s`` s."""
    z = np.where(np.isfinite(yaw) & (w > 0), w * np.exp(1j * np.radians(np.nan_to_num(yaw))), 0)
    cz, cw = np.r_[0, np.cumsum(z)], np.r_[0, np.cumsum(np.where(np.isfinite(yaw), w, 0.0))]
    lo = np.searchsorted(t, t - window_s / 2)
    hi = np.searchsorted(t, t + window_s / 2, side="right")
    total, weight = cz[hi] - cz[lo], cw[hi] - cw[lo]
    return np.where(weight > 0, np.degrees(np.angle(total)), np.nan)


def _image_cos(seq: PoseSequence, idx: np.ndarray) -> float:
    """|cos yaw| from the image shoulder and hip widths over the torso length."""
    px = seq.pixels()[idx]
    torso = _torso_px(seq[idx]) if len(idx) else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sh = np.abs(px[:, Lm.LEFT_SHOULDER, 0] - px[:, Lm.RIGHT_SHOULDER, 0]) / torso / 0.70
        hp = np.abs(px[:, Lm.LEFT_HIP, 0] - px[:, Lm.RIGHT_HIP, 0]) / torso / 0.40
    vals = np.concatenate([sh, hp])
    vals = vals[np.isfinite(vals)]
    return float(np.clip(np.median(vals), 0, 1)) if vals.size else math.nan


def _judge(seq: PoseSequence, idx: np.ndarray, yaw: np.ndarray, agree: np.ndarray,
           s: ContextSettings) -> tuple[View, float, float]:
    """View, yaw and confidence of the frames ``idx``."""
    if idx.size == 0:
        return View.UNKNOWN, math.nan, 0.0
    y, spread = _circ_median(yaw[idx], agree[idx])
    view, margin = _classify(y, s)
    if view is View.UNKNOWN:
        return view, y, 0.0
    coverage = min(1.0, float(np.mean(np.isfinite(yaw[idx]))) / 0.8)
    cue_agree = float(np.nanmean(np.where(np.isfinite(yaw[idx]), agree[idx], np.nan)))
    conf = (0.5 + 0.5 * math.tanh(margin / 7.5)) * spread * coverage * cue_agree
    c_img = _image_cos(seq, idx)
    if np.isfinite(c_img):  # the image widths must roughly agree with the world yaw
        conf *= 1.0 - min(0.5, max(0.0, abs(c_img - abs(math.cos(math.radians(y)))) - 0.3))
    return view, y, float(np.clip(conf, 0.0, 1.0))


def estimate_view(seq: PoseSequence, frames=None,
                  settings: ContextSettings = DEFAULT_SETTINGS) -> ViewEstimate:
    """Camera view of a clip (or of the frames selected by ``frames``: a slice,
    mask or index array), robust over time.

    Each frame gets the view of its yaw (:func:`yaw_series`) averaged over 1 s;
    runs of one view shorter than ``settings.segment_s`` merge into their
    neighbours, and each remaining run is judged on the circular median of its
    frames: ``per_segment``. The clip's view is the view covering most of the
    detected time; its confidence is scaled by that share, so a clip whose
    camera changes says so. ``facing`` is given for
    SIDE and OBLIQUE views (majority of :func:`facing_series`), else 0.
    """
    if frames is not None:
        seq = seq[frames]
    if len(seq) == 0:
        return ViewEstimate(View.UNKNOWN, math.nan, 0.0, 0, [])
    yaw, agree = yaw_series(seq, settings)
    t = seq.times_s
    # Per-frame view of the yaw smoothed over 1 s; runs shorter than segment_s
    # merge into their neighbours; each run is then judged as a whole.
    smooth = _rolling_circular_mean(yaw, agree, t, 1.0)
    labels = np.array([_classify(y, settings)[0].value for y in smooth], object)
    labels = _debounce(labels, t, min(settings.segment_s, 0.5 * (t[-1] - t[0])))
    segs: list[ViewSegment] = []
    for b, e in _runs(labels):
        view, _, conf = _judge(seq, np.arange(b, e), yaw, agree, settings)
        labels[b:e] = view.value
        start, end = (segs[-1].end_s if segs else float(t[b])), float(t[e - 1])
        if segs and segs[-1].view is view:
            p = segs[-1]
            w0, w1 = p.end_s - p.start_s, end - p.end_s
            segs[-1] = ViewSegment(p.start_s, end, view,
                                   (p.confidence * w0 + conf * w1) / max(w0 + w1, 1e-9))
        else:
            segs.append(ViewSegment(start, end, view, conf))
    known = labels != View.UNKNOWN.value
    if not known.any():
        return ViewEstimate(View.UNKNOWN, math.nan, 0.0, 0, segs)
    views, counts = np.unique(labels[known].astype(str), return_counts=True)
    share = counts.max() / known.sum()
    idx = np.flatnonzero(labels == views[np.argmax(counts)])
    main, y, conf = _judge(seq, idx, yaw, agree, settings)
    facing = 0
    if main in (View.SIDE, View.OBLIQUE):
        f = facing_series(seq, settings)[idx]
        f = f[np.isfinite(f)]
        facing = int(np.sign(f.sum())) if f.size else 0
    segs = [ViewSegment(a, b, v, round(c, 3)) for a, b, v, c in segs]
    return ViewEstimate(main, round(y, 1), round(conf * share, 3), facing, segs)


# -- legs: which foot is on the floor ---------------------------------------------
# A frame is "active" (a rep under way) when the hips are below this share of
# their standing height above the lower foot.
_ACTIVE_HIP_HEIGHT = 0.92
# A standing trunk more than this far from the camera's vertical is not trusted
# as "up" (a camera tilted that much, or a bad trunk).
_MAX_CAMERA_PITCH_DEG = 35.0

_FOOT = {Side.LEFT: (Lm.LEFT_ANKLE, Lm.LEFT_HEEL, Lm.LEFT_FOOT_INDEX),
         Side.RIGHT: (Lm.RIGHT_ANKLE, Lm.RIGHT_HEEL, Lm.RIGHT_FOOT_INDEX)}


@dataclass(frozen=True)
class _Legs:
    """Per-frame leg features in a gravity-aligned body frame (all (T,))."""

    lift: np.ndarray        # (left foot height - right foot height) / leg length
    ahead: np.ndarray       # (left ankle - right ankle) along the facing direction / leg length
    flex_l: np.ndarray      # 3D knee flexion, deg
    flex_r: np.ndarray
    reliable: np.ndarray    # bool: both feet seen well enough to judge
    active: np.ndarray      # bool: the hips are lowered (a rep is under way)
    rides_l: np.ndarray     # bool: the left foot moves up and down with the hips (it is free)
    rides_r: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / n


def _up_vector(seq: PoseSequence) -> np.ndarray:
    """World 'up' in MediaPipe's camera-aligned world frame: the median trunk
    direction (hip centre -> shoulder centre) over the most upright-standing
    quarter of the frames; (0, -1, 0) when that cannot be found. Removes the
    camera's pitch, so feet at different depths get the same floor height."""
    w, px = seq.world, seq.pixels()
    trunk = _unit((w[:, Lm.LEFT_SHOULDER] + w[:, Lm.RIGHT_SHOULDER]) / 2
                  - (w[:, Lm.LEFT_HIP] + w[:, Lm.RIGHT_HIP]) / 2)
    hip_y = (px[:, Lm.LEFT_HIP, 1] + px[:, Lm.RIGHT_HIP, 1]) / 2
    foot_y = np.fmax(px[:, Lm.LEFT_ANKLE, 1], px[:, Lm.RIGHT_ANKLE, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        stand = (foot_y - hip_y) / _torso_px(seq)
    ok = np.isfinite(stand) & np.isfinite(trunk).all(axis=1)
    if ok.sum() < 3:
        return np.array([0.0, -1.0, 0.0])
    top = ok & (stand >= np.percentile(stand[ok], 75))
    u = _unit(np.median(trunk[top], axis=0))
    return u if u[1] < -math.cos(math.radians(_MAX_CAMERA_PITCH_DEG)) else np.array([0.0, -1.0, 0.0])


def _legs(seq: PoseSequence, s: ContextSettings) -> _Legs:
    w = seq.world
    u = _up_vector(seq)
    seg = [np.linalg.norm(w[:, a] - w[:, b], axis=1) for a, b in (
        (Lm.LEFT_HIP, Lm.LEFT_KNEE), (Lm.LEFT_KNEE, Lm.LEFT_ANKLE),
        (Lm.RIGHT_HIP, Lm.RIGHT_KNEE), (Lm.RIGHT_KNEE, Lm.RIGHT_ANKLE))]
    leg = (_nanmedian(seg[0] + seg[1]) + _nanmedian(seg[2] + seg[3])) / 2
    if not np.isfinite(leg) or leg <= 0:
        leg = np.nan

    def height(side):  # the lowest point of the foot, along up
        return np.fmin.reduce(w[:, list(_FOOT[side])] @ u, axis=1)

    raw_lift = (height(Side.LEFT) - height(Side.RIGHT)) / leg
    ankle_y = seq.xyz[:, [Lm.LEFT_ANKLE, Lm.RIGHT_ANKLE], 1]
    ankle_vis = np.nan_to_num(seq.visibility[:, [Lm.LEFT_ANKLE, Lm.RIGHT_ANKLE]])
    reliable = (np.isfinite(raw_lift) & (ankle_vis.min(axis=1) >= s.min_foot_visibility)
                & np.all((ankle_y >= 0.0) & (ankle_y <= 1.0), axis=1))
    lift = _rolling_median(np.where(reliable, raw_lift, np.nan), seq.times_s, s.lift_window_s)
    yaw, _ = yaw_series(seq, s)
    fwd = np.stack([-np.sin(np.radians(yaw)), np.zeros(len(seq)), -np.cos(np.radians(yaw))], axis=1)
    fwd = _unit(fwd - (fwd @ u)[:, None] * u)
    ahead = np.sum((w[:, Lm.LEFT_ANKLE] - w[:, Lm.RIGHT_ANKLE]) * fwd, axis=1) / leg
    flex_l = knee_flexion_deg(w[:, Lm.LEFT_HIP], w[:, Lm.LEFT_KNEE], w[:, Lm.LEFT_ANKLE])
    flex_r = knee_flexion_deg(w[:, Lm.RIGHT_HIP], w[:, Lm.RIGHT_KNEE], w[:, Lm.RIGHT_ANKLE])
    # Hip height above the lower foot (MediaPipe's world origin is the hip centre).
    hip_h = -np.fmin(height(Side.LEFT), height(Side.RIGHT))
    active = np.zeros(len(seq), bool)
    if np.isfinite(hip_h).sum() >= 3:
        with np.errstate(invalid="ignore"):
            active = hip_h < _ACTIVE_HIP_HEIGHT * np.nanpercentile(hip_h, 90)
    rides_l, rides_r = _rides_with_hips(seq, s)
    return _Legs(lift, ahead, flex_l, flex_r, reliable, active & reliable, rides_l, rides_r)


def _rides_with_hips(seq: PoseSequence, s: ContextSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, whether the left / the right foot follows the hips up and down.

    Least-squares slope and correlation of each ankle's image y on the hip
    centre's image y over a centred ``follow_window_s`` window (frames with
    the hips, both ankles and the ankles in the frame), where the hips move
    by at least ``follow_min_hip`` leg lengths. See :class:`ContextSettings`.
    """
    n = len(seq)
    none = np.zeros(n, bool)
    if n < 3:
        return none, none.copy()
    px = seq.pixels()
    hip = (px[:, Lm.LEFT_HIP, 1] + px[:, Lm.RIGHT_HIP, 1]) / 2
    ankles = px[:, Lm.LEFT_ANKLE, 1], px[:, Lm.RIGHT_ANKLE, 1]
    in_frame = np.all((seq.xyz[:, [Lm.LEFT_ANKLE, Lm.RIGHT_ANKLE], 1] >= 0)
                      & (seq.xyz[:, [Lm.LEFT_ANKLE, Lm.RIGHT_ANKLE], 1] <= 1), axis=1)
    ok = np.isfinite(hip) & np.isfinite(ankles[0]) & np.isfinite(ankles[1]) & in_frame
    leg = _nanmedian(np.concatenate([ankles[0] - hip, ankles[1] - hip])[np.tile(ok, 2)])
    if ok.sum() < 8 or not leg > 0:
        return none, none.copy()
    t = seq.times_s
    lo = np.searchsorted(t, t - s.follow_window_s, side="left")
    hi = np.searchsorted(t, t + s.follow_window_s, side="right")

    def window_sums(x: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
        return c[hi] - c[lo]

    h = hip / leg
    count = window_sums(np.ones(n))
    with np.errstate(invalid="ignore", divide="ignore"):
        mh = window_sums(h) / count
        var_h = window_sums(h * h) / count - mh ** 2
        moving = (count >= 8) & (np.sqrt(np.maximum(var_h, 0.0)) * 4.0 >= s.follow_min_hip)
        slopes, corrs = [], []
        for a in ankles:
            a = a / leg
            ma = window_sums(a) / count
            cov = window_sums(h * a) / count - mh * ma
            var_a = window_sums(a * a) / count - ma ** 2
            slopes.append(cov / var_h)
            corrs.append(cov / np.sqrt(np.maximum(var_h * var_a, 1e-12)))
        out = []
        for me, other in ((0, 1), (1, 0)):
            rides = (moving & (slopes[me] >= s.follow_slope) & (corrs[me] >= s.follow_corr)
                     & (slopes[me] - slopes[other] >= s.follow_slope))
            out.append(np.nan_to_num(rides).astype(bool))
    for k, side in enumerate((Side.LEFT, Side.RIGHT)):  # a free leg is held, not bent
        hip_l, knee_l, ankle_l = LEG[side][:3]
        knee = knee_flexion_deg(px[:, hip_l], px[:, knee_l], px[:, ankle_l])
        for i in np.flatnonzero(out[k]):
            w = knee[lo[i]:hi[i]]
            w = w[np.isfinite(w)]
            out[k][i] = len(w) > 0 and float(w.max() - w.min()) <= s.follow_knee_range_deg
    return out[0], out[1]


def foot_lift_series(seq: PoseSequence, settings: ContextSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """Per frame, how much higher the LEFT foot is than the right, in leg lengths.

    Positive = the left foot is higher (the right leg stands), negative = the
    right foot is higher. Heights are the lowest point of each foot (ankle,
    heel, toe) in MediaPipe world landmarks along the body's "up" (the standing
    trunk), so camera pitch and feet at different depths do not count as lift.
    NaN where a foot is missing, poorly visible or out of the frame.
    """
    legs = _legs(seq, settings)
    return np.where(legs.reliable, legs.lift, np.nan)


def _single_scores(legs: _Legs, s: ContextSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame evidence (leg lengths) that the LEFT / the RIGHT leg stands alone."""
    out = []
    for sign, flex_free, flex_stance in ((-1.0, legs.flex_r, legs.flex_l),   # left stands
                                         (+1.0, legs.flex_l, legs.flex_r)):  # right stands
        lift = sign * legs.lift            # height of the free foot above the stance foot
        ahead = sign * legs.ahead          # the free foot's lead over the stance foot
        with np.errstate(invalid="ignore"):
            on_bench = ahead < -s.split_rear_foot
            on_box = (ahead > s.step_foot_ahead) & (flex_free > s.bent_knee_deg)
            # Not lower than the stance foot: else it is the stance foot and the
            # bent "stance" knee belongs to a leg raised behind (or on a bench).
            held_out = ((ahead > s.step_foot_ahead) & (flex_free < s.straight_knee_deg)
                        & (flex_stance > s.bent_knee_deg) & (lift > -s.lift_off))
        raised = np.where(on_bench | on_box, 0.0, np.nan_to_num(lift, nan=0.0))
        # A foot that rides with the hips rests on nothing (a box or a bench would hold it
        # still), unless it is far behind: the rear foot of a lunge or split squat pivots on its
        # toes as the rear knee drops.
        rides = (legs.rides_r if sign < 0 else legs.rides_l) & (np.nan_to_num(ahead) > -s.split_stance)
        out.append(np.where(held_out | rides, np.maximum(raised, s.lift_on + 1e-9), raised))
    return out[0], out[1]


def stance_series(seq: PoseSequence, settings: ContextSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """Per frame, the leg on the floor: Side.LEFT / Side.RIGHT when the other foot
    is off the floor (raised, or held straight out in front), Side.BOTH when both
    feet are down, None where the feet cannot be judged (no person, feet hidden
    or out of the frame). Object array of shape (T,).

    Hysteresis: one foot must rise ``lift_on`` leg lengths above the other to
    enter a single-leg stance and fall below ``lift_off`` to leave it; runs
    shorter than ``min_stance_s`` merge into their neighbours, so the answer
    does not flicker. A raised foot far behind (``split_rear_foot``: a bench)
    or ahead with a bent knee (``step_foot_ahead``: a box) is a supported foot,
    not a free one.
    """
    return _stance(seq, settings)[0]


def _stance(seq: PoseSequence, settings: ContextSettings) -> tuple[np.ndarray, _Legs]:
    n = len(seq)
    legs = _legs(seq, settings)
    left, right = _single_scores(legs, settings)
    state, raw = Side.BOTH, np.empty(n, object)
    for i in range(n):
        if legs.reliable[i]:
            if state is not Side.BOTH and (left if state is Side.LEFT else right)[i] < settings.lift_off:
                state = Side.BOTH
            if state is Side.BOTH:
                if left[i] > settings.lift_on and left[i] >= right[i]:
                    state = Side.LEFT
                elif right[i] > settings.lift_on:
                    state = Side.RIGHT
        raw[i] = state
    out = _debounce(raw, seq.times_s, settings.min_stance_s) if n else raw
    t, detected = seq.times_s, seq.detected
    for b, e in _runs(legs.reliable):
        if not legs.reliable[b] and (t[e - 1] - t[b] >= settings.max_gap_s or b == 0 or e == n):
            out[b:e] = None
    out[~detected] = None
    return out, legs


# -- exercise and sets ----------------------------------------------------------------
@dataclass(frozen=True)
class SetSegment:
    """A contiguous set on one leg (or on both, for squats), seconds from the clip start."""

    start_s: float
    end_s: float
    exercise: Exercise
    stance: Side
    confidence: float


def _judge_exercise(stance: np.ndarray, legs: _Legs,
                    s: ContextSettings) -> tuple[Exercise, float]:
    frames = legs.active if legs.active.sum() >= 10 else legs.reliable
    if frames.sum() < 10:
        return Exercise.UNKNOWN, 0.0
    single = _is(stance[frames], Side.LEFT, Side.RIGHT)
    share = float(single.mean())
    coverage = min(1.0, float(legs.reliable.mean()) / 0.8)
    if share >= s.single_leg_share:
        conf = (share - s.single_leg_share) / (1 - s.single_leg_share)
        return Exercise.SINGLE_LEG_SQUAT, round(coverage * (0.5 + 0.5 * conf), 3)
    if _nanmedian(np.abs(legs.ahead[frames])) > s.split_stance:
        return Exercise.UNKNOWN, round(coverage * 0.5, 3)   # a lunge or split squat
    conf = 1.0 - share / s.single_leg_share
    return Exercise.SQUAT, round(coverage * (0.5 + 0.5 * conf), 3)


def estimate_exercise(seq: PoseSequence,
                      settings: ContextSettings = DEFAULT_SETTINGS) -> tuple[Exercise, float]:
    """Single-leg squat or (bilateral) squat, with a confidence 0..1.

    Single-leg when one foot is off the floor (:func:`stance_series`) in at
    least ``single_leg_share`` of the active frames (hips lowered; all judged
    frames if too few are active). Feet far apart front-to-back with both down
    (a lunge or split squat, including a Bulgarian split squat's rear foot on a
    bench) give ``Exercise.UNKNOWN``; so does a clip whose feet cannot be seen.
    """
    if len(seq) == 0:
        return Exercise.UNKNOWN, 0.0
    stance, legs = _stance(seq, settings)
    return _judge_exercise(stance, legs, settings)


def _sets(seq: PoseSequence, stance: np.ndarray, exercise: Exercise,
          s: ContextSettings) -> list[SetSegment]:
    t = seq.times_s
    known = np.flatnonzero(~_is(stance, None))
    if known.size == 0:
        return []
    if exercise is not Exercise.SINGLE_LEG_SQUAT:
        both = float(np.mean(_is(stance[known], Side.BOTH)))
        return [SetSegment(float(t[known[0]]), float(t[known[-1]]), exercise, Side.BOTH, round(both, 3))]
    # Fill unknown frames from the previous known one, then close short pauses.
    filled = stance.copy()
    last = stance[known[0]]
    for i in range(len(filled)):
        last = filled[i] if filled[i] is not None else last
        filled[i] = last
    runs = [(b, e, filled[b]) for b, e in _runs(filled)]
    for k in range(1, len(runs) - 1):
        b, e, lab = runs[k]
        if lab is Side.BOTH and runs[k - 1][2] is runs[k + 1][2] and t[e - 1] - t[b] < s.set_gap_s:
            runs[k] = (b, e, runs[k - 1][2])
    merged = np.empty(len(filled), object)
    for b, e, lab in runs:
        merged[b:e] = lab
    sets = []
    for b, e in _runs(merged):
        side, judged = merged[b], b + np.flatnonzero(~_is(stance[b:e], None))
        if side is Side.BOTH or judged.size == 0 or t[judged[-1]] - t[judged[0]] < s.min_stance_s:
            continue
        conf = float(np.mean(_is(stance[judged], side)))
        sets.append(SetSegment(float(t[judged[0]]), float(t[judged[-1]]), exercise, side,
                               round(conf, 3)))
    return sets


def estimate_sets(seq: PoseSequence, settings: ContextSettings = DEFAULT_SETTINGS) -> list[SetSegment]:
    """The clip's sets: for a single-leg clip, each contiguous stretch on one leg
    (a right-leg set then a left-leg set, ...), two-feet pauses shorter than
    ``set_gap_s`` inside a set; otherwise one set with ``Side.BOTH`` spanning the
    judged frames. Confidence = share of the set's judged frames on its leg."""
    if len(seq) == 0:
        return []
    stance, legs = _stance(seq, settings)
    exercise, _ = _judge_exercise(stance, legs, settings)
    return _sets(seq, stance, exercise, settings)


# -- everything ------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipContext:
    """What a clip shows: the camera view, the exercise and its sets."""

    view: ViewEstimate
    exercise: Exercise
    exercise_confidence: float
    sets: list[SetSegment] = field(default_factory=list)

    def summary(self) -> str:
        """One line, e.g. 'front view (conf 0.92), single-leg squat, right leg 0.0-9.7 s'."""
        v = self.view
        view = f"{v.view.value} view"
        if v.view in (View.SIDE, View.OBLIQUE) and v.facing:
            view += f" facing {'right' if v.facing > 0 else 'left'}"
        parts = [f"{view} (conf {v.confidence:.2f})",
                 {Exercise.SINGLE_LEG_SQUAT: "single-leg squat", Exercise.SQUAT: "squat",
                  Exercise.UNKNOWN: "unknown exercise"}[self.exercise]
                 + f" (conf {self.exercise_confidence:.2f})"]
        changes = [sg for sg in v.per_segment if sg.view is not v.view and sg.view is not View.UNKNOWN]
        if changes:
            parts.append("camera changes: " + ", ".join(
                f"{sg.view.value} {sg.start_s:.1f}-{sg.end_s:.1f} s" for sg in changes))
        for st in self.sets:
            if st.stance is not Side.BOTH:
                parts.append(f"{st.stance.value} leg {st.start_s:.1f}-{st.end_s:.1f} s")
        return ", ".join(parts)


def estimate_context(seq: PoseSequence, settings: ContextSettings = DEFAULT_SETTINGS, *,
                     exercise: Exercise | None = None) -> ClipContext:
    """View, exercise and sets of a clip in one pass.

    ``exercise`` overrides the inferred exercise (confidence 1). A single-leg
    override on a clip where the raised foot cannot be seen gives one set on
    both legs, judged on the worse knee.
    """
    view = estimate_view(seq, settings=settings)
    if len(seq) == 0:
        return ClipContext(view, exercise or Exercise.UNKNOWN, 0.0, [])
    stance, legs = _stance(seq, settings)
    if exercise is None:
        exercise, conf = _judge_exercise(stance, legs, settings)
    else:
        conf = 1.0
    sets = _sets(seq, stance, exercise, settings)
    if not sets and exercise is Exercise.SINGLE_LEG_SQUAT:
        sets = _sets(seq, stance, Exercise.SQUAT, settings)
    return ClipContext(view, exercise, conf, sets)
