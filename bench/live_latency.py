#!/usr/bin/env python3
"""Latency of live mode and the cost of drawing the overlay, on a sample clip.

Usage::

    python3 bench/live_latency.py                       # sample_videos/dev02 (480x854)
    python3 bench/live_latency.py --clip VIDEO          # another clip
    python3 bench/live_latency.py --no-realtime         # stage costs only

Prints:

1. Per-stage cost of the live loop, every frame of the clip in order
   (``FileCamera(realtime=False)``): pose model + subject tracker, the
   :class:`~formcheck.live.LiveAnalyzer` (One Euro filter, depth, rep counter,
   view/stance tag; the frames that complete a rep also run the file analysis
   over the buffer, shown apart), drawing, and their sum: the latency the live
   loop adds to a frame (from the frame being read to its annotated image).
2. The clip played in real time (``FileCamera(realtime=True)``, headless):
   processing latency (read -> annotated image), the age of each shown frame
   (released by the source -> annotated image; an upper bound, the source's
   start is taken as the moment it was opened), frames processed and dropped.
3. Annotation cost per frame (``FormOverlay.annotate`` on the file's
   :class:`~formcheck.overlay.FileStates`) at the clip's size and scaled to
   1080 and 2160 px short sides, and the whole ``render_annotated`` pass.

A bench script: not imported by the package.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from formcheck.analysis import analyze_pose
from formcheck.camera import FileCamera
from formcheck.live import LiveSession, run_live
from formcheck.overlay import FileStates, FormOverlay
from formcheck.render import render_annotated
from formcheck.video import probe, read_frames

DEFAULT_CLIP = REPO / "sample_videos" / "dev02_slsR_front_fppa0-20-30.mp4"


def stats(ms: list[float]) -> str:
    a = np.asarray(ms, float)
    if a.size == 0:
        return "-"
    return f"mean {a.mean():6.1f}  p95 {np.percentile(a, 95):6.1f}  max {a.max():6.1f} ms  (n={a.size})"


def stage_costs(clip: Path):
    """Every frame through LiveSession's pieces, timed separately. Returns the raw pose."""
    info = probe(clip)
    pose, analyzer, draw, judge, total = [], [], [], [], []
    with LiveSession(info.width, info.height) as s, FileCamera(clip, realtime=False) as cam:
        while (frame := cam.read()) is not None:
            t0 = time.perf_counter()
            cands = s._estimator.process(frame.image, frame.t_ms)
            idx = s.tracker.update(cands, frame.t_ms)
            t1 = time.perf_counter()
            if idx is None:
                xyz = world = np.full((33, 3), np.nan)
                vis = np.full(33, np.nan)
            else:
                xyz, world, vis = cands.xyz[idx], cands.world[idx], cands.visibility[idx]
            state, reps = s.analyzer.update(frame.index, frame.t_ms, xyz, world, vis)
            t2 = time.perf_counter()
            s.draw(frame.image, state)
            t3 = time.perf_counter()
            pose.append((t1 - t0) * 1e3)
            (judge if reps else analyzer).append((t2 - t1) * 1e3)
            draw.append((t3 - t2) * 1e3)
            total.append((t3 - t0) * 1e3)
        buffer = s.analyzer.buffer_sequence()
    print(f"1. live loop stages, {clip.name} ({info.width}x{info.height}), every frame:")
    print(f"   pose + tracker        {stats(pose)}")
    print(f"   filter/depth/reps/tag {stats(analyzer)}")
    print(f"   ... frames judging a rep (file analysis of the {buffer.times_s[-1] - buffer.times_s[0]:.0f} s "
          f"buffer) {stats(judge)}")
    print(f"   drawing               {stats(draw)}")
    print(f"   added latency (sum)   {stats(total)}")


def realtime(clip: Path) -> None:
    ages, lat = [], []
    opened = time.monotonic()
    with FileCamera(clip, realtime=True) as cam:
        def seen(out):
            lat.append(out.latency_s * 1e3)
            ages.append((out.ready_at - (opened + out.frame.t_ms / 1000.0)) * 1e3)

        summary = run_live(cam, headless=True, on_frame=seen)
    info = probe(clip)
    print(f"2. real time ({info.fps:.0f} fps source, headless): {summary.frames} frames shown, "
          f"{summary.dropped} dropped, {summary.frames / summary.duration_s:.1f} frames/s, "
          f"{summary.rep_count} reps")
    print(f"   read -> annotated     {stats(lat)}")
    print(f"   released -> annotated {stats(ages)}  (upper bound)")


def annotation_cost(clip: Path, frames: int) -> None:
    info = probe(clip)
    with tempfile.TemporaryDirectory() as tmp:
        from formcheck.extract import extract_pose

        analysis = analyze_pose(extract_pose(clip, info=info), info=info, source=str(clip))
        t = time.perf_counter()
        render_annotated(analysis, clip, Path(tmp) / "out.mp4")
        render_s = time.perf_counter() - t
    import cv2

    images = [f.image for f, _ in zip(read_frames(clip), range(frames))]
    print(f"3. annotation cost per frame ({len(images)} frames of {clip.name}):")
    short = min(info.width, info.height)
    for target in (short, 1080, 2160):
        k = target / short
        w, h = round(info.width * k), round(info.height * k)
        scaled = replace(analysis, pose=replace(analysis.pose, width=w, height=h))
        states = FileStates(scaled)
        overlay = FormOverlay()
        frames_k = [cv2.resize(im, (w, h)) if k != 1 else im.copy() for im in images]
        t_states, t_draw = [], []
        for i, im in enumerate(frames_k):
            t0 = time.perf_counter()
            st = states[i]
            t1 = time.perf_counter()
            overlay.annotate(im, st)
            t2 = time.perf_counter()
            t_states.append((t1 - t0) * 1e3)
            t_draw.append((t2 - t1) * 1e3)
        print(f"   {w}x{h}: state {np.mean(t_states):5.2f} ms, drawing {stats(t_draw)}")
    print(f"   render_annotated (decode + draw + H.264 encode): {render_s:.2f} s for "
          f"{len(analysis.pose)} frames = {render_s / len(analysis.pose) * 1e3:.1f} ms/frame")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--no-realtime", action="store_true", help="skip the real-time run")
    ap.add_argument("--frames", type=int, default=120, help="frames for the annotation cost")
    args = ap.parse_args(argv)
    stage_costs(args.clip)
    if not args.no_realtime:
        realtime(args.clip)
    annotation_cost(args.clip, args.frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
