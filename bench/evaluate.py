#!/usr/bin/env python3
"""End-to-end agreement of ``formcheck analyze`` with ground truth and labels.

Rendered clips (``shared/clips/synthetic/*.gt.json``): rep count, FPPA and
trunk flexion at each rep bottom vs the exact values (per view: median and
worst absolute error), and verdicts vs the verdicts the same thresholds give
on the true values. Real clips (``shared/clips/real/labels_*.tsv``): rep
count and valgus / trunk-lean verdicts vs the labels by eye, where the view
allows a verdict.

    python3 bench/evaluate.py                    # runs the pose model (minutes)
    python3 bench/evaluate.py --cache DIR        # raw landmarks cached as DIR/<clip>.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from formcheck.analysis import analyze_pose  # noqa: E402
from formcheck.extract import extract_pose  # noqa: E402
from formcheck.landmark_io import read_pose_npz, write_pose  # noqa: E402
from formcheck.pose import PoseSequence  # noqa: E402
from formcheck.rules import Thresholds, Verdict, banded  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "clips"
SCORED_EXERCISES = {"squat", "single_leg_squat"}


def load_pose(video: Path, cache: Path | None) -> PoseSequence:
    f = cache / (video.stem + ".npz") if cache is not None else None
    if f is not None and f.is_file():
        return read_pose_npz(f)
    seq = extract_pose(video)
    if f is not None:
        cache.mkdir(parents=True, exist_ok=True)
        write_pose(seq, f)
    return seq


def true_verdict(value: float, bilateral: bool, kind: str, t: Thresholds) -> Verdict:
    if kind == "fppa":
        return banded(value, t.valgus_watch_deg, t.valgus_fault_deg, 1.0)[0]
    return banded(value, t.sls_trunk_watch_deg, t.sls_trunk_fault_deg, 1.0)[0]


def synthetic(cache: Path | None, folder: Path = SHARED / "synthetic") -> dict[str, list[float]]:
    """Score every ``NAME.mp4`` + ``NAME.gt.json`` in ``folder``; returns the errors per view."""
    t = Thresholds()
    errs: dict[str, list[float]] = defaultdict(list)
    agree = defaultdict(lambda: [0, 0])
    print("\n== rendered clips (exact ground truth) ==")
    print(f"{'clip':44} {'view':8} {'reps':>9}  FPPA err at bottoms (deg)      trunk err")
    for gt_path in sorted(folder.glob("*.gt.json")):
        gt = json.loads(gt_path.read_text())
        video = gt_path.with_name(gt_path.name.replace(".gt.json", ".mp4"))
        a = analyze_pose(load_pose(video, cache), source=str(video))
        view = gt["camera"]["view"]
        full = a.full_reps
        fe, te, est_errs = [], [], []
        for r, g in zip(full, gt["reps"]):
            stance = g["stance"]
            if r.fppa_deg is not None and gt["camera"]["fppa_valid"]:
                legs = ["R", "L"] if stance == "both" else [stance]
                true = max(g["fppa_at_bottom"][k] for k in legs)
                fe.append(r.fppa_deg - true)
                tv = true_verdict(true, stance == "both", "fppa", t)
                agree[f"valgus {view}"][0] += r.checks["knee_valgus"].verdict is tv
                agree[f"valgus {view}"][1] += 1
            if r.trunk_flexion_deg is not None and r.trunk_estimate and gt["camera"]["fppa_valid"]:
                est_errs.append(r.trunk_flexion_deg - g["trunk_lean_3d_at_bottom"])
            if r.trunk_flexion_deg is not None and gt["camera"]["lean2d_valid"] and not r.trunk_estimate:
                true = g["trunk_lean_3d_at_bottom"]
                te.append(r.trunk_flexion_deg - true)
                if stance != "both":
                    tv = true_verdict(true, False, "trunk", t)
                    agree["hip hinge side"][0] += r.checks["hip_hinge"].verdict is tv
                    agree["hip hinge side"][1] += 1
        errs[view] += fe
        errs["trunk"] += te
        errs["trunk est"] += est_errs
        fs = " ".join(f"{e:+.1f}" for e in fe) or "-"
        ts = " ".join(f"{e:+.1f}" for e in te) or "-"
        print(f"{video.stem:44} {a.view.value:8} {len(full):>3} / {len(gt['reps']):<3}  {fs:30} {ts}")
    for key, e in errs.items():
        if e:
            ae = np.abs(e)
            print(f"  {key:8}: n={len(e):2}  bias {np.mean(e):+.1f}  median |err| {np.median(ae):.1f}  "
                  f"worst {np.max(ae):.1f}")
    for key, (ok, n) in agree.items():
        print(f"  verdict agreement, {key}: {ok}/{n}")
    return errs


def real(cache: Path | None) -> None:
    from tests.conftest import read_tsv

    clips = {r["clip"]: r for r in read_tsv(SHARED / "real" / "labels_clips.tsv")}
    reps = defaultdict(list)
    for r in read_tsv(SHARED / "real" / "labels_reps.tsv"):
        reps[r["clip"]].append(r)
    print("\n== real clips (labels by eye) ==")
    print(f"{'clip':28} {'label view':14} {'ours':18} {'reps ours/label':>15}  valgus (ours vs label)   trunk lean")
    count_ok = count_n = 0
    v_ok = v_n = t_ok = t_n = 0
    for name, lab in sorted(clips.items()):
        if lab["exercise"] not in SCORED_EXERCISES:
            continue
        video = SHARED / "real" / name
        try:
            a = analyze_pose(load_pose(video, cache), source=str(video))
        except Exception as exc:  # noqa: BLE001 - a bench reports and goes on
            print(f"{name:28} error: {exc}")
            continue
        n_label = int(lab["reps_total"])
        count_n += 1
        count_ok += len(a.full_reps) == n_label
        vs, ts = [], []
        for lr in reps[name]:
            bottom = float(lr["bottom_s"])
            ours = min(a.full_reps, key=lambda r: abs(r.rep.bottom_s - bottom), default=None)
            if ours is None or abs(ours.rep.bottom_s - bottom) > 1.0:
                continue
            for key, label, store in (("knee_valgus", lr["valgus"], vs), ("hip_hinge", lr["trunk_lean"], ts)):
                v = ours.checks[key].verdict
                if v is Verdict.NOT_MEASURABLE or label not in ("yes", "no"):
                    store.append("-")
                    continue
                flagged = v in (Verdict.FAULT, Verdict.WATCH)
                good = flagged == (label == "yes")
                store.append("+" if good else "x")
        v_ok += vs.count("+")
        v_n += vs.count("+") + vs.count("x")
        t_ok += ts.count("+")
        t_n += ts.count("+") + ts.count("x")
        print(f"{name:28} {lab['view']:14} {a.view.value + ' ' + a.exercise.value[:6]:18} "
              f"{len(a.full_reps):>7} / {n_label:<6}  {''.join(vs):24} {''.join(ts)}")
    print(f"  rep count exact: {count_ok}/{count_n} clips")
    print(f"  valgus verdicts agreeing with the label (where measurable): {v_ok}/{v_n}")
    print(f"  trunk-lean verdicts agreeing with the label (where measurable): {t_ok}/{t_n}")
    print("  (+ agree, x disagree, - not measurable from this view or label unclear)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, help="folder of raw landmark .npz files (made if missing)")
    p.add_argument("--only", choices=["synthetic", "real"])
    args = p.parse_args()
    if args.only != "real":
        synthetic(args.cache)
    if args.only != "synthetic":
        real(args.cache)


if __name__ == "__main__":
    main()
