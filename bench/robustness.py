#!/usr/bin/env python3
"""Robustness of the pipeline to image changes, on augmented copies of the rendered clips.

Each augmentation writes a copy of every ``NAME.mp4`` + ``NAME.gt.json`` of the
synthetic dev set to ``OUT/<aug>/`` (video re-encoded as H.264 yuv420p at the
source fps; ground truth transformed consistently and self-checked), runs
``bench/evaluate.py``'s ``synthetic()`` on it (raw landmarks cached in
``OUT/cache-<aug>/``, one process, no workers) and prints one table of the
scores next to the unaugmented baseline, plus the per-clip changes (rep count,
view, stance leg, FPPA sign, error change) that explain them.

    python3 bench/robustness.py                          # all augmentations (~10 min first time)
    python3 bench/robustness.py --aug mirror --aug roll+5
    python3 bench/robustness.py --rebuild                # re-render the clips (and drop their caches)

Augmentations (``--aug``, repeatable; default all but ``orig``):

* ``orig``      the original files, a fresh landmark cache (is the baseline cache current?)
* ``reencode``  decoded and re-encoded unchanged: the second generation of compression
                every other augmentation also pays (its control)
* ``mirror``    image x -> W - x (pixel-edge coordinates, i.e. column i -> W-1-i; K has
                cx = W/2). The mirror image is the world mirrored about the subject's
                sagittal plane: j3d x -> -x, every R/L label swapped (joints, fppa,
                knee_flex_3d, swivel, stance, per-rep dicts, spec), camera yaw y -> -y,
                cam_to_world -> F C S (F, S: x-flips of world and camera),
                trunk_lean_3d_lateral negated, trunk_lean_3d unchanged, trunk_lean_2d
                negated where its sign is "image right" (yaw 0/180) and unchanged where it is
                "the side the subject faces" (both the lean and the facing flip).
* ``noise``     Gaussian blur (sigma 1.2 px) then Gaussian noise (sigma 6 grey levels, per
                channel, seeded per clip); gt unchanged but appearance.noise_sigma/blur_sigma.
* ``half``      downscaled to half size (cv2 INTER_AREA); j2d and K scaled (an odd side is
                padded by one edge row/column by VideoWriter; width/height are the file's).
* ``roll+5``, ``roll-5``  image rotated by +-5 deg (positive = counter-clockwise on screen)
                about its centre (reflected border), j2d rotated the same way, the camera
                rolled about its optical axis (cam_to_world -> C Rz(-angle)), so j3d still
                projects onto j2d exactly. FPPA is rotation-invariant (unchanged);
                trunk_lean_2d (from the image vertical) gets -angle x facing sign. The 3D
                trunk lean the pipeline is scored against (trunk_lean_3d, from gravity) is
                the body's and is NOT changed: a pipeline that takes the image vertical for
                gravity is expected to be off by ~5 deg in side views, and the table shows
                it. (The per-clip section also gives the error against the image-frame lean,
                trunk_lean_2d, which separates the roll from everything else.)

Every augmented gt.json is checked before use: j3d projects through K and cam_to_world
onto j2d (< 0.3 px), FPPA recomputed from j2d matches ``fppa`` (< 0.05 deg) and the image
trunk angle matches ``trunk_lean_2d``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import re
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cv2  # noqa: E402  (before av, as formcheck.video does)

import evaluate  # noqa: E402  (bench/evaluate.py)
from formcheck.analysis import analyze_pose  # noqa: E402
from formcheck.geometry import fppa_deg  # noqa: E402
from formcheck.pose import Side  # noqa: E402
from formcheck.video import VideoWriter, read_frames  # noqa: E402

SRC = evaluate.SHARED / "synthetic"
OUT = Path("/tmp/robust")
BASELINE_CACHE = Path("/tmp/posecache")
VERSION = 3  # bump when a transform changes: folders with another version are rebuilt

DEFAULTS = {"crf": 18, "noise_sigma": 6.0, "blur_sigma": 1.2, "scale": 0.5, "roll_deg": 5.0}
ALL_AUGS = ["orig", "reencode", "mirror", "noise", "half", "roll+5", "roll-5"]
DEFAULT_AUGS = [a for a in ALL_AUGS if a != "orig"]
GT_VIEW = {"frontal": "front", "back": "back", "side": "side", "oblique": "oblique"}
GT_SIDE = {"R": Side.RIGHT, "L": Side.LEFT, "both": Side.BOTH}


# -- ground-truth transforms ---------------------------------------------------------
def _swap_name(k: str) -> str:
    if k in ("R", "L"):
        return "L" if k == "R" else "R"
    m = re.fullmatch(r"(hip|knee|ankle|shoulder)([RL])", k)
    return m.group(1) + ("L" if m.group(2) == "R" else "R") if m else k


def swap_lr(x, key: str = ""):
    """Every R/L label swapped: dict keys R/L and joint names, and ``stance`` values."""
    if isinstance(x, dict):
        return {_swap_name(k): swap_lr(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [swap_lr(v, key) for v in x]
    if key == "stance" and x in ("R", "L"):
        return "L" if x == "R" else "R"
    if key == "joints" and isinstance(x, str):
        return _swap_name(x)
    return x


def _lean_sign(gt: dict) -> float:
    """Sign turning the image-right-positive trunk angle into gt's trunk_lean_2d (+1 / -1)."""
    vals = []
    for fr in gt["frames"]:
        a = _image_trunk_angle(fr["j2d"])
        if abs(a) > 0.5:
            vals.append(fr["trunk_lean_2d"] / a)
    if vals:
        return float(np.sign(np.median(vals)))
    s = -math.sin(math.radians(gt["camera"]["yaw"]))  # README: towards the facing side ...
    return float(np.sign(s)) if abs(s) > 1e-6 else 1.0  # ... image right in frontal views


