"""``analyze()``: video -> pose -> smoothing -> context -> reps -> rules -> Analysis.

The result object carries everything the reports and overlays need: the
smoothed pose, per-frame series, the clip context (view, exercise, sets),
every rep with its measurements and checks, the left/right comparison and
plain-language notes about what could not be measured and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from formcheck.context import ClipContext, Exercise, SetSegment, View, estimate_context
from formcheck.correction import DEFAULT_CORRECTION, LandmarkCorrection
from formcheck.errors import NoPersonError
from formcheck.pose import PoseSequence, Side
from formcheck.reps import CUT_AT_END, CUT_AT_START, Rep, depth_signal, segment_reps
from formcheck.rules import (SAFETY_NOTE, Check, Verdict, check_depth, check_single_threshold,
                             check_trunk, check_valgus_fppa, check_valgus_width, not_measurable)
from formcheck.series import Series, compute_series, nanmean_rows
from formcheck.settings import Settings
from formcheck.smoothing import smooth
from formcheck.video import VideoInfo

# Measurement SDs not covered by the ground-truth study (see formcheck.correction).
FORESHORTENING_SD_DEG = 8.0  # frontal trunk-lean estimate: perspective and depth ambiguity
WIDTH_SD = 0.06  # knee-width change: ~2 px landmark noise on ~60 px widths, two frames
MIN_THIGH_RATIO = 0.55  # FPPA needs the thigh at <= ~57 deg from the image plane (cos 57 = 0.55)
NEAR_SIDE_MAX_DEG = 40.0  # trunk lean de-projected up to 40 deg off the side (sin 50 = 0.77)
OBLIQUE_TRUNK_EXTRA_SD_DEG = 3.0  # yaw estimate error (~8 deg) propagated to the trunk angle
FLEXION_SD_DEG = 6.4  # MediaPipe knee flexion SD, 90 deg side view (Cosoli et al.)
# (measured here against the renders: side 2D 62-84 vs true 70-90, front
# foreshortening 58-90 vs true 65-95: within about one such SD)
PELVIS_SD_DEG = 3.0  # a small angle between two noisy hip landmarks
# Above this the corrected FPPA is still under-read (bench/accuracy.py: true >= 22 deg, bias -3.1,
# worst -7.7), so the reports say so.
LARGE_FPPA_DEG = 20.0
# Knee-width valgus estimate in oblique views, up to this far from frontal. Beyond, the knees'
# forward travel projects sideways (sin 30 = 0.5 of it) and the estimate stops telling valgus
# apart: on the real clips at 39-46 deg it agreed with the labels on 13 of 25 reps
# (posture_proc_024 2/13, posture_kneesquat_01 3/4, posture_proc_018 8/8).
OBLIQUE_WIDTH_MAX_YAW_DEG = 30.0


@dataclass(frozen=True)
class RepResult:
    index: int  # 1-based among the clip's reps (partial ones included)
    side: Side
    rep: Rep
    view: View
    knee_flexion_deg: float | None
    fppa_deg: float | None
    fppa_raw_deg: float | None
    trunk_flexion_deg: float | None
    trunk_estimate: bool
    checks: dict[str, Check]

    @property
    def knee_flexion_estimate(self) -> bool:
        """Knee flexion from a front/back view: from how short the thigh and shank look."""
        return self.knee_flexion_deg is not None and self.view is not View.SIDE

    @property
    def cues(self) -> list[str]:
        return [c.cue for c in self.checks.values() if c.cue and c.verdict is not Verdict.OK]

    @property
    def worst(self) -> Verdict:
        order = [Verdict.FAULT, Verdict.WATCH, Verdict.OK]
        found = {c.verdict for name, c in self.checks.items() if name in ("knee_valgus", "hip_hinge")}
        return next((v for v in order if v in found), Verdict.NOT_MEASURABLE)

    def to_dict(self) -> dict:
        r = self.rep
        return {
            "index": self.index, "side": self.side.value,
            "start_s": round(r.start_s, 3), "bottom_s": round(r.bottom_s, 3), "end_s": round(r.end_s, 3),
            "partial": r.partial, "partial_reason": r.reason or None,
            "depth": round(r.depth, 3), "descent_s": round(r.descent_s, 2), "ascent_s": round(r.ascent_s, 2),
            "view": self.view.value,
            "knee_flexion_deg": _r(self.knee_flexion_deg),
            "knee_flexion_estimate": self.knee_flexion_estimate, "fppa_deg": _r(self.fppa_deg),
            "fppa_raw_deg": _r(self.fppa_raw_deg), "trunk_flexion_deg": _r(self.trunk_flexion_deg),
            "trunk_flexion_estimate": self.trunk_estimate,
            "verdicts": {k: c.verdict.value for k, c in self.checks.items()},
            "checks": {k: c.to_dict() for k, c in self.checks.items()},
            "cues": self.cues,
        }


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


@dataclass(frozen=True)
class SideSummary:
    side: Side
    reps: int
    partial_reps: int
    fppa_mean_deg: float | None
    fppa_worst_deg: float | None
    trunk_mean_deg: float | None
    trunk_worst_deg: float | None
    faults: int
    # The trunk figures are estimates (no rep of this side had a view that measures trunk lean).
    trunk_estimate: bool = False

    def to_dict(self) -> dict:
        return {"side": self.side.value, "reps": self.reps, "partial_reps": self.partial_reps,
                "fppa_mean_deg": _r(self.fppa_mean_deg), "fppa_worst_deg": _r(self.fppa_worst_deg),
                "trunk_mean_deg": _r(self.trunk_mean_deg), "trunk_worst_deg": _r(self.trunk_worst_deg),
                "trunk_estimate": self.trunk_estimate, "faults": self.faults}


@dataclass
class Analysis:
    source: str
    info: VideoInfo | None
    pose: PoseSequence  # smoothed
    raw_pose: PoseSequence
    series: Series
    context: ClipContext
    exercise: Exercise
    reps: list[RepResult]
    sides: dict[Side, SideSummary]
    comparison: dict
    notes: list[str] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    correction: LandmarkCorrection = DEFAULT_CORRECTION

    @property
    def view(self) -> View:
        return self.context.view.view

    @property
    def full_reps(self) -> list[RepResult]:
        return [r for r in self.reps if not r.rep.partial]

    def to_dict(self) -> dict:
        v = self.context.view
        return {
            "source": self.source,
            "video": None if self.info is None else {
                "width": self.info.width, "height": self.info.height, "fps": round(self.info.fps, 3),
                "duration_s": _r(self.info.duration_s, 3), "rotation_deg": self.info.rotation_deg},
            "exercise": self.exercise.value,
            "exercise_confidence": round(self.context.exercise_confidence, 2),
            "view": v.view.value, "view_confidence": round(v.confidence, 2),
            "view_yaw_deg": _r(v.yaw_deg), "facing": v.facing,
            "view_segments": [{"start_s": round(s.start_s, 2), "end_s": round(s.end_s, 2),
                               "view": s.view.value, "confidence": round(s.confidence, 2)}
                              for s in v.per_segment],
            "sets": [{"start_s": round(s.start_s, 2), "end_s": round(s.end_s, 2),
                      "side": s.stance.value, "confidence": round(s.confidence, 2)}
                     for s in self.context.sets],
            "person_detected": round(self.raw_pose.detection_rate, 3),
            "rep_count": len(self.full_reps),
            "reps": [r.to_dict() for r in self.reps],
            "sides": {s.value: summary.to_dict() for s, summary in self.sides.items()},
            "comparison": self.comparison,
            "notes": self.notes,
            "safety": SAFETY_NOTE,
        }


Progress = Callable[[int], None]


def analyze(path: str | Path, *, settings: Settings | None = None, exercise: Exercise | None = None,
            progress: Progress = lambda n: None, pose: PoseSequence | None = None,
            correction: LandmarkCorrection = DEFAULT_CORRECTION, workers: int = 1) -> Analysis:
    """Analyse one clip. ``pose`` skips the pose model (landmarks computed before).

    ``workers`` > 1 tracks segments of the clip in that many processes (call it
    from under ``if __name__ == "__main__":``, as multiprocessing requires).
    """
    from formcheck.extract import extract_pose
    from formcheck.video import probe

    settings = settings or Settings()
    info = probe(path)
    raw = pose if pose is not None else extract_pose(path, estimator=settings.model,
                                                      progress=progress, info=info, workers=workers)
    return analyze_pose(raw, settings=settings, exercise=exercise, info=info, source=str(path),
                        correction=correction)


def analyze_pose(raw: PoseSequence, *, settings: Settings | None = None,
                 exercise: Exercise | None = None, info: VideoInfo | None = None,
                 source: str = "", correction: LandmarkCorrection = DEFAULT_CORRECTION) -> Analysis:
    """The analysis after the pose model: smoothing, context, reps, rules."""
    settings = settings or Settings()
    if not raw.detected.any():
        raise NoPersonError(f"no person found in {Path(source).name or 'the clip'}")
    seq = smooth(raw, settings.smoothing)
    ctx = estimate_context(seq, exercise=exercise)
    ex = ctx.exercise
    notes: list[str] = []
    facing = ctx.view.facing if ctx.view.facing else 1
    series = compute_series(seq, facing, correction, back_view=ctx.view.view is View.BACK)
    bilateral = ex is not Exercise.SINGLE_LEG_SQUAT
    if ex is Exercise.UNKNOWN:
        notes.append("The exercise was not recognised as a single-leg dip or a squat: both knees are "
                     "judged; tell formcheck with --exercise for exercise-specific rules.")
    if exercise is not None:
        seen = estimate_context(seq)
        if seen.exercise not in (exercise, Exercise.UNKNOWN):
            legs = list(dict.fromkeys(st.stance.value for st in seen.sets if st.stance is not Side.BOTH))
            name = {Exercise.SINGLE_LEG_SQUAT: "single-leg squat", Exercise.SQUAT: "squat"}
            what = f"a {name.get(seen.exercise, seen.exercise.value)}" + (
                f" on the {' then the '.join(legs)} leg"
                if seen.exercise is Exercise.SINGLE_LEG_SQUAT and legs else "")
            notes.append(f"Judged as a {name.get(exercise, exercise.value)} as asked, but the clip looks "
                         f"like {what} (conf {seen.exercise_confidence:.2f})"
                         + (": the lifted leg's knee is judged too, and its numbers mean nothing"
                            if exercise is Exercise.SQUAT and seen.exercise is Exercise.SINGLE_LEG_SQUAT
                            else "") + ".")
    upright_trunk = upright_trunk_length(series)

    sets = ctx.sets or _fallback_set(seq, ex)
    if not ctx.sets and sets:
        notes.append("The feet could not be seen well enough to tell which leg works: reps are "
                     "counted from the hips, both knees judged.")
    # A body length a squat leaves alone, to tell a clip that starts or ends inside a rep from a
    # camera coming closer: the shoulder width from the front or back, the trunk from the side.
    body_scale = {View.FRONT: series.shoulder_width_px, View.BACK: series.shoulder_width_px,
                  View.SIDE: series.trunk_length_px}.get(ctx.view.view)
    results: list[RepResult] = []
    for seg in sets:
        stance = seg.stance
        if stance is Side.BOTH:
            ankle_y = nanmean_rows([series.ankle_y_px[Side.LEFT], series.ankle_y_px[Side.RIGHT]])
        else:
            ankle_y = series.ankle_y_px[stance]
        in_set = (series.times_s >= seg.start_s) & (series.times_s <= seg.end_s)
        idx = np.flatnonzero(in_set)
        if len(idx) < 3:
            continue
        depth = depth_signal(series.hip_y_px[idx], ankle_y[idx], series.times_s[idx], settings.reps,
                             scale_px=None if body_scale is None else body_scale[idx])
        for rep in segment_reps(series.times_s[idx], depth, settings.reps):
            rep = _shift(rep, int(idx[0]))
            rep = _set_edge_reason(rep, seg, series.times_s)
            view = _view_at(ctx, rep.bottom_s)
            results.append(_judge_rep(len(results) + 1, stance, rep, view, series, settings,
                                      correction, bilateral=bilateral, facing=facing,
                                      upright_trunk=upright_trunk,
                                      width_rule=ex is Exercise.SQUAT))
    sides = _side_summaries(results)
    comparison = _compare(sides, settings, results)
    notes.extend(_notes(ctx, results, raw, info))
    return Analysis(source=source, info=info, pose=seq, raw_pose=raw, series=series, context=ctx,
                    exercise=ex, reps=results, sides=sides, comparison=comparison, notes=notes,
                    settings=settings, correction=correction)


def judge_rep_at(raw: PoseSequence, rep: Rep, *, settings: Settings | None = None,
                 correction: LandmarkCorrection = DEFAULT_CORRECTION, index: int = 1) -> RepResult | None:
    """Judge one rep found elsewhere (live mode's counter), by its times, on ``raw``.

    The same context, series and rules as :func:`analyze_pose`; for a rep the
    offline segmentation of a short buffer did not return (too little standing
    time before it, say).
    """
    from dataclasses import replace

    settings = settings or Settings()
    if not raw.detected.any():
        return None
    seq = smooth(raw, settings.smoothing)
    ctx = estimate_context(seq)
    t = seq.times_s
    idx = [int(np.argmin(np.abs(t - x))) for x in (rep.start_s, rep.bottom_s, rep.end_s)]
    local = replace(rep, start_index=idx[0], bottom_index=idx[1], end_index=idx[2])
    side = next((s.stance for s in ctx.sets if s.start_s <= rep.bottom_s <= s.end_s), Side.BOTH)
    series = compute_series(seq, ctx.view.facing or 1, correction, back_view=ctx.view.view is View.BACK)
    return _judge_rep(index, side, local, _view_at(ctx, rep.bottom_s), series, settings, correction,
                      bilateral=ctx.exercise is not Exercise.SINGLE_LEG_SQUAT, facing=ctx.view.facing or 1,
                      upright_trunk=upright_trunk_length(series), width_rule=ctx.exercise is Exercise.SQUAT)


def _fallback_set(seq: PoseSequence, exercise: Exercise) -> list[SetSegment]:
    """One set on both legs over the frames with a person (when the feet were not judged)."""
    found = np.flatnonzero(seq.detected)
    if len(found) < 3:
        return []
    t = seq.times_s
    return [SetSegment(float(t[found[0]]), float(t[found[-1]]), exercise, Side.BOTH, 0.0)]


def _set_edge_reason(rep: Rep, seg: SetSegment, times_s: np.ndarray) -> Rep:
    """A rep cut by its set's start or end, not the clip's: say so (it was not the camera)."""
    from dataclasses import replace

    edge_s = 0.5  # a set boundary this far inside the clip is not the clip's edge
    if rep.reason == CUT_AT_START and seg.start_s > times_s[0] + edge_s:
        return replace(rep, reason=f"cut off by the start of the set: which leg works is clear "
                                   f"only from {seg.start_s:.1f} s")
    if rep.reason == CUT_AT_END and seg.end_s < times_s[-1] - edge_s:
        return replace(rep, reason=f"cut off by the end of the set at {seg.end_s:.1f} s (the leg "
                                   "changed or could not be told)")
    return rep


def _truncation(raw: PoseSequence, info: VideoInfo | None) -> str | None:
    """A note when the frames stop well before the duration the file's header gives."""
    if info is None or not info.duration_s or len(raw) < 2:
        return None
    step_s = float(np.median(np.diff(raw.times_s)))
    decoded_s = float(raw.times_s[-1] - raw.times_s[0]) + step_s
    missing_s = info.duration_s - decoded_s
    if missing_s <= max(0.5, 0.05 * info.duration_s):
        return None
    return (f"The file ends early: its frames stop at {decoded_s:.1f} s of the {info.duration_s:.1f} s "
            "its header gives (a truncated or damaged file); anything after that was not analysed.")


def _gaps(seq: PoseSequence, min_s: float) -> list[tuple[float, float]]:
    """Stretches longer than ``min_s`` without the person, between first and last sighting."""
    found = np.flatnonzero(seq.detected)
    if len(found) < 2:
        return []
    t = seq.times_s
    jumps = np.flatnonzero(np.diff(found) > 1)
    out = []
    for j in jumps:
        a, b = t[found[j]], t[found[j + 1]]
        if b - a > min_s:
            out.append((float(a), float(b)))
    return out


def _shift(rep: Rep, offset: int) -> Rep:
    from dataclasses import replace

    return replace(rep, start_index=rep.start_index + offset, bottom_index=rep.bottom_index + offset,
                   end_index=rep.end_index + offset)


def _view_at(ctx: ClipContext, t_s: float) -> View:
    for seg in ctx.view.per_segment:
        if seg.start_s <= t_s <= seg.end_s:
            return seg.view
    return ctx.view.view


def upright_trunk_length(series: Series) -> float:
    """Trunk length in the image when upright: a high percentile over the clip."""
    vals = series.trunk_length_px[np.isfinite(series.trunk_length_px)]
    return float(np.percentile(vals, 90)) if len(vals) else math.nan


def _at(arr: np.ndarray, rep: Rep, half: int = 1) -> float:
    """Value at the rep bottom: median of the bottom frame and its neighbours."""
    lo, hi = max(rep.bottom_index - half, 0), rep.bottom_index + half + 1
    vals = arr[lo:hi]
    vals = vals[np.isfinite(vals)]
    return float(np.median(vals)) if len(vals) else math.nan


def _judge_rep(index: int, side: Side, rep: Rep, view: View, s: Series, settings: Settings,
               corr: LandmarkCorrection, *, bilateral: bool, facing: int,
               upright_trunk: float, width_rule: bool) -> RepResult:
    t = settings.thresholds
    legs = [Side.LEFT, Side.RIGHT] if side is Side.BOTH else [side]
    frontal = view in (View.FRONT, View.BACK)
    checks: dict[str, Check] = {}

    checks["knee_valgus"], fppa, fppa_raw = _valgus(s, legs, rep, view, t, corr, bilateral, width_rule)
    checks["hip_hinge"], trunk, trunk_estimate = _hip_hinge(s, rep, view, t, corr, bilateral,
                                                            upright_trunk)

    # Depth, pelvis, lateral lean ---------------------------------------------
    knee_flexion = _knee_flexion(s, legs, rep, view)
    if knee_flexion is not None and not rep.partial:
        checks["depth"] = check_depth(knee_flexion, FLEXION_SD_DEG, t, estimate=view is not View.SIDE)
    elif not rep.partial:
        checks["depth"] = not_measurable(
            f"{view.value} view: knee flexion needs the camera at the side (or in front or behind, "
            "as an estimate)" if view not in (View.SIDE, View.FRONT, View.BACK)
            else "hip, knee or ankle not visible at the bottom")
    if frontal and not bilateral and side is not Side.BOTH:
        drop = _at(s.pelvic_drop_deg[side], rep) - _at(s.pelvic_drop_deg[side], _start(rep))
        if math.isfinite(drop):
            checks["pelvic_drop"] = check_single_threshold(
                "pelvic_drop", drop, t.pelvic_drop_watch_deg, PELVIS_SD_DEG,
                "free-side hip drop at the bottom vs the start of the rep")
        lean = _at(s.lateral_lean_deg, rep) - _at(s.lateral_lean_deg, _start(rep))
        if math.isfinite(lean):
            checks["lateral_lean"] = check_single_threshold(
                "lateral_lean", abs(lean), t.lateral_lean_watch_deg, PELVIS_SD_DEG,
                "sideways trunk lean at the bottom vs the start of the rep")
    return RepResult(index, side, rep, view, knee_flexion, fppa, fppa_raw, trunk, trunk_estimate, checks)


def _valgus(s: Series, legs: list[Side], rep: Rep, view: View, t, corr: LandmarkCorrection,
            bilateral: bool, width_rule: bool) -> tuple[Check, float | None, float | None]:
    """Knee valgus check, FPPA (corrected) and raw FPPA of the worse leg.

    FPPA needs a front or back view and a thigh that still shows most of its
    length (``MIN_THIGH_RATIO``): in a deep squat the thigh points at the
    camera and the image angle between thigh and shank stops meaning valgus.
    Then (and in oblique views) a bilateral squat is judged by how the knee
    width changes relative to the ankle width instead.
    """
    frontal = view in (View.FRONT, View.BACK)
    yaw_off = _yaw_from_front(s, rep)
    could_judge = frontal or (width_rule and view is View.OBLIQUE and yaw_off <= OBLIQUE_WIDTH_MAX_YAW_DEG)
    if could_judge and min(_at(s.legs[leg].ankle_seen, rep) for leg in legs) < 0.5:
        return not_measurable("feet out of frame (or hidden) at the bottom: knee valgus needs the "
                              "ankles; film the whole body, feet included"), None, None
    width = _width_check(s, rep, t, estimate=not frontal) if width_rule else None
    if frontal:
        per_leg = {leg: _at(s.legs[leg].fppa_deg, rep) for leg in legs}
        thigh = min(_at(s.legs[leg].thigh_ratio, rep) for leg in legs)
        known = {k: v for k, v in per_leg.items() if math.isfinite(v)}
        if not known:
            return not_measurable("hip, knee or ankle not visible at the bottom (valgus needs the "
                                  "whole leg, ankles included)"), None, None
        if not thigh >= MIN_THIGH_RATIO:
            if width is not None:
                return width, None, None
            return not_measurable(f"too deep to judge from the {view.value}: the thigh points at the "
                                  "camera (FPPA is defined for a visible thigh)"), None, None
        worst = max(known, key=known.get)
        fppa, raw = known[worst], _at(s.legs[worst].fppa_raw_deg, rep)
        c = check_valgus_fppa(fppa, corr.fppa_sd(back_view=view is View.BACK), t, bilateral=bilateral)
        if bilateral:
            c.extra["per_leg_deg"] = {k.value: _r(v) for k, v in per_leg.items()}
            if width is not None and width.extra.get("knee_width_change") is not None:
                c.extra["knee_width_change"] = width.extra["knee_width_change"]
        return c, fppa, (raw if math.isfinite(raw) else None)
    if bilateral and view is View.OBLIQUE and yaw_off <= OBLIQUE_WIDTH_MAX_YAW_DEG and width is not None:
        return width, None, None
    off = f" (camera about {yaw_off:.0f} deg off frontal)" if math.isfinite(yaw_off) and \
        view is View.OBLIQUE else ""
    return not_measurable(f"{view.value} view{off}: knee valgus needs the camera in front of or "
                          "behind the person"), None, None


def _width_check(s: Series, rep: Rep, t, *, estimate: bool) -> Check | None:
    bottom, standing = _at(s.knee_ankle_ratio, rep), _at(s.knee_ankle_ratio, _start(rep))
    if not (math.isfinite(bottom) and math.isfinite(standing) and standing > 0):
        return None
    reason = ("knee width / ankle width at the bottom vs standing"
              + (" (oblique view: an estimate)" if estimate else
                 " (deep squat: FPPA is not meaningful with the thighs pointing at the camera)"))
    return check_valgus_width(bottom / standing, WIDTH_SD, t, reason=reason, estimate=estimate,
                              extra={"knee_ankle_ratio": round(bottom, 2)})


def _hip_hinge(s: Series, rep: Rep, view: View, t, corr: LandmarkCorrection, bilateral: bool,
               upright_trunk: float) -> tuple[Check, float | None, bool]:
    """Trunk-lean check, trunk flexion, and whether it is an estimate.

    Side view: measured. Oblique view with the camera within 40 deg of the
    side: the image angle is de-projected with the yaw (tan(true) = tan(image)
    / sin(yaw)) and marked as an estimate. Front/back view, single-leg dip:
    estimated from the trunk's foreshortening. Otherwise not measurable.
    """
    yaw_off = _yaw_from_front(s, rep)
    if view is View.SIDE or (view is View.OBLIQUE and yaw_off >= 90 - NEAR_SIDE_MAX_DEG):
        trunk = _at(s.trunk_flexion_deg, rep)
        if not math.isfinite(trunk):
            return not_measurable("shoulders or hips not visible at the bottom"), None, False
        estimate = view is not View.SIDE
        sd = corr.trunk_sd_deg
        if estimate:
            k = math.sin(math.radians(yaw_off))
            trunk = math.degrees(math.atan2(math.tan(math.radians(trunk)), k))
            sd = corr.trunk_sd_deg / k + OBLIQUE_TRUNK_EXTRA_SD_DEG
        where = ("side view" if not estimate else
                 f"ESTIMATE: camera {yaw_off:.0f} deg from frontal, corrected for the angle")
        if bilateral:
            shin = _at(nanmean_rows([s.legs[leg].shin_lean_deg for leg in (Side.LEFT, Side.RIGHT)]), rep)
            if not math.isfinite(shin):
                return not_measurable("knees or ankles not visible at the bottom"), trunk, estimate
            if estimate:  # the shin leans in the same sagittal plane: de-projected alike
                shin = math.degrees(math.atan2(math.tan(math.radians(shin)), k))
            c = check_trunk(trunk - shin, sd * math.sqrt(2), t, bilateral=True, estimate=estimate,
                            reason=f"trunk lean minus shin lean at the bottom ({where})")
            c.extra["shin_lean_deg"] = _r(shin)
            c.extra["trunk_flexion_deg"] = _r(trunk)
            return c, trunk, estimate
        return check_trunk(trunk, sd, t, bilateral=False, estimate=estimate,
                           reason=f"trunk flexion from vertical at the bottom ({where})"), trunk, estimate
    if view in (View.FRONT, View.BACK):
        length = _at(s.trunk_length_px, rep)
        if not (math.isfinite(length) and upright_trunk > 0):
            return not_measurable("shoulders or hips not visible at the bottom"), None, False
        est = float(corr.foreshortened_trunk_deg(length, upright_trunk, back_view=view is View.BACK))
        if bilateral:
            return not_measurable(
                f"{view.value} view: trunk vs shin lean needs a side view (trunk flexion estimated "
                f"from foreshortening: about {est:.0f} deg)"), None, False
        return check_trunk(est, FORESHORTENING_SD_DEG, t, bilateral=False, estimate=True,
                           reason="ESTIMATE from the trunk's foreshortening in a "
                                  f"{view.value} view; film from the side to measure"), est, True
    return not_measurable(f"{view.value} view: trunk lean needs the camera at the person's side"), None, False


def _knee_flexion(s: Series, legs: list[Side], rep: Rep, view: View) -> float | None:
    """Peak knee flexion of the rep's working leg(s), from the measure the view allows.

    Side view: the image angle. Front/back: thigh and shank foreshortening
    (MediaPipe's world landmarks under-read it by 20-40 deg there). Other views:
    not measured.
    """
    if view is View.SIDE:
        series = [s.legs[leg].knee_flexion_2d_deg for leg in legs]
    elif view in (View.FRONT, View.BACK):
        series = [s.legs[leg].knee_flexion_fs_deg for leg in legs]
    else:
        return None
    vals = [v for v in (_at(x, rep) for x in series) if math.isfinite(v)]
    return max(vals) if vals else None


def _start(rep: Rep) -> Rep:
    from dataclasses import replace

    return replace(rep, bottom_index=rep.start_index)


def _yaw_from_front(s: Series, rep: Rep) -> float:
    """How far the camera is from the front-back axis at the rep bottom, 0..90 deg."""
    v = _at(s.yaw_deg, rep, half=3)
    if not math.isfinite(v):
        return math.nan
    v = abs(v)
    return min(v, 180.0 - v)


def _side_summaries(results: list[RepResult]) -> dict[Side, SideSummary]:
    out = {}
    for side in (Side.LEFT, Side.RIGHT, Side.BOTH):
        reps = [r for r in results if r.side is side]
        if not reps:
            continue
        full = [r for r in reps if not r.rep.partial]
        fppa = [r.fppa_deg for r in full if r.fppa_deg is not None]
        # Measured trunk lean when any rep has it; estimates are never averaged in with it.
        measured = [r.trunk_flexion_deg for r in full
                    if r.trunk_flexion_deg is not None and not r.trunk_estimate]
        trunk = measured or [r.trunk_flexion_deg for r in full if r.trunk_flexion_deg is not None]
        out[side] = SideSummary(
            side, len(full), len(reps) - len(full),
            float(np.mean(fppa)) if fppa else None, max(fppa) if fppa else None,
            float(np.mean(trunk)) if trunk else None, max(trunk) if trunk else None,
            sum(r.worst is Verdict.FAULT for r in full), trunk_estimate=bool(trunk) and not measured)
    return out


SQUAT_KNEES = "both knees in the squats"  # the basis of a squat's left vs right


def _compare(sides: dict[Side, SideSummary], settings: Settings,
             results: list[RepResult] = ()) -> dict:
    """Left vs right: which side is weaker, if the difference exceeds the SDD.

    From a set on each leg; failing that, from both knees within the squats
    (the same reps, so only knee valgus: a squat has one trunk).
    """
    left, right = sides.get(Side.LEFT), sides.get(Side.RIGHT)
    t = settings.thresholds
    if left is None or right is None:
        knees = _squat_knees(results)
        if knees is None:
            squats = any(r.side is Side.BOTH and not r.rep.partial for r in results)
            return {"available": False,
                    "note": ("left vs right in squats compares the two knees' FPPA, which no rep "
                             "allowed (it needs a front or back view and thighs that do not point "
                             "at the camera)" if squats else
                             "left vs right needs reps on both legs (film a set on each leg)")}
        lv, rv, n = knees
        out = {"available": True, "basis": SQUAT_KNEES, "reps": n,
               "fppa": _difference(lv - rv, t.fppa_sdd_deg, "knee valgus", "knee"),
               "trunk": {"difference_deg": None, "weaker": None,
                         "note": "one trunk in a squat: no left vs right"}}
        out["fppa"].update(left_mean_valgus_deg=_r(lv), right_mean_valgus_deg=_r(rv))
        return out
    out: dict = {"available": True, "basis": "a set on each leg"}
    for key, sdd, label in (("fppa", t.fppa_sdd_deg, "knee valgus"),
                            ("trunk", t.trunk_sdd_deg, "trunk lean")):
        lv, rv = getattr(left, f"{key}_mean_deg"), getattr(right, f"{key}_mean_deg")
        if lv is None or rv is None:
            out[key] = {"difference_deg": None, "weaker": None, "note": f"{label} not measured on both sides"}
            continue
        if key == "trunk" and (left.trunk_estimate or right.trunk_estimate):
            out[key] = {"difference_deg": None, "weaker": None,
                        "note": "trunk lean is only estimated from this view (film from the side "
                                "to compare the legs)"}
            continue
        if key == "fppa":  # an imbalance of valgus: knees pushed out (negative FPPA) count as 0
            lv, rv = ((_mean_valgus(results, Side.LEFT), _mean_valgus(results, Side.RIGHT))
                      if results else (max(lv, 0.0), max(rv, 0.0)))  # per rep, or the means
            out[key] = _difference(lv - rv, sdd, label, "leg")
            out[key].update(left_mean_valgus_deg=_r(lv), right_mean_valgus_deg=_r(rv))
            continue
        out[key] = _difference(lv - rv, sdd, label, "leg")
    return out


def _difference(diff: float, sdd: float, label: str, part: str) -> dict:
    if abs(diff) < sdd:
        return {"difference_deg": _r(diff), "weaker": None,
                "note": f"no clear difference ({abs(diff):.1f} deg is below the "
                        f"{sdd:g} deg smallest detectable difference)"}
    weaker = "left" if diff > 0 else "right"
    return {"difference_deg": _r(diff), "weaker": weaker,
            "note": f"more {label} on the {weaker} {part} by {abs(diff):.1f} deg: "
                    f"work off the weaker side"}


def _mean_valgus(results, side: Side) -> float:
    """Mean of max(FPPA, 0) over the side's full reps with an FPPA (as the squat knees)."""
    vals = [max(r.fppa_deg, 0.0) for r in results
            if r.side is side and not r.rep.partial and r.fppa_deg is not None]
    return float(np.mean(vals)) if vals else math.nan


def _squat_knees(results) -> tuple[float, float, int] | None:
    """Mean valgus of the left and of the right knee over the full squat reps that measured both.

    Valgus is FPPA with knees pushed out (negative FPPA, common in deep squats)
    counted as 0: a difference in how far the knees go out is not an imbalance
    of valgus.
    """
    pairs = []
    for r in results:
        c = r.checks.get("knee_valgus")
        per_leg = c.extra.get("per_leg_deg", {}) if c is not None and r.fppa_deg is not None else {}
        if r.side is Side.BOTH and not r.rep.partial and \
                per_leg.get("left") is not None and per_leg.get("right") is not None:
            pairs.append((max(per_leg["left"], 0.0), max(per_leg["right"], 0.0)))
    if not pairs:
        return None
    lv, rv = np.mean(pairs, axis=0)
    return float(lv), float(rv), len(pairs)


def _notes(ctx: ClipContext, results: list[RepResult], raw: PoseSequence,
           info: VideoInfo | None = None) -> list[str]:
    notes = []
    cut = _truncation(raw, info)
    if cut:
        notes.append(cut)
    v = ctx.view
    if v.view in (View.SIDE,):
        notes.append("Side view: knee valgus cannot be judged from the side; film from the front "
                     "(or back) at hip height to check the knee.")
    elif v.view in (View.FRONT, View.BACK):
        if any(r.trunk_estimate and r.trunk_flexion_deg is not None for r in results):
            notes.append(f"{v.view.value.capitalize()} view: trunk lean is only estimated from the "
                         "trunk's foreshortening; film from the side to measure it.")
        else:
            notes.append(f"{v.view.value.capitalize()} view: trunk lean (against the shin, in a "
                         "squat) needs a side view; film from the side to check it.")
    elif v.view is View.OBLIQUE:
        estimated = [name for name, flag in (
            ("knee valgus", any(r.checks["knee_valgus"].estimate and r.checks["knee_valgus"].value is not None
                                for r in results)),
            ("trunk lean", any(r.trunk_estimate and r.trunk_flexion_deg is not None for r in results)))
            if flag]
        what = (f"{' and '.join(estimated)} only estimated (marked ~)"
                if estimated else "neither FPPA nor trunk lean can be measured from this angle")
        if any(r.view is not View.OBLIQUE and (r.fppa_deg is not None or (
                r.trunk_flexion_deg is not None and not r.trunk_estimate)) for r in results):
            what += " (reps filmed from another angle are measured as usual)"
        notes.append(f"Oblique view (about {abs(v.yaw_deg):.0f} deg off frontal): {what}; film square "
                     "to the front (knee) or the side (trunk) to measure.")
    else:
        notes.append("The camera view could not be recognised: nothing could be measured reliably.")
    if raw.detection_rate < 0.8:
        notes.append(f"The person was found in only {raw.detection_rate:.0%} of the frames.")
    for a, b in _gaps(raw, 0.5):
        notes.append(f"The person was lost (out of frame or hidden) from {a:.1f} s to {b:.1f} s; "
                     "a rep during that time is not counted.")
    if any(r.fppa_deg is not None and r.fppa_deg > LARGE_FPPA_DEG for r in results):
        notes.append(f"FPPA above about {LARGE_FPPA_DEG:.0f} deg reads low: against exact ground truth a "
                     "true 30 deg reads 22-25 deg (the pose model keeps about 80% of a large inward "
                     "knee offset). Those reps are faults either way; the real angle is likely larger.")
    if not results:
        notes.append("No repetitions found.")
    elif not [r for r in results if not r.rep.partial]:
        notes.append("Only partial repetitions found.")
    return notes
