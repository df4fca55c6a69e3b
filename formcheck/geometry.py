"""Pure, vectorised geometry: joint angles, valgus, trunk lean, pelvic drop.

Conventions shared by every function here:

* Points are arrays of shape ``(..., 2)`` in **image pixels** (x right, y down,
  origin top-left), unless a docstring says 3D ``(..., 3)``. Use pixels, not
  MediaPipe's normalised 0..1 coordinates: x and y are scaled differently, so
  angles from normalised coordinates are wrong (``PoseSequence.pixels()``).
* A single point ``(2,)`` gives a 0-d array; a time series ``(T, 2)`` gives
  ``(T,)``. Inputs broadcast like numpy (a ``(2,)`` point against ``(T, 2)``).
* Angles are in **degrees**; ratios are unitless.
* NaN in gives NaN out, silently. Degenerate geometry (a zero-length segment,
  a side that cannot be decided) also gives NaN, never an exception.
* "Left"/"right" of the *subject* are the subject's own sides; "image right"
  is +x. In a front view the subject's left is on the image right, in a back
  view on the image left.

No state, no MediaPipe: these functions only see arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "angle_between_deg", "knee_flexion_deg", "fppa_deg", "knee_medial_displacement",
    "segment_angle_from_vertical_deg", "trunk_flexion_deg", "shin_lean_deg",
    "trunk_minus_shin_deg", "lateral_trunk_lean_deg", "pelvic_drop_deg", "knee_past_toes",
    "knee_ankle_width_ratio", "trunk_foreshortening_lean_deg", "trunk_flexion_3d_deg",
    "midpoint", "hip_joint_centre",
]


# -- helpers ----------------------------------------------------------------
def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _pts2(x: ArrayLike, name: str = "point") -> np.ndarray:
    """An image point array, checked to be (..., 2)."""
    a = _arr(x)
    if a.ndim == 0 or a.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) (image x, y in pixels), got {a.shape}")
    return a


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z component of the 2D cross product a x b (image axes: x right, y down)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _sign_or_nan(x: ArrayLike) -> np.ndarray:
    """+1 where x > 0, -1 where x < 0, NaN where x is 0 or NaN."""
    x = _arr(x)
    return np.where(x > 0, 1.0, np.where(x < 0, -1.0, np.nan))


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(v * v, axis=-1))


# -- generic ------------------------------------------------------------------
def midpoint(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Midpoint of two points of any dimension, (..., D) -> (..., D)."""
    return (_arr(a) + _arr(b)) / 2.0