def _image_trunk_angle(j2d: dict) -> float:
    hc = (np.array(j2d["hipR"]) + j2d["hipL"]) / 2
    sc = (np.array(j2d["shoulderR"]) + j2d["shoulderL"]) / 2
    v = sc - hc
    return math.degrees(math.atan2(v[0], -v[1]))


def _map_j2d(gt: dict, fn) -> None:
    for fr in gt["frames"]:
        fr["j2d"] = {k: [round(float(c), 4) for c in fn(np.asarray(p, float))] for k, p in fr["j2d"].items()}


def _map_lean2d(gt: dict, fn) -> None:
    for fr in gt["frames"]:
        fr["trunk_lean_2d"] = round(fn(fr["trunk_lean_2d"]), 4)
    for r in gt["reps"]:
        r["trunk_lean_2d_at_bottom"] = round(fn(r["trunk_lean_2d_at_bottom"]), 4)


def gt_mirror(gt: dict) -> dict:
    w = gt["width"]
    yaw = gt["camera"]["yaw"]
    frontal_sign = abs(math.sin(math.radians(yaw))) < 1e-6  # trunk_lean_2d sign = image right
    g = swap_lr(copy.deepcopy(gt))
    _map_j2d(g, lambda p: (w - p[0], p[1]))
    for fr in g["frames"]:
        fr["j3d"] = {k: [round(-p[0], 4), p[1], p[2]] for k, p in fr["j3d"].items()}
        fr["trunk_lean_3d_lateral"] = round(-fr["trunk_lean_3d_lateral"], 4) + 0.0
    _map_lean2d(g, (lambda v: -v + 0.0) if frontal_sign else (lambda v: v))
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    cam = g["camera"]
    cam["cam_to_world"] = np.round(flip @ np.array(cam["cam_to_world"]) @ flip, 6).tolist()
    cam["K"][0][2] = w - cam["K"][0][2]
    cam["yaw"] = (-yaw) % 360
    g["spec"]["camera"]["yaw"] = (-g["spec"]["camera"]["yaw"]) % 360
    return g


