"""Tests for formcheck.geometry: tables of synthetic points with known angles,
and the synthetic clips' ground truth (shared/clips/synthetic)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from formcheck import geometry as g

TOL = 1e-6
SYNTH = Path("/work/shared/clips/synthetic")


def polar(origin, length, deg_from_down, x_sign=1.0):
    """origin + a segment of `length` pointing image-DOWN, turned by `deg_from_down`
    towards image x_sign (+1 right, -1 left)."""
    r = np.radians(deg_from_down)
    return np.asarray(origin, float) + length * np.array([x_sign * np.sin(r), np.cos(r)])


def up_at(origin, length, deg_from_up, x_sign=1.0):
    """origin + a segment pointing image-UP, turned by `deg_from_up` towards image x_sign."""
    r = np.radians(deg_from_up)
    return np.asarray(origin, float) + length * np.array([x_sign * np.sin(r), -np.cos(r)])


# Which image x direction is medial (towards the other hip) for each leg and view.
# FRONT view: the subject's left is on the image right; BACK view: on the image left.
MEDIAL_X = {("R", "front"): +1.0, ("L", "front"): -1.0,
            ("R", "back"): -1.0, ("L", "back"): +1.0}


def leg(side, view, fppa, thigh_share=0.5, thigh=120.0, shank=110.0):
    """hip, knee, ankle, other_hip with the knee displaced MEDIALLY by `fppa` deg total
    (negative = laterally), the deviation split between thigh and shank."""
    m = MEDIAL_X[(side, view)]
    hip = np.array([200.0, 300.0])
    other_hip = hip + np.array([m * 70.0, 3.0])
    knee = polar(hip, thigh, fppa * thigh_share, m)            # thigh turned medially
    ankle = polar(knee, shank, fppa * (1 - thigh_share), -m)   # shank turned back laterally
    return hip, knee, ankle, other_hip


# -- FPPA ------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["L", "R"])
@pytest.mark.parametrize("view", ["front", "back"])
@pytest.mark.parametrize("fppa, share", [
    (0.0, 0.5), (5.0, 0.5), (15.0, 0.3), (25.0, 0.7), (40.0, 0.5),   # valgus
    (-5.0, 0.5), (-12.0, 0.2), (-30.0, 0.6),                         # varus
])
def test_fppa_sign_both_legs_both_views(side, view, fppa, share):
    hip, knee, ankle, other = leg(side, view, fppa, share)
    # sanity of the construction: a valgus knee is on the other hip's side of hip->ankle
    line_x = hip[0] + (ankle[0] - hip[0]) * (knee[1] - hip[1]) / (ankle[1] - hip[1])
    assert np.sign(knee[0] - line_x) == np.sign(fppa) * np.sign(other[0] - hip[0]) or fppa == 0
    assert g.fppa_deg(hip, knee, ankle, other) == pytest.approx(fppa, abs=TOL)
    # mirroring the image (front <-> back) keeps the value
    mirror = np.array([-1.0, 1.0])
    assert g.fppa_deg(hip * mirror, knee * mirror, ankle * mirror, other * mirror) \
        == pytest.approx(fppa, abs=TOL)


@pytest.mark.parametrize("side", ["L", "R"])
@pytest.mark.parametrize("view", ["front", "back"])
@pytest.mark.parametrize("fppa, share", [(0.0, 0.5), (20.0, 0.5), (20.0, 0.2), (-15.0, 0.5)])
def test_knee_medial_displacement_sign(side, view, fppa, share):
    hip, knee, ankle, other = leg(side, view, fppa, share, thigh=100.0, shank=100.0)
    d = g.knee_medial_displacement(hip, knee, ankle, other)
    if fppa == 0:
        assert d == pytest.approx(0.0, abs=TOL)
    else:
        assert np.sign(d) == np.sign(fppa)
    if share == 0.5:  # isosceles: distance = L sin(f/2), hip-ankle = 2 L cos(f/2)
        half = np.radians(fppa / 2)
        assert d == pytest.approx(np.tan(half) / 2, abs=TOL)


def _load_gt(name):
    path = SYNTH / f"{name}.gt.json"
    if not path.exists():
        pytest.skip(f"ground truth {path} not available")
    d = json.loads(path.read_text())
    frames = d["frames"]
    j2d = {k: np.array([f["j2d"][k] for f in frames], float) for k in d["joints"]}
    return d, frames, j2d


@pytest.mark.parametrize("name", [
    "dev02_slsR_front_fppa0-20-30",
    "dev07_slsR_back_fppa0-15-25",
    "dev11_dls_front_landscape_fppaR5_L20",
])
def test_fppa_matches_synthetic_ground_truth(name):
    _, frames, j = _load_gt(name)
    got_r = g.fppa_deg(j["hipR"], j["kneeR"], j["ankleR"], j["hipL"])
    got_l = g.fppa_deg(j["hipL"], j["kneeL"], j["ankleL"], j["hipR"])
    want_r = np.array([f["fppa"]["R"] for f in frames])
    want_l = np.array([f["fppa"]["L"] for f in frames])
    assert got_r.shape == (len(frames),)
    np.testing.assert_allclose(got_r, want_r, atol=0.01, rtol=0)
    np.testing.assert_allclose(got_l, want_l, atol=0.01, rtol=0)


def _facing_from_camera(d):
    """+1 if the subject (facing world +z) faces image right: world +z has a positive
    component along the camera's x axis (first column of cam_to_world)."""
    return float(np.sign(np.array(d["camera"]["cam_to_world"])[2][0]))