def angle_between_deg(v1: ArrayLike, v2: ArrayLike) -> np.ndarray:
    """Unsigned angle between two vectors, degrees, 0..180.

    Works for any dimension (the last axis is the vector axis): (..., D) -> (...).
    Uses Kahan's formula, accurate near 0 and 180. A zero-length vector gives
    NaN. Valid in any view (it is pure geometry).
    """
    a, b = np.broadcast_arrays(_arr(v1), _arr(v2))
    na, nb = _norm(a), _norm(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = a * nb[..., None]
        w = b * na[..., None]
        ang = 2.0 * np.arctan2(_norm(u - w), _norm(u + w))
    return np.asarray(np.where((na > 0) & (nb > 0), np.degrees(ang), np.nan))


def segment_angle_from_vertical_deg(lower: ArrayLike, upper: ArrayLike) -> np.ndarray:
    """Signed angle of the vector ``lower -> upper`` from image vertical (up), degrees.

    Convention: 0 = ``upper`` straight above ``lower``; positive when ``upper``
    is to the image RIGHT of ``lower``, negative to the image left; +-90 =
    horizontal; +-180 = straight below. Range -180..180. Image points (..., 2)
    in pixels. Valid in any view (it is an image-plane angle); what it means
    clinically depends on the view. Coincident points give NaN.
    """
    v = _pts2(upper, "upper") - _pts2(lower, "lower")
    ang = np.degrees(np.arctan2(v[..., 0], -v[..., 1]))  # image up is -y
    return np.asarray(np.where(_norm(v) > 0, ang, np.nan))


# -- knee -------------------------------------------------------------------------
def knee_flexion_deg(hip: ArrayLike, knee: ArrayLike, ankle: ArrayLike) -> np.ndarray:
    """Knee flexion, degrees: 180 minus the hip-knee-ankle angle.

    Convention: 0 = straight leg, 90 = thigh and shank at a right angle,
    unsigned, range 0..180. Works on image points (..., 2) or 3D points
    (..., 3) (e.g. MediaPipe world landmarks, metres): the last axis is used.

    View: 2D is true only in a side (sagittal) view. In a frontal view the
    flexion happens towards/away from the camera and is foreshortened
    (under-read, badly so in deep flexion); use the 3D (world-landmark) points
    there, which are noisier in depth.
    """
    h, k, a = _arr(hip), _arr(knee), _arr(ankle)
    return np.asarray(180.0 - angle_between_deg(h - k, a - k))


def fppa_deg(hip: ArrayLike, knee: ArrayLike, ankle: ArrayLike,
             other_hip: ArrayLike) -> np.ndarray:
    """Frontal plane projection angle (FPPA) of one leg, signed, degrees.

    Definition (as the synthetic ground truth ``fppa``): in the image, 180
    minus the hip-knee-ankle angle, i.e. the deviation of the shank line from
    the continued thigh line. Sign: positive (VALGUS) when the knee lies on the
    medial side of the hip -> ankle line, "medial" being the side of that line
    where ``other_hip`` (the other leg's hip) lies; negative = varus; 0 =
    straight. Because the sign comes from the other hip, valgus is positive for
    the left and the right leg, in front AND back views, without knowing which.
    Range -180..180 (practically +-40).

    Image points (..., 2) in pixels. View: meaningful only in frontal or back
    views (camera yaw within about 20 deg of square); in other views it is a
    number without clinical meaning. Zero-length thigh or shank, or an
    ``other_hip`` exactly on the hip-ankle line (side undecidable), gives NaN.
    """
    h, k = _pts2(hip, "hip"), _pts2(knee, "knee")
    a, o = _pts2(ankle, "ankle"), _pts2(other_hip, "other_hip")
    thigh, shank = k - h, a - k
    # Signed turn from the thigh direction to the shank direction; its sign is
    # opposite to the side of the hip->ankle line on which the knee lies.
    turn = np.degrees(np.arctan2(_cross2(thigh, shank), np.sum(thigh * shank, axis=-1)))
    medial = _sign_or_nan(_cross2(a - h, o - h))
    ok = (_norm(thigh) > 0) & (_norm(shank) > 0)
    return np.asarray(np.where(ok, -turn * medial, np.nan))


def knee_medial_displacement(hip: ArrayLike, knee: ArrayLike, ankle: ArrayLike,
                             other_hip: ArrayLike) -> np.ndarray:
    """Knee's signed distance from the hip -> ankle line over the hip-ankle distance.

    Convention: positive = knee MEDIAL of the line (towards ``other_hip``, as
    in :func:`fppa_deg`: valgus), negative = lateral (varus). Unitless ratio
    (e.g. 0.05 = 5 % of the hip-ankle distance), range about -1..1 in practice.
    Image points (..., 2) in pixels. View: frontal or back only. Coincident
    hip and ankle, or an undecidable medial side, give NaN.
    """
    h, k = _pts2(hip, "hip"), _pts2(knee, "knee")
    a, o = _pts2(ankle, "ankle"), _pts2(other_hip, "other_hip")
    ha = a - h
    length2 = np.sum(ha * ha, axis=-1)
    medial = _sign_or_nan(_cross2(ha, o - h))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = _cross2(ha, k - h) * medial / length2
    return np.asarray(np.where(length2 > 0, ratio, np.nan))


def knee_past_toes(knee: ArrayLike, ankle: ArrayLike, toe: ArrayLike,
                   facing: ArrayLike) -> np.ndarray:
    """How far the knee is ahead of the toes, over the shank length (unitless).

    Signed horizontal (image x) distance of ``knee`` ahead of ``toe`` (the
    foot-index landmark) in the facing direction, divided by the shank length
    ``|knee - ankle|``. Positive = knee past the toes; 0 = level; negative =
    behind. ``facing`` = +1 when the subject faces image right, -1 image left
    (scalar or (T,)); 0 or NaN gives NaN. Image points (..., 2), pixels.
    View: side (sagittal) only.
    """
    k, a, t = _pts2(knee, "knee"), _pts2(ankle, "ankle"), _pts2(toe, "toe")
    shank = _norm(k - a)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (k[..., 0] - t[..., 0]) * _sign_or_nan(facing) / shank
    return np.asarray(np.where(shank > 0, r, np.nan))


def knee_ankle_width_ratio(knee_left: ArrayLike, knee_right: ArrayLike,
                           ankle_left: ArrayLike, ankle_right: ArrayLike, *,
                           min_ankle_width: float = 1e-6) -> np.ndarray:
    """Knee separation over ankle separation, horizontal (image x) only, unitless.

    ``|x(knee_left) - x(knee_right)| / |x(ankle_left) - x(ankle_right)|``.
    1 = knees as wide as ankles; < 1 = knees cave in (valgus); > 1 = knees out.
    Range 0..inf. NaN when the ankle separation is below ``min_ankle_width``
    (same unit as the points, pixels by default). Image points (..., 2).
    View: frontal or back, bilateral squat.
    """
    kl, kr = _pts2(knee_left, "knee_left"), _pts2(knee_right, "knee_right")
    al, ar = _pts2(ankle_left, "ankle_left"), _pts2(ankle_right, "ankle_right")
    knee_w = np.abs(kl[..., 0] - kr[..., 0])
    ankle_w = np.abs(al[..., 0] - ar[..., 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = knee_w / ankle_w
    return np.asarray(np.where(ankle_w >= min_ankle_width, r, np.nan))


# -- trunk and shin, side view ----------------------------------------------------
def trunk_flexion_deg(hip_centre: ArrayLike, shoulder_centre: ArrayLike,
                      facing: ArrayLike) -> np.ndarray:
    """Forward trunk flexion (lean) in the image, degrees.

    Angle of the hip-centre -> shoulder-centre line from image vertical.
    Convention: 0 = upright, 90 = horizontal; positive = FORWARD (shoulders
    ahead of the hips in the direction the subject faces), negative = leaning
    back. Range -180..180. ``facing`` = +1 when the subject faces image right,
    -1 image left (scalar or (T,)); 0 or NaN gives NaN. Image points (..., 2),
    pixels. Matches the synthetic ground truth ``trunk_lean_2d``.
    View: side (sagittal) only; in a frontal view forward lean does not show
    as an angle (see :func:`trunk_foreshortening_lean_deg`).
    """
    return np.asarray(segment_angle_from_vertical_deg(hip_centre, shoulder_centre)
                      * _sign_or_nan(facing))


def shin_lean_deg(ankle: ArrayLike, knee: ArrayLike, facing: ArrayLike) -> np.ndarray:
    """Forward shin lean in the image, degrees.

    Angle of the ankle -> knee line from image vertical. Convention: 0 =
    vertical shin; positive = knee AHEAD of the ankle in the facing direction
    (ankle dorsiflexion); negative = knee behind. Range -180..180. ``facing``
    as in :func:`trunk_flexion_deg`. Image points (..., 2), pixels.
    View: side (sagittal) only.
    """
    return np.asarray(segment_angle_from_vertical_deg(ankle, knee) * _sign_or_nan(facing))


def trunk_minus_shin_deg(hip_c: ArrayLike, shoulder_c: ArrayLike, knee: ArrayLike,
                         ankle: ArrayLike, facing: ArrayLike) -> np.ndarray:
    """Trunk flexion minus shin lean, degrees (see the two functions).

    Convention: 0 = trunk parallel to the shin (the coaching ideal in a
    squat); positive = trunk more inclined than the shin (the "folding
    forward" / hip-hinge fault); negative = trunk more upright than the shin.
    Range -360..360 in theory, a few tens of degrees in practice. Image points
    (..., 2), pixels. View: side (sagittal) only.
    """
    return np.asarray(trunk_flexion_deg(hip_c, shoulder_c, facing)
                      - shin_lean_deg(ankle, knee, facing))


# -- trunk and pelvis, frontal view ---------------------------------------------
def lateral_trunk_lean_deg(hip_left: ArrayLike, hip_right: ArrayLike,
                           shoulder_left: ArrayLike, shoulder_right: ArrayLike) -> np.ndarray:
    """Sideways trunk lean in the image, degrees.

    Angle of the hip-centre -> shoulder-centre line from image vertical.
    Convention: 0 = upright; positive = trunk leaning towards the subject's
    LEFT (the image side where ``hip_left`` lies relative to ``hip_right``),
    negative = towards the subject's right. Using the hips for the side makes
    the sign the same in front and back views. Range -180..180. Arguments are
    the subject's left/right landmarks, image points (..., 2), pixels.
    View: frontal or back only; NaN when the two hips have the same x (a side
    view, side undecidable).
    """
    hl, hr = _pts2(hip_left, "hip_left"), _pts2(hip_right, "hip_right")
    sl, sr = _pts2(shoulder_left, "shoulder_left"), _pts2(shoulder_right, "shoulder_right")
    lean_right = segment_angle_from_vertical_deg(midpoint(hl, hr), midpoint(sl, sr))
    return np.asarray(lean_right * _sign_or_nan(hl[..., 0] - hr[..., 0]))


def pelvic_drop_deg(stance_hip: ArrayLike, free_hip: ArrayLike) -> np.ndarray:
    """Pelvic obliquity in single-leg stance, degrees.

    Angle of the stance-hip -> free-hip line from image horizontal, using the
    absolute horizontal component so the result does not depend on the view
    (front or back) or on which leg stands. Convention: positive = free-side
    hip LOWER than the stance hip (contralateral pelvic drop, Trendelenburg
    sign); negative = free hip hiked. Range -90..90. Image points (..., 2),
    pixels. View: frontal or back only. Coincident hips give NaN.
    """
    v = _pts2(free_hip, "free_hip") - _pts2(stance_hip, "stance_hip")
    ang = np.degrees(np.arctan2(v[..., 1], np.abs(v[..., 0])))  # y down: lower = +y
    return np.asarray(np.where(_norm(v) > 0, ang, np.nan))


def trunk_foreshortening_lean_deg(trunk_len_now: ArrayLike,
                                  trunk_len_upright: ArrayLike) -> np.ndarray:
    """ESTIMATE of trunk lean from foreshortening, degrees, 0..90.

    ``arccos(clip(now / upright, 0, 1))``: a trunk of image length
    ``trunk_len_upright`` when upright, tilted by theta towards or away from
    the camera, shows as ``upright * cos(theta)``. Any lengths in one unit.
    It is an estimate: it cannot tell forward from backward lean, ignores
    perspective (the shoulders come nearer the camera and look bigger), and
    reads lateral lean and noise as lean. 0 when ``now >= upright``.
    Non-positive ``upright`` gives NaN. View: frontal or back only.
    """
    now, up = _arr(trunk_len_now), _arr(trunk_len_upright)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.clip(now / up, 0.0, 1.0)
    return np.asarray(np.where(up > 0, np.degrees(np.arccos(ratio)), np.nan))


# -- 3D (world landmarks) ---------------------------------------------------------
def trunk_flexion_3d_deg(hip_c_world: ArrayLike, shoulder_c_world: ArrayLike,
                         up: ArrayLike = (0.0, -1.0, 0.0),
                         forward: ArrayLike | None = None) -> np.ndarray:
    """Trunk flexion from 3D points (MediaPipe world landmarks: metres, y DOWN), degrees.

    Angle of the hip-centre -> shoulder-centre vector from ``up`` (default
    (0, -1, 0), world up for MediaPipe's y-down world). Without ``forward``:
    unsigned, 0 = upright, 90 = horizontal, range 0..180; it includes any
    sideways lean. With ``forward`` ((3,) or (..., 3), the direction the
    subject faces): the same magnitude, negative when the trunk vector points
    against ``forward`` (leaning back), range -180..180. Points (..., 3).
    View: any (3D), but MediaPipe's depth is noisy, so treat it as a rough
    value in frontal views.
    """
    v = _arr(shoulder_c_world) - _arr(hip_c_world)
    ang = angle_between_deg(v, _arr(up))
    if forward is None:
        return ang
    d = np.sum(v * _arr(forward), axis=-1)
    return np.asarray(np.where(d < 0, -ang, np.where(np.isnan(d), np.nan, ang)))


# -- landmark corrections ------------------------------------------------------
def hip_joint_centre(hip: ArrayLike, other_hip: ArrayLike, knee: ArrayLike, *,
                     medial_frac: float = 0.0, distal_frac: float = 0.0) -> np.ndarray:
    """Move MediaPipe's hip landmark towards the femoral head (hip joint centre).

    MediaPipe's hip landmark sits higher and more lateral than the femoral
    head. This returns ``hip + medial_frac * (other_hip - hip) + distal_frac *
    (knee - hip)``: a shift by fractions of the inter-hip vector (medially)
    and of the thigh vector (distally). Defaults 0.0 = identity (a placeholder
    to be tuned). Points (..., D) in any dimension and unit, same as inputs.
    """
    h = _arr(hip)
    return h + medial_frac * (_arr(other_hip) - h) + distal_frac * (_arr(knee) - h)