def gt_scale(gt: dict, out_w: int, out_h: int) -> tuple[dict, float, float]:
    """Frames resized to out_w x out_h (then padded to even by VideoWriter)."""
    g = copy.deepcopy(gt)
    sx, sy = out_w / gt["width"], out_h / gt["height"]
    _map_j2d(g, lambda p: (p[0] * sx, p[1] * sy))
    k = np.array(g["camera"]["K"], float)
    k[0] *= sx
    k[1] *= sy
    g["camera"]["K"] = np.round(k, 4).tolist()
    g["width"], g["height"] = out_w + out_w % 2, out_h + out_h % 2
    return g, sx, sy


def gt_roll(gt: dict, deg: float) -> dict:
    """Image content rotated by ``deg`` counter-clockwise on screen about the image centre."""
    g = copy.deepcopy(gt)
    w, h = gt["width"], gt["height"]
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    _map_j2d(g, lambda p: (w / 2 + (p[0] - w / 2) * c + (p[1] - h / 2) * s,
                           h / 2 - (p[0] - w / 2) * s + (p[1] - h / 2) * c))
    sign = _lean_sign(gt)
    for fr, f0 in zip(g["frames"], gt["frames"]):
        # per frame, the sign the renderer used (in frontal views it follows the tiny sideways
        # projection of "forward" and flips between frames), else the clip's
        a, v = _image_trunk_angle(f0["j2d"]), f0["trunk_lean_2d"]
        f = float(np.sign(v / a)) if abs(a) > 1e-3 and abs(v) > 1e-3 else sign
        fr["trunk_lean_2d"] = round(f * (a - deg), 4)
    for r in g["reps"]:
        r["trunk_lean_2d_at_bottom"] = g["frames"][r["bottom_frame"]]["trunk_lean_2d"]
    rz = np.eye(4)
    rz[:2, :2] = [[c, s], [-s, c]]  # Rz(-deg): camera coords p' = Rz(deg) p
    g["camera"]["cam_to_world"] = np.round(np.array(g["camera"]["cam_to_world"]) @ rz, 6).tolist()
    g["camera"]["roll_deg"] = deg
    return g


def check_gt(gt: dict) -> dict[str, float]:
    """Max deviations: projection of j3d vs j2d (px), fppa and trunk_lean_2d recomputed (deg).

    FPPA is compared signed in views where it is valid (elsewhere the medial side is
    nearly undecidable and only the magnitude is compared), trunk_lean_2d signed where
    the subject faces sideways (|sin yaw| > 0.3), by magnitude in frontal/back views (its
    sign there follows the tiny sideways projection of "forward").
    """
    k = np.array(gt["camera"]["K"])
    inv = np.linalg.inv(np.array(gt["camera"]["cam_to_world"]))
    sign = _lean_sign(gt)
    fppa_signed = gt["camera"]["fppa_valid"]
    lean_signed = abs(math.sin(math.radians(gt["camera"]["yaw"]))) > 0.3
    proj = fp = tl = 0.0
    for fr in gt["frames"]:
        for j, p in fr["j3d"].items():
            pc = inv @ np.r_[p, 1.0]
            x = k[0, 0] * pc[0] / -pc[2] + k[0, 2]
            y = -k[1, 1] * pc[1] / -pc[2] + k[1, 2]
            proj = max(proj, abs(x - fr["j2d"][j][0]), abs(y - fr["j2d"][j][1]))
        d = {n: np.array(v) for n, v in fr["j2d"].items()}
        for a, b in (("R", "L"), ("L", "R")):
            v = float(fppa_deg(d["hip" + a], d["knee" + a], d["ankle" + a], d["hip" + b]))
            fp = max(fp, abs(v - fr["fppa"][a]) if fppa_signed else abs(abs(v) - abs(fr["fppa"][a])))
        a = _image_trunk_angle(fr["j2d"])
        tl = max(tl, abs(sign * a - fr["trunk_lean_2d"]) if lean_signed
                 else abs(abs(a) - abs(fr["trunk_lean_2d"])))
    return {"proj_px": proj, "fppa_deg": fp, "lean2d_deg": tl}