@pytest.mark.parametrize("name, facing", [
    ("dev05_slsR_side_lean10-40-10", +1.0),
    ("dev09_dls_side_lean15-30-45", -1.0),
])
def test_trunk_flexion_matches_synthetic_side_clip(name, facing):
    d, frames, j = _load_gt(name)
    assert _facing_from_camera(d) == facing
    got = g.trunk_flexion_deg(g.midpoint(j["hipR"], j["hipL"]),
                              g.midpoint(j["shoulderR"], j["shoulderL"]), facing)
    want = np.array([f["trunk_lean_2d"] for f in frames])
    np.testing.assert_allclose(got, want, atol=0.01, rtol=0)


# -- knee flexion ------------------------------------------------------------
@pytest.mark.parametrize("flex", [0.0, 45.0, 90.0, 120.0, 170.0])
@pytest.mark.parametrize("dim", [2, 3])
def test_knee_flexion(flex, dim):
    r = np.radians(flex)
    hip = np.array([0.0, -0.4])                 # thigh straight up from the knee
    knee = np.zeros(2)
    ankle = 0.4 * np.array([np.sin(r), np.cos(r)])  # shank turned by flex from straight down
    if dim == 3:  # same angle in an arbitrary 3D plane: embed and rotate
        rot = np.array([[0.6, 0.0, 0.8], [0.0, 1.0, 0.0], [-0.8, 0.0, 0.6]])
        hip, knee, ankle = (rot @ np.append(p, 0.0) + [1.0, 2.0, 3.0]
                            for p in (hip, knee, ankle))
    assert g.knee_flexion_deg(hip, knee, ankle) == pytest.approx(flex, abs=TOL)


@pytest.mark.parametrize("v1, v2, want", [
    ((1, 0), (1, 0), 0.0), ((1, 0), (0, 1), 90.0), ((1, 0), (-1, 0), 180.0),
    ((1, 0), (1, 1), 45.0), ((2, 0, 0), (0, 0, 5), 90.0), ((1, 1, 0), (1, 1, 1e-9), 0.0),
])
def test_angle_between(v1, v2, want):
    assert g.angle_between_deg(v1, v2) == pytest.approx(want, abs=TOL)


# -- side view: trunk, shin, knee past toes -----------------------------------
@pytest.mark.parametrize("facing", [+1.0, -1.0])
@pytest.mark.parametrize("lean", [0.0, 20.0, 45.0, 90.0, -10.0])
def test_trunk_flexion_forward_positive(facing, lean):
    hip = np.array([300.0, 500.0])
    shoulder = up_at(hip, 180.0, lean, facing)   # turned towards where the subject faces
    assert g.trunk_flexion_deg(hip, shoulder, facing) == pytest.approx(lean, abs=TOL)
    assert g.trunk_flexion_deg(hip, shoulder, -facing) == pytest.approx(-lean, abs=TOL)


@pytest.mark.parametrize("facing", [+1.0, -1.0])
@pytest.mark.parametrize("trunk, shin", [(30.0, 30.0), (50.0, 25.0), (10.0, 35.0), (0.0, 0.0)])
def test_shin_lean_and_trunk_minus_shin(facing, trunk, shin):
    ankle = np.array([300.0, 800.0])
    knee = up_at(ankle, 150.0, shin, facing)
    hip = knee + np.array([-facing * 100.0, -20.0])
    shoulder = up_at(hip, 170.0, trunk, facing)
    assert g.shin_lean_deg(ankle, knee, facing) == pytest.approx(shin, abs=TOL)
    assert g.trunk_minus_shin_deg(hip, shoulder, knee, ankle, facing) \
        == pytest.approx(trunk - shin, abs=TOL)


