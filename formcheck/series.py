"""Per-frame measurement series computed once from a smoothed PoseSequence.

Everything downstream (rules at the rep bottoms, plots, overlays) reads these
arrays; each is NaN where the person is missing or the measure is undefined.
Whether a series is *valid for the camera view* is decided by the analysis,
not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formcheck import geometry as g
from formcheck.correction import (LandmarkCorrection, corrected_hip_px,
                                  corrected_trunk_flexion_deg)
from formcheck.context import yaw_series
from formcheck.pose import LEG, Landmark as L, PoseSequence, Side


@dataclass(frozen=True)
class LegSeries:
    knee_flexion_deg: np.ndarray  # 3D, from world landmarks (poor in front views: depth collapses)
    knee_flexion_2d_deg: np.ndarray  # image plane: true flexion in a side view only
    knee_flexion_fs_deg: np.ndarray  # front/back view: from thigh and shank foreshortening
    thigh_ratio: np.ndarray  # image thigh length / its upright length (1 = thigh in the image plane)
    fppa_deg: np.ndarray  # image plane, corrected hip joint centre; valgus positive
    fppa_raw_deg: np.ndarray  # image plane, MediaPipe's hip landmark as is
    knee_medial_ratio: np.ndarray  # knee medial displacement / hip-ankle length
    shin_lean_deg: np.ndarray  # side view, forward positive (needs facing)
    knee_past_toes: np.ndarray  # side view, / shank length
    leg_visibility: np.ndarray  # mean visibility of hip, knee, ankle
    ankle_seen: np.ndarray  # 1.0 where the ankle is visible and the whole foot in frame, else 0.0


@dataclass(frozen=True)
class Series:
    times_s: np.ndarray
    legs: dict[Side, LegSeries]
    trunk_flexion_deg: np.ndarray  # side view, forward positive (needs facing), corrected
    trunk_flexion_3d_deg: np.ndarray  # world landmarks, unsigned
    trunk_length_px: np.ndarray  # hip centre to shoulder centre, pixels (for foreshortening)
    shoulder_width_px: np.ndarray  # shoulder to shoulder, pixels (a frontal view's body scale)
    lateral_lean_deg: np.ndarray  # front/back view, towards subject's left positive
    pelvic_drop_deg: dict[Side, np.ndarray]  # keyed by stance side
    knee_ankle_ratio: np.ndarray  # bilateral squat, front/back/oblique
    yaw_deg: np.ndarray  # camera yaw per frame (formcheck.context convention), NaN unknown
    hip_y_px: np.ndarray  # hip centre height in the image (y down)
    ankle_y_px: dict[Side, np.ndarray]


def nanmean_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Element-wise mean of equal-length arrays ignoring NaN; NaN where all are NaN (no warning)."""
    stack = np.stack(rows)
    count = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


MIN_VISIBILITY = 0.5  # MediaPipe's own default threshold for a landmark being visible


def _seen(seq: PoseSequence, landmark: L, *below: L) -> np.ndarray:
    """1.0 where ``landmark`` lies inside the frame with visibility >= MIN_VISIBILITY.

    ``below``: landmarks that must be inside the frame too (their visibility
    does not matter). For the ankle, the heel and the toes: when the frame cuts
    the foot, MediaPipe keeps the ankle just inside the edge with a high
    visibility (with the frame ending 30 px above the true ankle it read the
    ankle 3 px inside the edge at visibility 0.98, and a true 0 deg knee as
    4 deg), while the cut toes are placed outside. An ankle in frame with the
    toes cut off is treated alike: not seen (the conservative side).
    """
    def inside(j: L) -> np.ndarray:
        xy = seq.xyz[:, j, :2]
        return np.all((xy >= 0.0) & (xy <= 1.0), axis=1)

    ok = inside(landmark) & (np.nan_to_num(seq.visibility[:, landmark]) >= MIN_VISIBILITY)
    for j in below:
        ok &= inside(j)
    return ok.astype(float)


def _upright(length: np.ndarray) -> float:
    """A segment's full (unforeshortened) image length: a high percentile over the clip."""
    ok = length[np.isfinite(length)]
    return float(np.percentile(ok, 95)) if len(ok) else np.nan


def _thigh_ratio(hip: np.ndarray, knee: np.ndarray) -> np.ndarray:
    thigh = np.linalg.norm(knee - hip, axis=-1)
    with np.errstate(invalid="ignore"):
        return thigh / _upright(thigh)