# -- image transforms ----------------------------------------------------------------
def make_aug(name: str, p: dict):
    """(frame function (image, clip rng) -> image, gt function (gt) -> gt) of an augmentation."""
    if name in ("orig", "reencode"):
        return (lambda im, rng: im), (lambda gt: copy.deepcopy(gt))
    if name == "mirror":
        return (lambda im, rng: np.ascontiguousarray(im[:, ::-1])), gt_mirror
    if name == "noise":
        def noise(im, rng):
            x = cv2.GaussianBlur(im, (0, 0), p["blur_sigma"]).astype(np.float32)
            x += rng.normal(0.0, p["noise_sigma"], x.shape).astype(np.float32)
            return np.clip(np.rint(x), 0, 255).astype(np.uint8)

        def gt_noise(gt):
            g = copy.deepcopy(gt)
            g["appearance"]["noise_sigma"] = p["noise_sigma"]
            g["appearance"]["blur_sigma"] = p["blur_sigma"]
            return g
        return noise, gt_noise
    if name == "half":
        def size(w, h):
            return max(2, round(w * p["scale"])), max(2, round(h * p["scale"]))

        def half(im, rng):
            h, w = im.shape[:2]
            return cv2.resize(im, size(w, h), interpolation=cv2.INTER_AREA)
        return half, (lambda gt: gt_scale(gt, *size(gt["width"], gt["height"]))[0])
    m = re.fullmatch(r"roll([+-]\d+(?:\.\d+)?)", name)
    if m:
        deg = float(m.group(1))

        def roll(im, rng):
            h, w = im.shape[:2]
            mat = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), deg, 1.0)
            return cv2.warpAffine(im, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return roll, (lambda gt: gt_roll(gt, deg))
    raise SystemExit(f"unknown augmentation {name!r} (known: {', '.join(ALL_AUGS)}, roll<+-deg>)")


def build(name: str, src: Path, out: Path, cache: Path, p: dict, rebuild: bool) -> None:
    """Write OUT/<aug>/ (skipped when built before with the same parameters)."""
    params = {"version": VERSION, "aug": name, **p}
    marker = out / ".params.json"
    gts = sorted(src.glob("*.gt.json"))
    if (not rebuild and marker.is_file() and json.loads(marker.read_text()) == params
            and all((out / f.name).is_file() for f in gts)):
        return
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)  # landmarks of other videos
    out.mkdir(parents=True)
    frame_fn, gt_fn = make_aug(name, p)
    for gt_path in gts:
        gt = json.loads(gt_path.read_text())
        video = gt_path.with_name(gt_path.name.replace(".gt.json", ".mp4"))
        dst = out / video.name
        g = gt_fn(gt)
        g["augmentation"] = params
        bad = check_gt(g)
        if bad["proj_px"] > 0.3 or bad["fppa_deg"] > 0.05 or bad["lean2d_deg"] > 0.05:
            raise SystemExit(f"{name} {gt_path.name}: transformed ground truth inconsistent {bad}")
        if name == "orig":
            dst.symlink_to(video)
        else:
            rng = np.random.default_rng(zlib.crc32(f"{name}/{video.stem}".encode()))
            writer = None
            for fr in read_frames(video):
                im = frame_fn(fr.image, rng)
                if writer is None:
                    writer = VideoWriter(dst, im.shape[1], im.shape[0], fps_hint=float(gt["fps"]),
                                         crf=p["crf"])
                writer.write(im, fr.t_ms)
            writer.close()
        (out / gt_path.name).write_text(json.dumps(g, separators=(",", ":")))
        print(f"  built {name}/{video.name}", file=sys.stderr)
    marker.write_text(json.dumps(params))