@pytest.mark.parametrize("facing", [+1.0, -1.0])
@pytest.mark.parametrize("ahead_px, want", [(30.0, 0.2), (0.0, 0.0), (-15.0, -0.1)])
def test_knee_past_toes(facing, ahead_px, want):
    ankle = np.array([400.0, 800.0])
    toe = ankle + np.array([facing * 40.0, 5.0])
    knee = np.array([toe[0] + facing * ahead_px, 0.0])
    knee[1] = ankle[1] - np.sqrt(150.0**2 - (knee[0] - ankle[0]) ** 2)  # shank = 150 px
    assert g.knee_past_toes(knee, ankle, toe, facing) == pytest.approx(want, abs=TOL)


@pytest.mark.parametrize("segment_deg", [0.0, 30.0, -30.0, 90.0, -90.0, 150.0, -135.0])
def test_segment_angle_from_vertical(segment_deg):
    lower = np.array([10.0, 10.0])
    upper = up_at(lower, 5.0, segment_deg)   # positive = towards image right
    assert g.segment_angle_from_vertical_deg(lower, upper) == pytest.approx(segment_deg, abs=TOL)


# -- frontal view: lateral lean, pelvic drop, width ratio, foreshortening ---------
@pytest.mark.parametrize("view", ["front", "back"])
@pytest.mark.parametrize("lean_to_left", [0.0, 8.0, -12.0])
def test_lateral_trunk_lean(view, lean_to_left):
    left_x = +1.0 if view == "front" else -1.0   # image side of the subject's left
    hc = np.array([240.0, 500.0])
    hip_l, hip_r = hc + [left_x * 40.0, 0.0], hc - [left_x * 40.0, 0.0]
    sc = up_at(hc, 170.0, lean_to_left, left_x)
    sh_l, sh_r = sc + [left_x * 60.0, 0.0], sc - [left_x * 60.0, 0.0]
    assert g.lateral_trunk_lean_deg(hip_l, hip_r, sh_l, sh_r) \
        == pytest.approx(lean_to_left, abs=TOL)


@pytest.mark.parametrize("stance", ["L", "R"])
@pytest.mark.parametrize("view", ["front", "back"])
@pytest.mark.parametrize("drop", [0.0, 7.0, -5.0])
def test_pelvic_drop(stance, view, drop):
    free_x = MEDIAL_X[(stance, view)]  # the free hip lies medially of the stance hip
    stance_hip = np.array([200.0, 450.0])
    r = np.radians(drop)
    free_hip = stance_hip + 80.0 * np.array([free_x * np.cos(r), np.sin(r)])  # +y = lower
    assert g.pelvic_drop_deg(stance_hip, free_hip) == pytest.approx(drop, abs=TOL)


@pytest.mark.parametrize("knee_w, ankle_w, want", [
    (60.0, 80.0, 0.75), (80.0, 80.0, 1.0), (100.0, 80.0, 1.25), (50.0, 0.0, np.nan),
])
@pytest.mark.parametrize("view_sign", [+1.0, -1.0])
def test_knee_ankle_width_ratio(knee_w, ankle_w, want, view_sign):
    c = 240.0
    kl, kr = [c + view_sign * knee_w / 2, 600.0], [c - view_sign * knee_w / 2, 600.0]
    al, ar = [c + view_sign * ankle_w / 2, 750.0], [c - view_sign * ankle_w / 2, 750.0]
    got = g.knee_ankle_width_ratio(kl, kr, al, ar)
    if np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(want, abs=TOL)
        assert (got < 1) == (knee_w < ankle_w)


@pytest.mark.parametrize("now, upright, want", [
    (100.0, 100.0, 0.0), (50.0, 100.0, 60.0), (0.0, 100.0, 90.0), (120.0, 100.0, 0.0),
    (np.cos(np.radians(25.0)), 1.0, 25.0), (50.0, 0.0, np.nan),
])
def test_trunk_foreshortening_lean(now, upright, want):
    got = g.trunk_foreshortening_lean_deg(now, upright)
    assert np.isnan(got) if np.isnan(want) else got == pytest.approx(want, abs=TOL)


# -- 3D trunk flexion (MediaPipe world: y down) -------------------------------
@pytest.mark.parametrize("lean", [0.0, 30.0, 60.0, -20.0])
def test_trunk_flexion_3d(lean):
    r = np.radians(lean)
    forward = np.array([0.0, 0.0, -1.0])         # subject faces -z here
    hip = np.array([0.1, 0.0, 0.2])
    shoulder = hip + 0.5 * (np.cos(r) * np.array([0.0, -1.0, 0.0]) + np.sin(r) * forward)
    assert g.trunk_flexion_3d_deg(hip, shoulder) == pytest.approx(abs(lean), abs=TOL)
    assert g.trunk_flexion_3d_deg(hip, shoulder, forward=forward) == pytest.approx(lean, abs=TOL)


