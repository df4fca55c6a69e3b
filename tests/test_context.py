"""Tests for formcheck.context: camera view, exercise and stance leg.

Two kinds of input, neither needs MediaPipe or a landmark cache:

* hand-built skeletons seen by a pinhole camera at a known yaw (tables);
* the synthetic dev clips' ground truth (``/work/shared/clips/synthetic``):
  the GT joint centres (8 joints) turned into a MediaPipe-like PoseSequence
  (image x, y normalised; world = camera frame, x right, y down, z away,
  origin at the hip centre; every other landmark NaN). Skipped without it.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from formcheck import context as ctx
from formcheck.context import ContextSettings, Exercise, View
from formcheck.errors import FormcheckError
from formcheck.pose import NUM_LANDMARKS, PoseSequence, Side
from formcheck.pose import Landmark as Lm

SYNTH = Path("/work/shared/clips/synthetic")
needs_shared = pytest.mark.skipif(not SYNTH.is_dir(), reason="/work/shared clips not available")


# -- hand-built skeletons ----------------------------------------------------------
# Subject frame: metres, x = the subject's LEFT, y up, z forward (the way the
# subject faces), floor at y = 0 (as the synthetic ground truth).
STANDING = {
    Lm.NOSE: (0.0, 1.62, 0.10), Lm.LEFT_EAR: (0.08, 1.64, 0.0), Lm.RIGHT_EAR: (-0.08, 1.64, 0.0),
    Lm.LEFT_SHOULDER: (0.19, 1.42, 0.0), Lm.RIGHT_SHOULDER: (-0.19, 1.42, 0.0),
    Lm.LEFT_HIP: (0.10, 0.92, 0.0), Lm.RIGHT_HIP: (-0.10, 0.92, 0.0),
    Lm.LEFT_KNEE: (0.10, 0.50, 0.02), Lm.RIGHT_KNEE: (-0.10, 0.50, 0.02),
    Lm.LEFT_ANKLE: (0.10, 0.08, 0.0), Lm.RIGHT_ANKLE: (-0.10, 0.08, 0.0),
    Lm.LEFT_HEEL: (0.10, 0.03, -0.05), Lm.RIGHT_HEEL: (-0.10, 0.03, -0.05),
    Lm.LEFT_FOOT_INDEX: (0.10, 0.02, 0.15), Lm.RIGHT_FOOT_INDEX: (-0.10, 0.02, 0.15),
}
LEFT_FOOT = (Lm.LEFT_ANKLE, Lm.LEFT_HEEL, Lm.LEFT_FOOT_INDEX)


def skeleton(lift_left_m=0.0, left_foot_z_m=0.0, left_knee_z_m=None):
    """(33, 3) subject-frame joints; the left foot raised / moved forward (+z) or back."""
    p = np.full((NUM_LANDMARKS, 3), np.nan)
    for lm, xyz in STANDING.items():
        p[lm] = xyz
    p[list(LEFT_FOOT)] += (0.0, lift_left_m, left_foot_z_m)
    if left_knee_z_m is not None:
        p[Lm.LEFT_KNEE, 2] = left_knee_z_m
    return p


def film(frames, yaw_deg, distance=3.0, height=1.0, size=(480, 854), fps=30.0):
    """PoseSequence of subject-frame joints (T, 33, 3) seen from a camera at
    ``yaw_deg`` (the synthetic GT convention: 0 = in front, 90 = at the
    subject's left), pointing horizontally at the subject."""
    frames = np.asarray(frames, float)
    yaw = math.radians(yaw_deg)
    cam = np.array([distance * math.sin(yaw), height, distance * math.cos(yaw)])
    right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    down = np.array([0.0, -1.0, 0.0])
    fwd = -np.array([math.sin(yaw), 0.0, math.cos(yaw)])
    rel = frames - cam
    pc = np.stack([rel @ right, rel @ down, rel @ fwd], axis=-1)     # x right, y down, z away
    w, h = size
    f = 1.1 * h
    xyz = np.stack([(f * pc[..., 0] / pc[..., 2] + w / 2) / w,
                    (f * pc[..., 1] / pc[..., 2] + h / 2) / h, np.zeros(pc.shape[:2])], axis=-1)
    world = pc - (pc[:, [Lm.LEFT_HIP]] + pc[:, [Lm.RIGHT_HIP]]) / 2
    vis = np.where(np.isnan(frames[..., 0]), 0.0, 0.99)
    t = np.arange(len(frames)) * 1000.0 / fps
    return PoseSequence(t, xyz, world, vis, w, h)


def still(n=90, **kw):
    return np.repeat(skeleton(**kw)[None], n, axis=0)


@pytest.mark.parametrize("yaw, view", [
    (0, View.FRONT), (12, View.FRONT), (-18, View.FRONT),
    (180, View.BACK), (165, View.BACK), (-170, View.BACK),
    (90, View.SIDE), (-90, View.SIDE), (75, View.SIDE), (-105, View.SIDE),
    (45, View.OBLIQUE), (-45, View.OBLIQUE), (135, View.OBLIQUE), (-30, View.OBLIQUE),
])
def test_view_of_a_still_skeleton(yaw, view):
    est = ctx.estimate_view(film(still(), yaw))
    assert est.view is view
    assert abs(ctx._wrap(est.yaw_deg - yaw)) < 3.0
    assert est.confidence > 0.5
    assert [s.view for s in est.per_segment] == [view]


@pytest.mark.parametrize("yaw, facing", [(90, -1), (-90, +1), (60, -1), (-120, +1), (0, 0), (180, 0)])
def test_facing(yaw, facing):
    assert ctx.estimate_view(film(still(), yaw)).facing == facing


def test_frontal_t_pose_versus_side_profile():
    front, side = ctx.estimate_view(film(still(), 0)), ctx.estimate_view(film(still(), -90))
    assert front.frontal and not front.sagittal
    assert side.sagittal and not side.frontal


def test_view_segments_follow_a_camera_change():
    a, b = film(still(150), 0), film(still(120), 90)
    seq = PoseSequence.concatenate([a, b.with_arrays(timestamps_ms=b.timestamps_ms + 5000.0)])
    est = ctx.estimate_view(seq)
    assert [s.view for s in est.per_segment] == [View.FRONT, View.SIDE]
    assert est.view is View.FRONT                      # most of the time
    assert est.confidence < 0.75                       # ... but not all of it
    assert est.per_segment[1].start_s == pytest.approx(5.0, abs=0.3)   # 1 s smoothing


def test_no_person_is_unknown():
    seq = PoseSequence.empty(np.arange(30) * 33.3, 480, 854)
    assert ctx.estimate_view(seq).view is View.UNKNOWN
    assert ctx.estimate_view(seq).confidence == 0.0
    assert ctx.estimate_exercise(seq) == (Exercise.UNKNOWN, 0.0)
    assert all(s is None for s in ctx.stance_series(seq))
    assert ctx.estimate_sets(seq) == []


@pytest.mark.parametrize("yaw", [0, 180, -90, 45])
@pytest.mark.parametrize("lift_m, foot_z_m, stance, exercise", [
    (0.0, 0.0, Side.BOTH, Exercise.SQUAT),                      # both feet down
    (0.20, -0.25, Side.RIGHT, Exercise.SINGLE_LEG_SQUAT),        # free foot up behind (dev clips)
    (0.25, 0.30, Side.RIGHT, Exercise.SINGLE_LEG_SQUAT),         # free foot up in front
    (0.45, -0.75, Side.BOTH, Exercise.UNKNOWN),                  # rear foot on a bench (split squat)
])
def test_stance_and_exercise_tables(yaw, lift_m, foot_z_m, stance, exercise):
    frames = still(lift_left_m=lift_m, left_foot_z_m=foot_z_m)
    if foot_z_m > 0:   # a straight free leg held out in front: the knee goes forward too
        frames[:, Lm.LEFT_KNEE, 2] = foot_z_m / 2
    seq = film(frames, yaw)
    assert all(s is stance for s in ctx.stance_series(seq))
    assert ctx.estimate_exercise(seq)[0] is exercise


def squatting(n_reps=3, fps=30.0, lift_left=None):
    """Frames of bilateral (or, with ``lift_left``, right-leg) squats: the hips drop
    by 0.2 m at each rep; ``lift_left(i)`` gives the left foot's lift per frame."""
    frames = []
    for i in range(int(n_reps * 2.0 * fps)):
        p = skeleton(lift_left_m=lift_left(i) if lift_left else 0.0)
        drop = 0.2 * (0.5 - 0.5 * math.cos(2 * math.pi * i / (2.0 * fps)))
        above_knee = np.array([lm not in (Lm.LEFT_KNEE, Lm.RIGHT_KNEE, *LEFT_FOOT, Lm.RIGHT_ANKLE,
                                          Lm.RIGHT_HEEL, Lm.RIGHT_FOOT_INDEX) for lm in Lm])
        p[above_knee, 1] -= drop
        p[[Lm.LEFT_KNEE, Lm.RIGHT_KNEE], 1] -= drop / 2
        p[[Lm.LEFT_KNEE, Lm.RIGHT_KNEE], 2] += drop
        frames.append(p)
    return np.array(frames)


def test_hysteresis_does_not_flicker():
    # Lift 0.2 m (~0.24 leg lengths) with dips to 0.09 m (between lift_off and
    # lift_on) for 0.3 s every second: one right-leg stance throughout.
    lift = lambda i: 0.09 if (i % 30) < 9 else 0.20
    stance = ctx.stance_series(film(squatting(lift_left=lift), 0))
    assert all(s is Side.RIGHT for s in stance)


def test_short_foot_raises_in_a_squat_are_ignored():
    # A bilateral squat with a 0.25 s spike of the left foot (a tracking glitch).
    lift = lambda i: 0.25 if 40 <= i < 48 else 0.0
    seq = film(squatting(lift_left=lift), 0)
    assert all(s is Side.BOTH for s in ctx.stance_series(seq))
    assert ctx.estimate_exercise(seq)[0] is Exercise.SQUAT


def test_sets_right_then_left():
    right = film(squatting(lift_left=lambda i: 0.2), 0)
    mirrored = squatting(lift_left=lambda i: 0.2)
    swap = {lm: Lm[lm.name.replace("LEFT_", "TMP_").replace("RIGHT_", "LEFT_").replace("TMP_", "RIGHT_")]
            for lm in Lm}
    mirrored = mirrored[:, [swap[lm] for lm in Lm]] * np.array([-1.0, 1.0, 1.0])
    left = film(mirrored, 0)
    seq = PoseSequence.concatenate(
        [right, left.with_arrays(timestamps_ms=left.timestamps_ms + right.timestamps_ms[-1] + 33.3)])
    sets = ctx.estimate_sets(seq)
    assert [s.stance for s in sets] == [Side.RIGHT, Side.LEFT]
    assert sets[0].start_s == pytest.approx(0.0) and sets[1].end_s == pytest.approx(seq.times_s[-1])
    assert sets[1].start_s == pytest.approx(6.0, abs=0.7)
    assert all(s.exercise is Exercise.SINGLE_LEG_SQUAT and s.confidence > 0.8 for s in sets)


def test_summary_line():
    c = ctx.estimate_context(film(squatting(lift_left=lambda i: 0.2), 0))
    assert c.summary().startswith("front view (conf ")
    assert "single-leg squat" in c.summary() and c.summary().endswith("right leg 0.0-6.0 s")


@pytest.mark.parametrize("bad", [
    {"frontal_tol_deg": 0}, {"side_tol_deg": 50}, {"min_visibility": 1.5},
    {"lift_on": 0.05, "lift_off": 0.1}, {"segment_s": -1.0}, {"split_stance": float("nan")},
])
def test_settings_are_checked(bad):
    with pytest.raises(FormcheckError):
        ContextSettings(**bad)
    with pytest.raises(ValueError):
        ContextSettings(**bad)


# -- the synthetic dev clips' ground truth --------------------------------------------
GT_JOINTS = {"hipL": Lm.LEFT_HIP, "hipR": Lm.RIGHT_HIP, "kneeL": Lm.LEFT_KNEE,
             "kneeR": Lm.RIGHT_KNEE, "ankleL": Lm.LEFT_ANKLE, "ankleR": Lm.RIGHT_ANKLE,
             "shoulderL": Lm.LEFT_SHOULDER, "shoulderR": Lm.RIGHT_SHOULDER}
GT_VIEW = {"frontal": View.FRONT, "back": View.BACK, "side": View.SIDE, "oblique": View.OBLIQUE}
GT_SIDE = {"R": Side.RIGHT, "L": Side.LEFT, "both": Side.BOTH}
DEV_CLIPS = sorted(p.name[:-len(".gt.json")] for p in SYNTH.glob("dev*.gt.json")) or ["none"]


@functools.cache
def gt_clip(name: str) -> tuple[PoseSequence, dict]:
    """A MediaPipe-like PoseSequence from the GT joint centres, and the GT."""
    g = json.loads((SYNTH / f"{name}.gt.json").read_text())
    n, w, h = len(g["frames"]), g["width"], g["height"]
    xyz = np.full((n, NUM_LANDMARKS, 3), np.nan)
    world = np.full((n, NUM_LANDMARKS, 3), np.nan)
    vis = np.zeros((n, NUM_LANDMARKS))
    world_to_cam = np.linalg.inv(np.array(g["camera"]["cam_to_world"]))   # OpenGL camera
    for i, fr in enumerate(g["frames"]):
        for key, lm in GT_JOINTS.items():
            x, y = fr["j2d"][key]
            xyz[i, lm] = (x / w, y / h, 0.0)
            cx, cy, cz, _ = world_to_cam @ np.r_[fr["j3d"][key], 1.0]
            world[i, lm] = (cx, -cy, -cz)           # -> x right, y down, z away
            vis[i, lm] = 1.0
        world[i] -= (world[i, Lm.LEFT_HIP] + world[i, Lm.RIGHT_HIP]) / 2
    return PoseSequence(np.array(g["timestamps"]) * 1000.0, xyz, world, vis, w, h), g


@needs_shared
@pytest.mark.parametrize("name", DEV_CLIPS)
def test_gt_view(name):
    seq, g = gt_clip(name)
    est = ctx.estimate_view(seq)
    assert est.view is GT_VIEW[g["camera"]["view"]]
    assert abs(ctx._wrap(est.yaw_deg - g["camera"]["yaw"])) < 8.0
    assert est.confidence > 0.8
    if est.view in (View.SIDE, View.OBLIQUE):
        assert est.facing == -np.sign(math.sin(math.radians(g["camera"]["yaw"])))


@needs_shared
@pytest.mark.parametrize("name", DEV_CLIPS)
def test_gt_exercise_and_stance(name):
    seq, g = gt_clip(name)
    c = ctx.estimate_context(seq)
    single = g["spec"]["exercise"] == "single_leg"
    assert c.exercise is (Exercise.SINGLE_LEG_SQUAT if single else Exercise.SQUAT)
    assert c.exercise_confidence > 0.8
    stance = ctx.stance_series(seq)
    want = np.array([GT_SIDE[f["stance"]] for f in g["frames"]], object)
    in_rep = np.zeros(len(seq), bool)
    for rep in g["reps"]:
        in_rep[rep["start_frame"]:rep["end_frame"] + 1] = True
    agree = np.mean([a is b for a, b in zip(stance[in_rep], want[in_rep])])
    assert agree > 0.95
    expected = GT_SIDE[g["spec"]["stance"]] if single else Side.BOTH
    assert [s.stance for s in c.sets] == [expected]


@needs_shared
def test_gt_two_sets_in_one_clip():
    (r, _), (l, _) = gt_clip("dev01_slsR_front_fppa0-0-0"), gt_clip("dev03_slsL_front_fppa25-25-25")
    seq = PoseSequence.concatenate(
        [r, l.with_arrays(timestamps_ms=l.timestamps_ms + r.timestamps_ms[-1] + 1000 / 30)])
    sets = ctx.estimate_sets(seq)
    assert [s.stance for s in sets] == [Side.RIGHT, Side.LEFT]
    assert sets[1].start_s == pytest.approx(r.times_s[-1], abs=0.7)


def dipping_on_the_right(n_reps=3, fps=30.0, free_rides=True):
    """Right-leg dips: the hips (and, if ``free_rides``, the raised left foot hanging from
    them) drop by 0.2 m each rep; the right foot stays planted."""
    frames = []
    for i in range(int(n_reps * 2.0 * fps)):
        p = skeleton(lift_left_m=0.2, left_foot_z_m=-0.25)
        drop = 0.2 * (0.5 - 0.5 * math.cos(2 * math.pi * i / (2.0 * fps)))
        planted = [Lm.RIGHT_ANKLE, Lm.RIGHT_HEEL, Lm.RIGHT_FOOT_INDEX]
        moving = [lm for lm in Lm if lm not in planted and (free_rides or lm not in LEFT_FOOT)]
        p[moving, 1] -= drop
        frames.append(p)
    return np.array(frames)


@pytest.mark.parametrize("yaw", [180, 0, -90])
def test_a_free_foot_that_rides_with_the_hips_is_off_the_floor(yaw):
    """Seen from behind, MediaPipe puts a foot raised behind (towards the camera) back on the
    floor in its world landmarks (dev07): the stance leg must come from the image, where
    the free foot goes up and down with the hips and the planted one stays."""
    seq = film(dipping_on_the_right(), yaw)
    flat = seq.world.copy()  # the world feet flattened onto the floor, as MediaPipe does
    for a, b in zip(LEFT_FOOT, (Lm.RIGHT_ANKLE, Lm.RIGHT_HEEL, Lm.RIGHT_FOOT_INDEX)):
        flat[:, a, 1] = flat[:, b, 1]
    seq = seq.with_arrays(world=flat)
    c = ctx.estimate_context(seq)
    assert c.exercise is Exercise.SINGLE_LEG_SQUAT and [st.stance for st in c.sets] == [Side.RIGHT]
    # a foot that does not ride (stands still on the floor) gives no such evidence
    still_feet = film(dipping_on_the_right(free_rides=False), yaw)
    legs = ctx._legs(still_feet.with_arrays(world=flat), ContextSettings())
    assert not legs.rides_l.any() and not legs.rides_r.any()


def test_gaps_without_a_person():
    frames = squatting(lift_left=lambda i: 0.2)
    frames[60:75] = np.nan      # 0.5 s without a person: the stance holds around it
    frames[120:] = np.nan       # 2 s at the end: unknown
    stance = ctx.stance_series(film(frames, 0))
    assert all(s is Side.RIGHT for s in stance[:60]) and all(s is Side.RIGHT for s in stance[75:120])
    assert all(s is None for s in stance[60:75]) and all(s is None for s in stance[120:])
    sets = ctx.estimate_sets(film(frames, 0))
    assert [(s.stance, s.start_s) for s in sets] == [(Side.RIGHT, 0.0)]
    assert sets[0].end_s == pytest.approx(119 / 30)