def _foreshortened_flexion(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray) -> np.ndarray:
    """Knee flexion in a front/back view from how short thigh and shank look.

    A segment tilted towards or away from the camera by angle a looks cos(a)
    times its upright length, so thigh tilt + shank tilt = acos(thigh/thigh_0) +
    acos(shank/shank_0) (both tilts in the sagittal plane, the usual squat
    pattern: thigh forward-down, shin forward). Ignores perspective; an estimate.
    """
    thigh = np.linalg.norm(knee - hip, axis=-1)
    shank = np.linalg.norm(ankle - knee, axis=-1)
    with np.errstate(invalid="ignore"):
        a = np.degrees(np.arccos(np.clip(thigh / _upright(thigh), 0.0, 1.0)))
        b = np.degrees(np.arccos(np.clip(shank / _upright(shank), 0.0, 1.0)))
    return a + b


def compute_series(seq: PoseSequence, facing: float | np.ndarray,
                   correction: LandmarkCorrection, *, back_view: bool = False) -> Series:
    """All per-frame measures. ``facing``: +1 subject faces image right, -1 left.

    FPPA uses the hip joint centres estimated by :mod:`formcheck.correction`
    (``back_view`` selects the back-view perspective term); side-view trunk
    flexion is corrected for MediaPipe's anterior mid-hip.
    """
    px = seq.px
    shoulders = px(L.LEFT_SHOULDER), px(L.RIGHT_SHOULDER)
    legs = {}
    for side in (Side.LEFT, Side.RIGHT):
        hip_l, knee_l, ankle_l, heel_l, toe_l = LEG[side]
        other_hip_l = LEG[side.other][0]
        hip, knee, ankle, toe, other_hip = px(hip_l), px(knee_l), px(ankle_l), px(toe_l), px(other_hip_l)
        hjc = corrected_hip_px(hip, other_hip, knee, correction, shoulder=shoulders[0],
                               other_shoulder=shoulders[1], back_view=back_view)
        legs[side] = LegSeries(
            knee_flexion_deg=g.knee_flexion_deg(seq.world[:, hip_l], seq.world[:, knee_l],
                                                seq.world[:, ankle_l]),
            knee_flexion_2d_deg=g.knee_flexion_deg(hip, knee, ankle),
            knee_flexion_fs_deg=_foreshortened_flexion(hjc, knee, ankle),
            thigh_ratio=_thigh_ratio(hjc, knee),
            fppa_deg=g.fppa_deg(hjc, knee, ankle, other_hip),
            fppa_raw_deg=g.fppa_deg(hip, knee, ankle, other_hip),
            knee_medial_ratio=g.knee_medial_displacement(hjc, knee, ankle, other_hip),
            shin_lean_deg=g.shin_lean_deg(ankle, knee, facing),
            knee_past_toes=g.knee_past_toes(knee, ankle, toe, facing),
            leg_visibility=nanmean_rows([seq.visibility[:, i] for i in (hip_l, knee_l, ankle_l)]),
            ankle_seen=_seen(seq, ankle_l, heel_l, toe_l),
        )
    hip_c = g.midpoint(px(L.LEFT_HIP), px(L.RIGHT_HIP))
    sh_c = g.midpoint(px(L.LEFT_SHOULDER), px(L.RIGHT_SHOULDER))
    w = seq.world
    hip_cw = g.midpoint(w[:, L.LEFT_HIP], w[:, L.RIGHT_HIP])
    sh_cw = g.midpoint(w[:, L.LEFT_SHOULDER], w[:, L.RIGHT_SHOULDER])
    return Series(
        times_s=seq.times_s,
        legs=legs,
        trunk_flexion_deg=corrected_trunk_flexion_deg(hip_c, sh_c, facing, correction),
        trunk_flexion_3d_deg=g.trunk_flexion_3d_deg(hip_cw, sh_cw),
        trunk_length_px=np.linalg.norm(sh_c - hip_c, axis=-1),
        shoulder_width_px=np.linalg.norm(shoulders[0] - shoulders[1], axis=-1),
        lateral_lean_deg=g.lateral_trunk_lean_deg(px(L.LEFT_HIP), px(L.RIGHT_HIP),
                                                  px(L.LEFT_SHOULDER), px(L.RIGHT_SHOULDER)),
        pelvic_drop_deg={Side.LEFT: g.pelvic_drop_deg(px(L.LEFT_HIP), px(L.RIGHT_HIP)),
                         Side.RIGHT: g.pelvic_drop_deg(px(L.RIGHT_HIP), px(L.LEFT_HIP))},
        knee_ankle_ratio=g.knee_ankle_width_ratio(px(L.LEFT_KNEE), px(L.RIGHT_KNEE),
                                                  px(L.LEFT_ANKLE), px(L.RIGHT_ANKLE)),
        yaw_deg=yaw_series(seq)[0] if len(seq) else np.zeros(0),
        hip_y_px=hip_c[:, 1],
        ankle_y_px={Side.LEFT: px(L.LEFT_ANKLE)[:, 1], Side.RIGHT: px(L.RIGHT_ANKLE)[:, 1]},
    )
