"""Reps, measurements and verdicts against the renders' ground truth and the real clips' labels."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from conftest import REAL, SAMPLES, SYNTH, load_gt, read_tsv, shared_clip

from formcheck.context import Exercise, View
from formcheck.pose import Side
from formcheck.rules import Thresholds, Verdict, banded

T = Thresholds()
SIDES = {"R": Side.RIGHT, "L": Side.LEFT, "both": Side.BOTH}
VIEWS = {"frontal": View.FRONT, "back": View.BACK, "side": View.SIDE, "oblique": View.OBLIQUE}


def _synthetic_clips() -> list:
    names = sorted(p.name for p in SAMPLES.glob("dev*.mp4"))
    if SYNTH.is_dir():
        names = sorted({*names, *(p.name for p in SYNTH.glob("dev*.mp4"))})
    return names


def _path(name):
    return SAMPLES / name if (SAMPLES / name).is_file() else shared_clip(name)


@pytest.mark.parametrize("clip", _synthetic_clips())
def test_renders_reps_view_exercise_and_stance(clip, analysis_of):
    path = _path(clip)
    gt = load_gt(path)
    a = analysis_of(path)
    assert a.view is VIEWS[gt["camera"]["view"]]
    assert len(a.full_reps) == len(gt["reps"])
    fps = gt["fps"]
    for ours, true in zip(a.full_reps, gt["reps"]):
        first, last = true["bottom_frames"]
        assert first / fps - 0.1 <= ours.rep.bottom_s <= last / fps + 0.1
        if gt["spec"]["exercise"] == "single_leg" and a.exercise is Exercise.SINGLE_LEG_SQUAT:
            assert ours.side is SIDES[true["stance"]]


@pytest.mark.parametrize("clip", [c for c in _synthetic_clips() if "front" in c or "back" in c])
def test_fppa_at_the_bottom_is_close_to_the_rendered_truth(clip, analysis_of):
    path = _path(clip)
    gt = load_gt(path)
    a = analysis_of(path, exercise=Exercise.SQUAT if "dls" in clip else Exercise.SINGLE_LEG_SQUAT)
    for ours, true in zip(a.full_reps, gt["reps"]):
        legs = ["R", "L"] if true["stance"] == "both" else [true["stance"]]
        truth = max(true["fppa_at_bottom"][k] for k in legs)
        assert ours.fppa_deg is not None
        # Measured after the hip-joint-centre correction: |error| <= 3 deg up to ~22 deg of
        # valgus (SD 3.4), larger valgus still under-read by up to 8 deg (see correction.py).
        tolerance = 4.5 if truth <= 22 else 9.0
        assert abs(ours.fppa_deg - truth) <= tolerance, (ours.index, ours.fppa_deg, truth)
        assert ours.fppa_deg - truth >= -9.0
        # Raw MediaPipe under-reads more than the corrected value on average.
        assert ours.fppa_raw_deg is not None


@pytest.mark.parametrize("clip", [c for c in _synthetic_clips() if "front" in c or "back" in c])
def test_valgus_verdicts_match_the_thresholds_applied_to_the_truth(clip, analysis_of):
    path = _path(clip)
    gt = load_gt(path)
    a = analysis_of(path)
    for ours, true in zip(a.full_reps, gt["reps"]):
        legs = ["R", "L"] if true["stance"] == "both" else [true["stance"]]
        truth = max(true["fppa_at_bottom"][k] for k in legs)
        expected = banded(truth, T.valgus_watch_deg, T.valgus_fault_deg, 1.0)[0]
        got = ours.checks["knee_valgus"]
        if abs(truth - T.valgus_fault_deg) > 3 and abs(truth - T.valgus_watch_deg) > 3:
            assert got.verdict is expected, (ours.index, got, truth)
        assert 0.0 <= got.confidence <= 1.0


@pytest.mark.parametrize("clip", [c for c in _synthetic_clips() if "side" in c])
def test_side_view_trunk_flexion_matches_the_truth_and_valgus_is_not_measurable(clip, analysis_of):
    path = _path(clip)
    gt = load_gt(path)
    a = analysis_of(path)
    for ours, true in zip(a.full_reps, gt["reps"]):
        assert ours.trunk_flexion_deg == pytest.approx(true["trunk_lean_3d_at_bottom"], abs=2.0)
        assert not ours.trunk_estimate
        valgus = ours.checks["knee_valgus"]
        assert valgus.verdict is Verdict.NOT_MEASURABLE and "side view" in valgus.reason
        assert ours.fppa_deg is None
    if "slsR" in clip:  # lean 10, 40, 10 deg: only the middle rep folds forward
        verdicts = [r.checks["hip_hinge"].verdict for r in a.full_reps]
        assert verdicts[0] is Verdict.OK and verdicts[2] is Verdict.OK
        assert verdicts[1] in (Verdict.WATCH, Verdict.FAULT)


def test_front_view_trunk_lean_is_labelled_an_estimate(analysis_of):
    a = analysis_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4")
    for r in a.full_reps:
        assert r.trunk_estimate and r.checks["hip_hinge"].estimate
        assert "ESTIMATE" in r.checks["hip_hinge"].reason


@pytest.mark.parametrize("clip", ["dev01_slsR_front_fppa0-0-0.mp4", "dev02_slsR_front_fppa0-20-30.mp4",
                                  "dev04_slsL_front_fppa0-20-30.mp4",
                                  "dev10_slsL_front_landscape_fppa8-16-24.mp4"])
def test_front_view_trunk_estimate_against_the_renders(clip, analysis_of):
    """True lean 10-15 deg at the bottoms; uncorrected, the foreshortening read 20-25 deg."""
    path = shared_clip(clip)
    a, gt = analysis_of(path), load_gt(path)
    errors = [r.trunk_flexion_deg - g["trunk_lean_3d_at_bottom"] for r, g in zip(a.full_reps, gt["reps"])]
    assert len(errors) == 3 and max(abs(e) for e in errors) < 5.0, errors


def test_json_has_the_documented_shape(analysis_of):
    d = json.loads(json.dumps(analysis_of(SAMPLES / "dev06_dls_front_fppa0-15-25.mp4").to_dict()))
    assert d["exercise"] == "squat" and d["view"] == "front"
    assert d["rep_count"] == 3 and len(d["reps"]) == 3
    for r in d["reps"]:
        assert set(r) >= {"index", "side", "start_s", "bottom_s", "end_s", "partial", "knee_flexion_deg",
                          "fppa_deg", "trunk_flexion_deg", "verdicts", "cues"}
        assert r["side"] == "both" and r["start_s"] < r["bottom_s"] < r["end_s"]
        assert set(r["verdicts"]) >= {"knee_valgus", "hip_hinge"}
        assert r["trunk_flexion_deg"] is None  # squat from the front: trunk vs shin needs a side view
        assert r["verdicts"]["hip_hinge"] == "not_measurable"
    assert [r["verdicts"]["knee_valgus"] for r in d["reps"]] == ["ok", "watch", "fault"]
    assert d["reps"][2]["cues"] == ["Push your knees out in line with your toes."]
    assert "professional" in d["safety"] or "physiotherapist" in d["safety"]


def test_left_vs_right_difference_below_the_sdd_is_no_clear_difference(analysis_of):
    from formcheck.analysis import _compare, SideSummary  # noqa: PLC0415
    from formcheck.settings import Settings

    a = analysis_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4")
    right = a.sides[Side.RIGHT]
    assert right.reps == 3 and right.fppa_worst_deg > right.fppa_mean_deg
    left_close = SideSummary(Side.LEFT, 3, 0, right.fppa_mean_deg + 5, None, None, None, 0)
    left_far = SideSummary(Side.LEFT, 3, 0, right.fppa_mean_deg + 12, None, None, None, 0)
    close = _compare({Side.RIGHT: right, Side.LEFT: left_close}, Settings())
    far = _compare({Side.RIGHT: right, Side.LEFT: left_far}, Settings())
    assert close["fppa"]["weaker"] is None and "no clear difference" in close["fppa"]["note"]
    assert far["fppa"]["weaker"] == "left"
    assert not a.comparison["available"]  # one leg only


def test_a_right_leg_set_then_a_left_leg_set_are_compared(pose_of, tmp_path):
    """Two single-leg clips back to back: one analysis with two sets and a comparison."""
    from formcheck.analysis import analyze_pose
    from formcheck.pose import PoseSequence

    right = pose_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4")
    left_path = SYNTH / "dev03_slsL_front_fppa25-25-25.mp4"
    if not left_path.is_file():
        pytest.skip("needs ../shared/clips/synthetic")
    left = pose_of(left_path)
    shifted = left.with_arrays(timestamps_ms=left.timestamps_ms + right.timestamps_ms[-1] + 1000 / 30)
    both = PoseSequence.concatenate([right, shifted])
    a = analyze_pose(both)
    sides = [r.side for r in a.full_reps]
    assert sides == [Side.RIGHT] * 3 + [Side.LEFT] * 3
    assert a.comparison["available"]
    # right 0/20/30 (mean ~17 read), left 25/25/25 (~23 read): within the 8 deg SDD.
    assert a.comparison["fppa"]["difference_deg"] is not None
    # both front views: trunk lean only estimated, so it is flagged and not compared
    assert a.sides[Side.LEFT].trunk_estimate and a.sides[Side.RIGHT].trunk_estimate
    assert a.comparison["trunk"]["weaker"] is None and "estimated" in a.comparison["trunk"]["note"]


def test_squats_compare_the_two_knees_within_the_same_reps(analysis_of):
    """dev11: a squat rendered with the right knee at 5 deg and the left at 20 deg of FPPA."""
    a = analysis_of(shared_clip("dev11_dls_front_landscape_fppaR5_L20.mp4"))
    comp = a.comparison
    assert comp["available"] and comp["basis"] == "both knees in the squats" and comp["reps"] == 3
    assert comp["fppa"]["weaker"] == "left"
    assert comp["fppa"]["difference_deg"] == pytest.approx(15.0, abs=5.0)  # true 20 - 5
    assert comp["trunk"]["difference_deg"] is None
    # dev06: both knees 0/15/25: no clear difference
    same = analysis_of(shared_clip("dev06_dls_front_fppa0-15-25.mp4")).comparison
    assert same["fppa"]["weaker"] is None and abs(same["fppa"]["difference_deg"]) < 8.0


def test_knees_pushed_out_are_not_a_valgus_imbalance(analysis_of):
    """spotter_10: deep squats with both knees pushed out (FPPA -15..-70): no valgus on either."""
    comp = analysis_of(shared_clip("spotter_10.mp4")).comparison
    assert comp["basis"] == "both knees in the squats"
    assert comp["fppa"]["weaker"] is None
    assert comp["fppa"]["left_mean_valgus_deg"] < 5 and comp["fppa"]["right_mean_valgus_deg"] < 5


def test_estimated_trunk_lean_is_flagged_and_never_averaged_with_measured(pose_of):
    """The same right-leg dips filmed from the side, then from the front, in one clip."""
    from formcheck.analysis import analyze_pose
    from formcheck.pose import PoseSequence

    side = pose_of(SAMPLES / "dev05_slsR_side_lean10-40-10.mp4")
    front = pose_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4")
    front = front.with_arrays(timestamps_ms=front.timestamps_ms + side.timestamps_ms[-1] + 1000 / 30)
    a = analyze_pose(PoseSequence.concatenate([side, front]))
    measured = [r.trunk_flexion_deg for r in a.full_reps if r.trunk_flexion_deg is not None
                and not r.trunk_estimate]
    estimated = [r for r in a.full_reps if r.trunk_estimate]
    assert len(measured) == 3 and estimated  # the side-view reps are measured
    summary = a.sides[Side.RIGHT]
    assert not summary.trunk_estimate
    assert summary.trunk_mean_deg == pytest.approx(np.mean(measured))
    assert summary.trunk_worst_deg == pytest.approx(max(measured))
    d = a.to_dict()["sides"]["right"]
    assert d["trunk_estimate"] is False


def test_front_view_summary_marks_trunk_lean_as_an_estimate(tmp_path):
    out = tmp_path / "a.json"
    r = subprocess.run([sys.executable, "-m", "formcheck", "analyze",
                        str(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"), "--json", str(out)],
                       capture_output=True, text=True, timeout=300, env={**os.environ,
                                                                         "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("right:"))
    assert "trunk mean" in line and "~" in line and "(estimates)" in line
    assert json.loads(out.read_text())["sides"]["right"]["trunk_estimate"] is True


def _label_reps() -> dict:
    if not REAL.is_dir():
        return {}
    out = defaultdict(list)
    for r in read_tsv(REAL / "labels_reps.tsv"):
        out[r["clip"]].append(r)
    return out


# Real clips whose rep count we assert (labels by eye; the full table is in bench/evaluate.py).
REAL_COUNTS = ["nowva_squat_01.mp4", "posture_kneesquat_01.mp4", "posture_correct_01.mp4",
               "pooja_squat_01.mp4", "myfitcal_bodyweight_01.mp4", "spotter_10.mp4",
               "liftcheck_squat_01.mp4", "rohan_squat_01.mp4", "posture_proc_000.mp4",
               "myfitcal_pistol_01.mp4", "spotter_02.mp4", "nqs_squat_01.mp4"]


@pytest.mark.parametrize("clip", REAL_COUNTS)
def test_real_clip_rep_counts_match_the_labels(clip, analysis_of):
    path = shared_clip(clip)
    labels = {r["clip"]: r for r in read_tsv(REAL / "labels_clips.tsv")}
    a = analysis_of(path)
    assert len(a.full_reps) == int(labels[clip]["reps_total"])
    bottoms = [float(r["bottom_s"]) for r in _label_reps()[clip] if not r["notes"].startswith("partial")]
    for ours, label in zip(a.full_reps, bottoms):
        assert abs(ours.rep.bottom_s - label) < 0.6


@pytest.mark.parametrize("clip", REAL_COUNTS)
def test_real_clip_exercise_and_working_leg_match_the_labels(clip, analysis_of):
    labels = {r["clip"]: r for r in read_tsv(REAL / "labels_clips.tsv")}
    a = analysis_of(shared_clip(clip))
    assert a.exercise.value == labels[clip]["exercise"]
    assert {s.stance.value for s in a.context.sets} == {r["side"] for r in _label_reps()[clip]}


def test_back_view_single_leg_dip_is_judged_on_the_stance_leg(analysis_of):
    """dev07: filmed from behind, the free foot raised behind (towards the camera)."""
    clip = SAMPLES / "dev07_slsR_back_fppa0-15-25.mp4"
    a = analysis_of(clip)
    assert a.exercise is Exercise.SINGLE_LEG_SQUAT and [s.stance for s in a.context.sets] == [Side.RIGHT]
    gt = load_gt(clip)
    assert [r.side for r in a.full_reps] == [Side.RIGHT] * 3
    for r, g in zip(a.full_reps, gt["reps"]):
        assert abs(r.fppa_deg - g["fppa_at_bottom"]["R"]) < 6.0
        assert "pelvic_drop" in r.checks  # single-leg checks run on the stance leg


def test_front_view_control_squats_are_not_flagged_for_valgus(analysis_of):
    for clip in ("nowva_squat_01.mp4", "spotter_10.mp4", "myfitcal_bodyweight_01.mp4"):
        a = analysis_of(shared_clip(clip))
        verdicts = [r.checks["knee_valgus"].verdict for r in a.full_reps]
        assert verdicts and all(v is Verdict.OK for v in verdicts), (clip, verdicts)


def test_deep_front_view_squat_reports_no_meaningless_fppa(analysis_of):
    """Thighs pointing at the camera: no FPPA number, the knee-width rule instead."""
    a = analysis_of(shared_clip("nowva_squat_01.mp4"))
    for r in a.full_reps:
        assert r.fppa_deg is None
        assert "knee width" in r.checks["knee_valgus"].reason


@pytest.mark.parametrize("clip", ["posture_kneesquat_01.mp4", "posture_proc_024.mp4"])
def test_labelled_knee_collapse_filmed_40_deg_off_frontal_is_not_cleared(clip, analysis_of):
    """Valgus on every rep by eye, filmed about 40 deg off frontal: the knee-width estimate
    cannot tell valgus there (it cleared 11 of 13 reps of posture_proc_024), so the check
    says why it cannot judge instead of passing the knees."""
    a = analysis_of(shared_clip(clip))
    assert a.view.value == "oblique" and len(a.full_reps) >= 4
    for r in a.full_reps:
        c = r.checks["knee_valgus"]
        assert c.verdict is Verdict.NOT_MEASURABLE and "deg off frontal" in c.reason


def test_hinge_dominant_squats_are_flagged_for_trunk_lean(analysis_of):
    a = analysis_of(shared_clip("posture_proc_000.mp4"))  # labels: big forward lean on all 15
    flagged = [r.checks["hip_hinge"].verdict in (Verdict.WATCH, Verdict.FAULT) for r in a.full_reps]
    assert sum(flagged) >= 13


def test_mirror_reflection_does_not_replace_the_lifter(pose_of):
    """rohan_squat_01: a mirror shows the lifter and the camera operator."""
    seq = pose_of(shared_clip("rohan_squat_01.mp4"))
    hips = np.nanmean(seq.pixels()[:, [23, 24]], axis=1)
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=1)
    torso = np.nanmedian(np.linalg.norm(seq.pixels()[:, 11] - seq.pixels()[:, 23], axis=1))
    assert seq.detection_rate > 0.9
    assert np.nanmax(steps) < 0.6 * torso  # no jump to another person


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "formcheck", *args], capture_output=True, text=True,
                          timeout=300)


def test_analyze_command_prints_the_table_and_writes_json_and_csv(tmp_path):
    clip = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"
    r = _cli("analyze", str(clip), "--json", str(tmp_path / "a.json"), "--csv", str(tmp_path / "a.csv"), "-q")
    assert r.returncode == 0, r.stderr
    assert "side view" in r.stdout and "FAULT" in r.stdout and "Sit back" in r.stdout
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["view"] == "side" and d["exercise"] == "single_leg_squat" and d["rep_count"] == 3
    assert [x["fppa_deg"] for x in d["reps"]] == [None, None, None]
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert [row["hip_hinge"] for row in rows] == [x["verdicts"]["hip_hinge"] for x in d["reps"]]


def test_thresholds_come_from_the_settings_file_and_set_options(tmp_path):
    clip = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"
    toml = tmp_path / "strict.toml"
    toml.write_text("[thresholds]\nsls_trunk_watch_deg = 5.0\nsls_trunk_fault_deg = 8.0\n")
    r = _cli("analyze", str(clip), "--settings", str(toml), "--json", "-", "-q")
    assert r.returncode == 0, r.stderr
    assert [x["verdicts"]["hip_hinge"] for x in json.loads(r.stdout)["reps"]] == ["fault"] * 3
    r = _cli("analyze", str(clip), "--set", "thresholds.sls_trunk_fault_deg=60",
             "--set", "thresholds.sls_trunk_watch_deg=50", "--json", "-", "-q")
    assert [x["verdicts"]["hip_hinge"] for x in json.loads(r.stdout)["reps"]] == ["ok"] * 3


@pytest.mark.parametrize("content, message", [
    ("[thresholds\nvalgus = 1", "not valid toml"),
    ("[thresholds]\nvalgus_flag = 12\n", "unknown key 'valgus_flag'"),
    ("[thresholds]\nvalgus_fault_deg = 400\n", "out of range"),
    ("[colours]\nred = 1\n", "unknown section"),
])
def test_bad_settings_are_named_in_one_line(tmp_path, content, message):
    toml = tmp_path / "bad.toml"
    toml.write_text(content)
    r = _cli("analyze", str(SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"), "--settings", str(toml))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr.lower()


def test_a_forced_exercise_that_the_clip_contradicts_gets_a_note(pose_of):
    from formcheck.analysis import analyze_pose

    dip = analyze_pose(pose_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"), exercise=Exercise.SQUAT)
    note = next(n for n in dip.notes if "as asked" in n)
    assert "single-leg squat on the right leg" in note and "lifted leg" in note
    same = analyze_pose(pose_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"),
                        exercise=Exercise.SINGLE_LEG_SQUAT)
    assert not any("as asked" in n for n in same.notes)


@pytest.mark.parametrize("clip, estimate", [("dev02_slsR_front_fppa0-20-30.mp4", True),
                                            ("dev05_slsR_side_lean10-40-10.mp4", False)])
def test_knee_flexion_is_marked_an_estimate_alike_in_every_output(clip, estimate, analysis_of, tmp_path):
    from rich.console import Console

    from formcheck.report import csv_rows, print_analysis

    a = analysis_of(SAMPLES / clip)
    d = a.to_dict()
    assert {r["knee_flexion_estimate"] for r in d["reps"]} == {estimate}
    assert {r["checks"]["depth"]["estimate"] for r in d["reps"]} == {estimate}
    assert {row["knee_flexion_estimate"] for row in csv_rows(a)} == {estimate}
    console = Console(record=True, width=200)
    print_analysis(a, console)
    table_rows = [line for line in console.export_text().splitlines() if "right" in line and "│" in line]
    knee_cells = [line.split("│")[4].strip() for line in table_rows]
    assert len(knee_cells) == 3 and all(c.endswith("~") == estimate for c in knee_cells), knee_cells


def test_an_oblique_view_says_why_depth_is_not_measured(analysis_of):
    a = analysis_of(shared_clip("dev08_slsL_oblique45_valgus0-20-0.mp4"))
    for r in a.full_reps:
        assert r.knee_flexion_deg is None
        assert r.checks["depth"].verdict is Verdict.NOT_MEASURABLE and "side" in r.checks["depth"].reason


def test_a_rep_cut_by_its_set_not_the_clip_says_so(pose_of):
    """Right-leg dips, then left-leg dips joined in the middle of a descent: that rep is cut by
    the set's start (inside the clip), not by the clip's start."""
    from formcheck.analysis import analyze_pose
    from formcheck.pose import PoseSequence

    right = pose_of(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4")
    path = shared_clip("dev04_slsL_front_fppa0-20-30.mp4")
    left, gt = pose_of(path), load_gt(path)
    k = (gt["reps"][0]["start_frame"] + gt["reps"][0]["bottom_frame"]) // 2
    left = PoseSequence(left.timestamps_ms[k:] - left.timestamps_ms[k] + right.timestamps_ms[-1] + 33.3,
                        left.xyz[k:], left.world[k:], left.visibility[k:], left.width, left.height)
    a = analyze_pose(PoseSequence.concatenate([right, left]))
    cut = [r for r in a.reps if r.rep.partial]
    assert [r.side for r in cut] == [Side.LEFT] and "start of the set" in cut[0].rep.reason
    assert len(a.full_reps) == 5