# -- helpers -----------------------------------------------------------------
def test_midpoint_and_hip_joint_centre():
    hip, other, knee = np.array([100.0, 300.0]), np.array([180.0, 300.0]), np.array([110.0, 420.0])
    np.testing.assert_allclose(g.midpoint(hip, other), [140.0, 300.0])
    np.testing.assert_allclose(g.hip_joint_centre(hip, other, knee), hip)   # identity default
    np.testing.assert_allclose(g.hip_joint_centre(hip, other, knee, medial_frac=0.25,
                                                  distal_frac=0.1), [121.0, 312.0])
    series = np.tile(hip, (5, 1))
    assert g.hip_joint_centre(series, other, knee, medial_frac=0.1).shape == (5, 2)


# -- NaN and vectorisation -----------------------------------------------------
P = np.array([1.0, 2.0])


def _calls(a, b, c, d):
    """Every point function, fed with four (..., 2) arrays."""
    return {
        "angle_between": g.angle_between_deg(b - a, c - a),
        "knee_flexion": g.knee_flexion_deg(a, b, c),
        "fppa": g.fppa_deg(a, b, c, d),
        "medial_disp": g.knee_medial_displacement(a, b, c, d),
        "segment": g.segment_angle_from_vertical_deg(a, b),
        "trunk": g.trunk_flexion_deg(a, b, 1.0),
        "shin": g.shin_lean_deg(a, b, -1.0),
        "trunk_minus_shin": g.trunk_minus_shin_deg(a, b, c, d, 1.0),
        "lateral": g.lateral_trunk_lean_deg(a, b, c, d),
        "pelvic": g.pelvic_drop_deg(a, b),
        "past_toes": g.knee_past_toes(a, b, c, 1.0),
        "width": g.knee_ankle_width_ratio(a, b, c, d),
        "foreshortening": g.trunk_foreshortening_lean_deg(a[..., 0], b[..., 1]),
    }


def _series(t=7, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 500, size=(t, 2)) for _ in range(4)]


def test_vectorised_matches_per_frame():
    pts = _series()
    whole = _calls(*pts)
    for name, arr in whole.items():
        assert arr.shape == (7,), name
        single = [_calls(*(p[i] for p in pts))[name] for i in range(7)]
        assert all(np.ndim(s) == 0 for s in single), name
        np.testing.assert_allclose(arr, single, atol=1e-9, err_msg=name)


def test_nan_in_nan_out_without_warnings():
    pts = _series()
    pts[1][3] = np.nan            # one missing knee in frame 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _calls(*pts)
        facing = np.array([1.0, -1.0, np.nan, 1.0, 0.0, 1.0, -1.0])
        trunk = g.trunk_flexion_deg(pts[0], pts[1], facing)
        w3 = g.trunk_flexion_3d_deg(np.full(3, np.nan), np.ones(3), forward=(0, 0, 1))
        flex3 = g.knee_flexion_deg(np.full((2, 3), np.nan), np.ones((2, 3)), np.zeros((2, 3)))
    for name, arr in out.items():
        assert np.isnan(arr[3]), name
        assert np.isfinite(np.delete(arr, 3)).all(), name
    assert np.isnan(trunk[[2, 3, 4]]).all() and np.isfinite(trunk[[0, 1, 5, 6]]).all()
    assert np.isnan(w3) and np.isnan(flex3).all()


@pytest.mark.parametrize("func, args", [
    (g.fppa_deg, (P, P, P + [0, 2], P + [3, 0])),                # zero-length thigh
    (g.fppa_deg, (P, P + [1, 1], P + [0, 2], P + [0, 5])),       # other hip on hip-ankle line
    (g.knee_flexion_deg, (P, P, P + [0, 1])),
    (g.angle_between_deg, ((0.0, 0.0), (1.0, 0.0))),
    (g.segment_angle_from_vertical_deg, (P, P)),
    (g.pelvic_drop_deg, (P, P)),
    (g.lateral_trunk_lean_deg, (P, P + [0, 1], P + [0, -5], P + [1, -5])),  # hips same x
])
def test_degenerate_geometry(func, args):
    assert np.isnan(func(*args))


def test_rejects_non_2d_image_points():
    with pytest.raises(ValueError):
        g.fppa_deg(np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((4, 3)))