# -- scoring -------------------------------------------------------------------------
def run_evaluate(folder: Path, cache: Path, log: Path, echo: bool) -> tuple[dict, dict]:
    """evaluate.synthetic() on a folder: (errors per view, verdict agreement {key: (ok, n)})."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        errs = evaluate.synthetic(cache, folder)
    text = buf.getvalue()
    log.write_text(text)
    if echo:
        print(text)
    agree = {m.group(1): (int(m.group(2)), int(m.group(3)))
             for m in re.finditer(r"verdict agreement, (.+?): (\d+)/(\d+)", text)}
    return dict(errs), agree


def per_clip(folder: Path, cache: Path) -> dict[str, dict]:
    """What the pipeline found per clip, reps matched to the truth by bottom time."""
    out = {}
    thresholds = evaluate.Thresholds()
    for gt_path in sorted(folder.glob("*.gt.json")):
        gt = json.loads(gt_path.read_text())
        video = gt_path.with_name(gt_path.name.replace(".gt.json", ".mp4"))
        a = analyze_pose(evaluate.load_pose(video, cache), source=str(video))
        full = a.full_reps
        fps = gt["fps"]
        reps = []
        for g in gt["reps"]:
            tb = g["bottom_frame"] / fps
            r = min(full, key=lambda x: abs(x.rep.bottom_s - tb), default=None)
            if r is None or abs(r.rep.bottom_s - tb) > 0.5:
                reps.append(None)
                continue
            legs = ["R", "L"] if g["stance"] == "both" else [g["stance"]]
            true_f = max(g["fppa_at_bottom"][k] for k in legs)
            # as evaluate.synthetic: FPPA where the view allows it, trunk in side views, measured
            fppa = r.fppa_deg if gt["camera"]["fppa_valid"] else None
            trunk = (r.trunk_flexion_deg if gt["camera"]["lean2d_valid"] and not r.trunk_estimate
                     else None)
            verdicts = []
            if fppa is not None:
                tv = evaluate.true_verdict(true_f, g["stance"] == "both", "fppa", thresholds)
                verdicts.append(("valgus", r.checks["knee_valgus"].verdict.value, tv.value, round(true_f, 1)))
            if trunk is not None and g["stance"] != "both":
                tv = evaluate.true_verdict(g["trunk_lean_3d_at_bottom"], False, "trunk", thresholds)
                verdicts.append(("hinge", r.checks["hip_hinge"].verdict.value, tv.value,
                                 g["trunk_lean_3d_at_bottom"]))
            reps.append({
                "verdicts": verdicts,
                "side_ok": r.side is GT_SIDE[g["stance"]], "side": r.side.value,
                "fppa": fppa, "fppa_true": true_f,
                "fppa_err": None if fppa is None else fppa - true_f,
                "trunk_err": None if trunk is None else trunk - g["trunk_lean_3d_at_bottom"],
                "trunk_err_2d": None if trunk is None else trunk - g["trunk_lean_2d_at_bottom"],
                "bottom_dt": r.rep.bottom_s - tb,
            })
        out[video.stem] = {"n": len(full), "n_true": len(gt["reps"]), "view": a.view.value,
                           "view_true": GT_VIEW.get(gt["camera"]["view"], gt["camera"]["view"]),
                           "exercise": a.exercise.value, "reps": reps,
                           "sets": [(s.stance.value, round(s.start_s, 1), round(s.end_s, 1))
                                    for s in a.context.sets]}
    return out


def _stats(e: list[float]) -> str:
    if not e:
        return f"{'-':^17}"
    ae = np.abs(e)
    return f"{np.mean(e):+5.1f} {np.median(ae):4.1f} {np.max(ae):5.1f}"


def _ratio(ok_n) -> str:
    return f"{ok_n[0]}/{ok_n[1]}" if ok_n else "-"


def _delta(clips: dict, base: dict, key: str) -> str:
    """RMS and worst change of a per-rep error against the baseline (same clip and true rep)."""
    d = [x[key] - y[key] for stem, c in clips.items() if stem in base
         for x, y in zip(c["reps"], base[stem]["reps"])
         if x and y and x[key] is not None and y[key] is not None]
    return f"{math.sqrt(np.mean(np.square(d))):3.1f} {np.max(np.abs(d)):3.1f}" if d else f"{'-':^7}"


def summary_row(name: str, errs: dict, agree: dict, clips: dict, base: dict) -> str:
    n_ok = sum(c["n"] == c["n_true"] for c in clips.values())
    v_ok = sum(c["view"] == c["view_true"] for c in clips.values())
    reps = [r for c in clips.values() for r in c["reps"]]
    s_ok = sum(bool(r and r["side_ok"]) for r in reps)
    front = errs.get("frontal", []) + errs.get("front", [])
    return (f"{name:9} {n_ok:>2}/{len(clips):<2} {v_ok:>2}/{len(clips):<2} {s_ok:>2}/{len(reps):<2} "
            f"| {_stats(front)} {len(front):>2} "
            f"| {_stats(errs.get('back', []))} {len(errs.get('back', [])):>2} "
            f"| {_stats(errs.get('trunk', []))} {len(errs.get('trunk', [])):>2} "
            f"| {_ratio(agree.get('valgus frontal') or agree.get('valgus front')):>5} "
            f"{_ratio(agree.get('valgus back')):>5} {_ratio(agree.get('hip hinge side')):>5} "
            f"| {_delta(clips, base, 'fppa_err')} {_delta(clips, base, 'trunk_err')}")


def clip_changes(name: str, clips: dict, base: dict, fppa_tol: float, trunk_tol: float) -> list[str]:
    """Lines for the clips whose result differs from the baseline beyond the tolerances."""
    lines = []
    for stem, c in clips.items():
        b = base.get(stem)
        msgs = []
        if c["n"] != c["n_true"]:
            msgs.append(f"reps {c['n']}/{c['n_true']}")
        if c["view"] != c["view_true"]:
            msgs.append(f"view {c['view']} (true {c['view_true']})")
        sides = [r["side"] for r in c["reps"] if r and not r["side_ok"]]
        if sides:
            msgs.append(f"stance wrong in {len(sides)} rep(s): {','.join(sides)} sets={c['sets']}")
        if any(r is None for r in c["reps"]):
            msgs.append(f"unmatched true reps {[i for i, r in enumerate(c['reps']) if r is None]}")
        for key, tol, label in (("fppa_err", fppa_tol, "FPPA"), ("trunk_err", trunk_tol, "trunk")):
            cur = [r[key] if r else None for r in c["reps"]]
            old = [r[key] if r else None for r in (b["reps"] if b else [None] * len(cur))]
            d = [x - y for x, y in zip(cur, old) if x is not None and y is not None]
            lost = sum(x is None and y is not None for x, y in zip(cur, old))
            if d and max(map(abs, d)) > tol:
                msgs.append(f"{label} err {' '.join(f'{x:+.1f}' for x in cur if x is not None)} "
                            f"(base {' '.join(f'{y:+.1f}' for y in old if y is not None)})")
            if lost:
                msgs.append(f"{label} no longer measured in {lost} rep(s)")
        flips = [r for r in c["reps"] if r and r["fppa"] is not None and abs(r["fppa_true"]) >= 5
                 and np.sign(r["fppa"]) != np.sign(r["fppa_true"])]
        if flips:
            msgs.append(f"FPPA sign wrong in {len(flips)} rep(s)")
        wrong = [f"rep{i + 1} {k} {ours} (true {tv}, true value {val:g})"
                 for i, r in enumerate(c["reps"]) if r
                 for k, ours, tv, val in r["verdicts"] if ours != tv]
        if wrong:
            msgs.append("verdict " + ", ".join(wrong))
        if name.startswith("roll") and any(r and r["trunk_err_2d"] is not None for r in c["reps"]):
            msgs.append("trunk err vs image-frame lean "
                        + " ".join(f"{r['trunk_err_2d']:+.1f}" for r in c["reps"]
                                   if r and r["trunk_err_2d"] is not None))
        if msgs:
            lines.append(f"  {name:9} {stem:42} " + "; ".join(msgs))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aug", action="append", help=f"augmentation (repeatable): {', '.join(ALL_AUGS)}, "
                    "or roll<+-deg>; default: all but orig")
    ap.add_argument("--src", type=Path, default=SRC, help="folder of NAME.mp4 + NAME.gt.json")
    ap.add_argument("--out", type=Path, default=OUT, help="OUT/<aug>/ clips, OUT/cache-<aug>/ landmarks")
    ap.add_argument("--baseline-cache", type=Path, default=BASELINE_CACHE,
                    help="landmark cache of the unaugmented clips")
    ap.add_argument("--rebuild", action="store_true", help="re-render the clips and drop their caches")
    ap.add_argument("--verbose", action="store_true", help="also print evaluate.synthetic's per-clip output")
    ap.add_argument("--crf", type=int, default=DEFAULTS["crf"], help="x264 crf of the re-encode")
    ap.add_argument("--noise-sigma", type=float, default=DEFAULTS["noise_sigma"])
    ap.add_argument("--blur-sigma", type=float, default=DEFAULTS["blur_sigma"])
    ap.add_argument("--scale", type=float, default=DEFAULTS["scale"])
    ap.add_argument("--fppa-tol", type=float, default=2.0, help="per-clip report: FPPA error change, deg")
    ap.add_argument("--trunk-tol", type=float, default=1.5, help="per-clip report: trunk error change, deg")
    args = ap.parse_args()
    augs = args.aug or DEFAULT_AUGS
    base_params = {"crf": args.crf, "noise_sigma": args.noise_sigma, "blur_sigma": args.blur_sigma,
                   "scale": args.scale}

    rows, changes = [], []
    print("running baseline ...", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    errs, agree = run_evaluate(args.src, args.baseline_cache, args.out / "baseline.log", args.verbose)
    base = per_clip(args.src, args.baseline_cache)
    rows.append(summary_row("baseline", errs, agree, base, base))
    changes += clip_changes("baseline", base, base, math.inf, math.inf)
    for name in augs:
        p = {k: v for k, v in base_params.items()
             if (k == "crf" and name != "orig") or (k in ("noise_sigma", "blur_sigma") and name == "noise")
             or (k == "scale" and name == "half")}
        folder, cache = args.out / name, args.out / f"cache-{name}"
        print(f"building {name} ...", file=sys.stderr)
        build(name, args.src, folder, cache, p, args.rebuild)
        print(f"evaluating {name} (landmarks cached in {cache}) ...", file=sys.stderr)
        errs, agree = run_evaluate(folder, cache, args.out / f"{name}.log", args.verbose)
        clips = per_clip(folder, cache)
        rows.append(summary_row(name, errs, agree, clips, base))
        changes += clip_changes(name, clips, base, args.fppa_tol, args.trunk_tol)

    print("\n== robustness: evaluate.synthetic on augmented dev clips ==")
    print("reps: clips with the exact rep count; view: clips with the right view; stance: true reps "
          "matched with the right stance leg")
    print("FPPA / trunk: bias, median |err|, worst |err| (deg), n; verdict agreement: valgus front, "
          "valgus back, hip hinge side;")
    print("change vs base: RMS and worst change of the per-rep FPPA error, then of the trunk error (deg)")
    print(f"{'aug':9} {'reps':5} {'view':5} {'stance':5} | {'FPPA front':^20} | {'FPPA back':^20} | "
          f"{'trunk (vs 3D)':^20} | {'verdict agreement':^17} | change vs base")
    for r in rows:
        print(r)
    print("\nper clip, where it differs from the truth or from the baseline "
          f"(FPPA err change > {args.fppa_tol:g}, trunk > {args.trunk_tol:g} deg):")
    print("\n".join(changes) if changes else "  none")
    print(f"\nlogs: {args.out}/<aug>.log (evaluate.synthetic's output)")


if __name__ == "__main__":
    main()
